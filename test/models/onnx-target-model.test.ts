import assert from 'node:assert/strict';
import { copyFile, mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import { create, equals, fromBinary, toBinary } from '@bufbuild/protobuf';
import * as onnx from 'onnx-buf';
import { analyseModules } from '../../src/models/_module-tree.js';
import {
  graphView,
  liveSessionCount,
  loadOnnxModel,
  pooledModel,
  serializeModel,
  shapeInferenceModel,
  TargetSession,
  withSession,
} from '../../src/models/_onnx-graph-edit.js';
import { createOnnxTargetModel, type OnnxTargetModel } from '../../src/models/onnx-target-model.js';
import type { LayerInfo } from '../../src/models/target-model.js';
import { ArgumentError, ClipDissectError } from '../../src/numeric/errors.js';
import { currentRuntime } from '../../src/runtime/index.js';
import { tempDir } from '../helpers/cli.js';
import { saveWithExternalData } from '../helpers/external-data.js';
import { assertClose, batchThreeOnlyModel, CASES, caseInput, golden, MODELS } from './helpers.js';

const RESNET_TS = `${MODELS}resnet_small_ts.onnx`;
const RESNET_TS_NOFOLD = `${MODELS}resnet_small_ts_nofold.onnx`;
const RESNET_DYNAMO = `${MODELS}resnet_small_dynamo.onnx`;
const VIT_TS = `${MODELS}vit_tiny_ts.onnx`;
const VIT_DYNAMO = `${MODELS}vit_tiny_dynamo.onnx`;

async function withModel<T>(
  path: string,
  options: Parameters<typeof createOnnxTargetModel>[1],
  fn: (m: OnnxTargetModel) => Promise<T>,
): Promise<T> {
  const m = await createOnnxTargetModel(path, options);
  try {
    return await fn(m);
  } finally {
    await m.release();
  }
}

function byName(layers: LayerInfo[]): Map<string, LayerInfo> {
  return new Map(layers.map((l) => [l.name, l]));
}

const RESNET_SHAPES: Record<string, [number, number]> = {
  // module: [channels, spatial size] at 64×64 input
  relu: [8, 32],
  maxpool: [8, 16],
  layer1: [8, 16],
  'layer1.0': [8, 16],
  'layer1.0.relu': [8, 16],
  'layer1.0.relu_1': [8, 16],
  layer2: [16, 8],
  'layer2.0.downsample': [16, 8],
  layer3: [32, 4],
  layer4: [64, 2],
  'layer4.1': [64, 2],
};

describe('resolution of PyTorch module names', () => {
  for (const [label, path] of [
    ['TorchScript', RESNET_TS],
    ['TorchScript, no constant folding', RESNET_TS_NOFOLD],
    ['dynamo (external data)', RESNET_DYNAMO],
  ] as const) {
    test(`resnet (${label}): module names, shapes with symbolic batch, neuron counts`, async () => {
      await withModel(path, {}, async (m) => {
        assert.deepEqual(m.inputShape, [3, 64, 64]);
        const layers = byName(m.layers());
        for (const [name, [c, s]] of Object.entries(RESNET_SHAPES)) {
          const l = layers.get(name);
          assert.ok(l, `${label}: layer ${name} missing (have ${[...layers.keys()].join(', ')})`);
          assert.deepEqual(l.shape, ['batch', c, s, s], name);
          assert.equal(l.neurons, c, name);
          assert.equal(l.kind, 'spatial', name);
        }
        const fc = layers.get('fc');
        assert.ok(fc);
        assert.deepEqual(fc.shape, ['batch', 10]);
        assert.equal(fc.kind, 'vector');
        assert.equal(fc.neurons, 10);
        // a module and its last child share one tensor (layer4 → layer4.1 → layer4.1.relu_1)
        assert.equal(layers.get('layer4')?.tensor, layers.get('layer4.1')?.tensor);
        assert.notEqual(layers.get('layer4')?.tensor, layers.get('layer4.0')?.tensor);
        // every layer name is distinct and every tensor is produced by the model
        assert.equal(new Set(m.layers().map((l) => l.name)).size, m.layers().length);
        if (path === RESNET_TS_NOFOLD) {
          assert.equal(layers.get('conv1')?.neurons, 8);
          assert.equal(layers.get('bn1')?.neurons, 8);
        }
      });
    });
  }

  test('the exporter is recognised', async () => {
    await withModel(RESNET_TS, {}, async (m) => assert.equal(m.exporter, 'torchscript'));
    await withModel(RESNET_DYNAMO, {}, async (m) => assert.equal(m.exporter, 'dynamo'));
  });

  test('dynamo: the two calls of a shared ReLU are told apart and named like the TorchScript exporter does', async () => {
    await withModel(RESNET_DYNAMO, {}, async (dy) => {
      await withModel(RESNET_TS_NOFOLD, {}, async (ts) => {
        const d = byName(dy.layers());
        const t = byName(ts.layers());
        assert.equal(d.get('layer1.0.relu')?.call, 0);
        assert.equal(d.get('layer1.0.relu_1')?.call, 1);
        // the second call is the block's output
        assert.equal(d.get('layer1.0.relu_1')?.tensor, d.get('layer1.0')?.tensor);
        assert.equal(t.get('layer1.0.relu_1')?.tensor, t.get('layer1.0')?.tensor);
        // same module names in both exports, apart from those the optimiser fused away
        const dyNames = new Set(d.keys());
        const missing = [...t.keys()].filter((n) => !dyNames.has(n));
        assert.ok(
          missing.every((n) => /(^|\.)conv\d$|downsample\.0$/.test(n)),
          `names only in the TorchScript export: ${missing.join(', ')}`,
        );
      });
    });
  });

  for (const [label, path] of [
    ['TorchScript', VIT_TS],
    ['dynamo', VIT_DYNAMO],
  ] as const) {
    test(`ViT (${label}): token outputs [batch, 17, 32], the patch conv and the head`, async () => {
      await withModel(path, {}, async (m) => {
        const layers = byName(m.layers());
        const enc = layers.get('encoder');
        assert.ok(enc);
        assert.deepEqual(enc.shape, ['batch', 17, 32]);
        assert.equal(enc.kind, 'tokens');
        assert.equal(enc.sequenceFirst, false);
        assert.equal(enc.neurons, 32);
        assert.equal(layers.get('encoder.layers.encoder_layer_1')?.neurons, 32);
        assert.equal(layers.get('encoder.layers.encoder_layer_0.mlp.1')?.neurons, 64);
        assert.deepEqual(layers.get('conv_proj')?.shape, ['batch', 32, 4, 4]);
        assert.equal(layers.get('heads')?.kind, 'vector');
        assert.equal(layers.get('heads')?.neurons, 10);
        assert.deepEqual(m.warnings, []);
      });
    });
  }

  test('sequence-first token outputs [T, batch, C] are found by the batch probe', async () => {
    await withModel(`${MODELS}seqfirst_tiny_ts.onnx`, {}, async (m) => {
      const l = byName(m.layers());
      assert.deepEqual(l.get('norm')?.shape, [17, 'batch', 24]);
      assert.equal(l.get('norm')?.sequenceFirst, true);
      assert.equal(l.get('norm')?.neurons, 24);
    });
  });
});

describe('pooled activations equal the PyTorch forward hooks', () => {
  const resnetModules = ['conv1', 'layer1', 'layer2', 'layer3', 'layer4', 'fc'];
  for (const [label, path] of [
    ['TorchScript, no constant folding', RESNET_TS_NOFOLD],
    ['TorchScript', RESNET_TS],
    ['dynamo', RESNET_DYNAMO],
  ] as const) {
    for (const pool of ['avg', 'max'] as const) {
      test(`resnet (${label}), ${pool}`, async () => {
        const { data, n } = await caseInput('resnet_small');
        await withModel(path, {}, async (m) => {
          // conv1 of the folded TorchScript export reads bn1(conv1(x)) (tested below); the dynamo export has
          // no conv1 at all, but its bn1 is there
          const modules = resnetModules.filter((x) => x !== 'conv1' || path === RESNET_TS_NOFOLD);
          if (path !== RESNET_TS) modules.push('bn1');
          const acts = await m.activations(data, n, modules, pool);
          assert.deepEqual([...acts.keys()], modules);
          for (const mod of modules) {
            const want = await golden('resnet_small', mod, mod === 'fc' ? 'none' : pool);
            assertClose(acts.get(mod), want, `${label} ${mod} ${pool}`);
          }
        });
      });
    }
  }

  test('the folded TorchScript conv1 reads bn1(conv1(x)), which is why it warns', async () => {
    const { data, n } = await caseInput('resnet_small');
    await withModel(RESNET_TS, {}, async (m) => {
      const acts = await m.activations(data, n, ['conv1'], 'avg');
      assertClose(acts.get('conv1'), await golden('resnet_small', 'bn1', 'avg'), 'folded conv1 = bn1');
    });
  });

  for (const [label, path] of [
    ['TorchScript', VIT_TS],
    ['dynamo', VIT_DYNAMO],
  ] as const) {
    for (const token of ['cls', 'mean'] as const) {
      test(`ViT (${label}), token ${token}`, async () => {
        const { data, n } = await caseInput('vit_tiny');
        await withModel(path, { token }, async (m) => {
          const modules = [
            'encoder',
            'encoder.layers.encoder_layer_1',
            'encoder.layers.encoder_layer_0.mlp',
            'encoder.layers.encoder_layer_0.self_attention',
            'heads',
          ];
          const acts = await m.activations(data, n, modules, 'avg');
          for (const mod of modules) {
            const want = await golden('vit_tiny', mod, mod === 'heads' ? 'none' : token);
            assertClose(acts.get(mod), want, `${label} ${mod} ${token}`);
          }
          const conv = await m.activations(data, n, ['conv_proj'], 'max');
          assertClose(conv.get('conv_proj'), await golden('vit_tiny', 'conv_proj', 'max'), 'conv_proj max');
        });
      });
    }
  }

  for (const token of ['cls', 'mean'] as const) {
    test(`sequence-first tokens, ${token}`, async () => {
      const { data, n } = await caseInput('seqfirst_tiny');
      await withModel(`${MODELS}seqfirst_tiny_ts.onnx`, { token }, async (m) => {
        const acts = await m.activations(data, n, ['block', 'norm', 'head', 'patch'], 'avg');
        for (const mod of ['block', 'norm'])
          assertClose(acts.get(mod), await golden('seqfirst_tiny', mod, token), `${mod} ${token}`);
        assertClose(acts.get('head'), await golden('seqfirst_tiny', 'head', 'none'), 'head');
        assertClose(acts.get('patch'), await golden('seqfirst_tiny', 'patch', 'avg'), 'patch');
      });
    });
  }

  for (const pool of ['avg', 'max'] as const) {
    test(`channels-last model (NHWC input and activations), ${pool}`, async () => {
      const { data, n } = await caseInput('nhwc_tiny');
      await withModel(`${MODELS}nhwc_tiny_ts.onnx`, { channelsLast: true }, async (m) => {
        assert.deepEqual(m.inputShape, [3, 16, 16]);
        const l = byName(m.layers());
        assert.deepEqual(l.get('stem')?.shape, ['batch', 16, 16, 6]);
        assert.equal(l.get('stem')?.neurons, 6);
        const acts = await m.activations(data, n, ['stem', 'act', 'mix', 'head'], pool);
        for (const mod of ['stem', 'act', 'mix'])
          assertClose(acts.get(mod), await golden('nhwc_tiny', mod, pool), `${mod} ${pool}`);
        assertClose(acts.get('head'), await golden('nhwc_tiny', 'head', 'none'), 'head');
      });
    });
  }

  test('batches of any size, one image at a time and in one run, give the same rows', async () => {
    const { data, n } = await caseInput('resnet_small');
    await withModel(RESNET_DYNAMO, { threads: 1 }, async (m) => {
      const all = await m.activations(data, n, ['layer3'], 'avg');
      const per = data.length / n;
      for (let i = 0; i < n; i++) {
        const one = await m.activations(data.subarray(i * per, (i + 1) * per), 1, ['layer3'], 'avg');
        const row = all.get('layer3')!.data.subarray(i * 32, (i + 1) * 32);
        assertClose(one.get('layer3'), { rows: 1, cols: 32, data: row }, `image ${i}`, 1e-5);
      }
    });
  });

  test('prepare builds the session ahead; activations then reuse it; bad layers and pools are rejected', async () => {
    const { data, n } = await caseInput('resnet_small');
    await withModel(RESNET_DYNAMO, { threads: 1 }, async (m) => {
      const before = liveSessionCount();
      await m.prepare(['layer2'], 'max');
      assert.equal(liveSessionCount(), before + 1);
      const acts = await m.activations(data, n, ['layer2'], 'max');
      assert.equal(liveSessionCount(), before + 1, 'no second session');
      assertClose(acts.get('layer2'), await golden('resnet_small', 'layer2', 'max'), 'layer2');
      await assert.rejects(m.prepare(['layer9'], 'max'), ArgumentError);
      await assert.rejects(m.prepare(['layer2'], 'median' as 'max'), /'pool' must be/);
    });
  });

  test('runBatchSize splits a batch into onnxruntime runs without changing the rows', async () => {
    const { data, n } = await caseInput('resnet_small');
    const want = await golden('resnet_small', 'layer2', 'max');
    for (const runBatchSize of [1, 2, 64]) {
      await withModel(RESNET_DYNAMO, { threads: 1, runBatchSize }, async (m) => {
        const acts = await m.activations(data, n, ['layer2'], 'max'); // 3 images: runs of 1, 2 + 1, 3
        assertClose(acts.get('layer2'), want, `layer2, runBatchSize ${runBatchSize}`);
      });
    }
    await assert.rejects(createOnnxTargetModel(RESNET_DYNAMO, { runBatchSize: 0 }), (e: unknown) => {
      assert.ok(e instanceof ArgumentError);
      assert.match(e.message, /'runBatchSize' must be a positive integer but got 0/);
      return true;
    });
  });

  test('a model exported with a fixed batch size runs in chunks of that size (last chunk padded)', async () => {
    const dir = await mkdtemp(join(tmpdir(), 'clip-dissect-fixed-'));
    try {
      const model = fromBinary(onnx.ModelProtoSchema, await readFile(RESNET_TS_NOFOLD));
      const dim0 = model.graph!.input[0].type!.value;
      assert.equal(dim0.case, 'tensorType');
      dim0.value.shape!.dim[0] = create(onnx.TensorShapeProto_DimensionSchema, {
        value: { case: 'dimValue', value: 2n },
      });
      await writeFile(join(dir, 'fixed.onnx'), toBinary(onnx.ModelProtoSchema, model));
      const { data, n } = await caseInput('resnet_small');
      await withModel(join(dir, 'fixed.onnx'), {}, async (m) => {
        assert.deepEqual(byName(m.layers()).get('layer2')?.shape, ['batch', 16, 8, 8]);
        const acts = await m.activations(data, n, ['layer2', 'fc'], 'max'); // 3 images: runs of 2 + 1 (padded)
        assertClose(acts.get('layer2'), await golden('resnet_small', 'layer2', 'max'), 'layer2');
        assertClose(acts.get('fc'), await golden('resnet_small', 'fc', 'none'), 'fc');
      });
    } finally {
      await rm(dir, { recursive: true, force: true });
    }
  });
});

describe('layer selection', () => {
  test('raw tensor names are accepted next to module names', async () => {
    const { data, n } = await caseInput('resnet_small');
    await withModel(RESNET_TS_NOFOLD, {}, async (m) => {
      const tensor = byName(m.layers()).get('layer2')!.tensor;
      assert.equal(tensor, '/layer2/layer2.1/relu_1/Relu_output_0');
      const [info] = await m.describe([tensor]);
      assert.equal(info.name, tensor);
      assert.equal(info.neurons, 16);
      assert.deepEqual(info.shape, ['batch', 16, 8, 8]);
      // an inner tensor that is no module's output
      const [inner] = await m.describe('/layer3/layer3.0/Add_output_0');
      assert.deepEqual(inner.shape, ['batch', 32, 4, 4]);
      const acts = await m.activations(data, n, [tensor, 'layer2'], 'avg');
      const want = await golden('resnet_small', 'layer2', 'avg');
      assertClose(acts.get(tensor), want, 'by tensor name');
      assertClose(acts.get('layer2'), want, 'by module name');
    });
  });

  test('comma-separated strings and predicates select layers', async () => {
    await withModel(VIT_DYNAMO, {}, async (m) => {
      const a = await m.describe(' encoder , heads,encoder ');
      assert.deepEqual(
        a.map((l) => l.name),
        ['encoder', 'heads'],
      );
      const b = await m.describe((name) => /^encoder\.layers\.encoder_layer_\d$/.test(name));
      assert.deepEqual(
        b.map((l) => l.name),
        ['encoder.layers.encoder_layer_0', 'encoder.layers.encoder_layer_1'],
      );
    });
  });

  test('an unknown layer is an ArgumentError listing the closest names first', async () => {
    await withModel(RESNET_TS, {}, async (m) => {
      const { data, n } = await caseInput('resnet_small');
      await assert.rejects(m.activations(data, n, ['layer5'], 'avg'), (e: unknown) => {
        assert.ok(e instanceof ArgumentError);
        assert.match(e.message, /unknown layer 'layer5'/);
        const listed = e.message.slice(e.message.indexOf('closest'));
        const first = listed.match(/'([^']+)'/g)!.slice(0, 4);
        assert.deepEqual(first.sort(), ["'layer1'", "'layer2'", "'layer3'", "'layer4'"]);
        return true;
      });
      await assert.rejects(m.describe('layer4.1.rleu'), /closest layers first: 'layer4\.1\.relu'/);
    });
  });

  test('dynamo: asking for a conv that was fused into its BatchNorm says so', async () => {
    await withModel(RESNET_DYNAMO, {}, async (m) => {
      await assert.rejects(m.describe('conv1'), (e: unknown) => {
        assert.ok(e instanceof ArgumentError);
        assert.match(e.message, /fused with BatchNorm 'bn1'/);
        assert.match(e.message, /optimize=False/);
        return true;
      });
    });
  });

  test('bad pool, batch size and batch length are rejected with the value and the choices', async () => {
    await withModel(VIT_TS, {}, async (m) => {
      const { data, n } = await caseInput('vit_tiny');
      await assert.rejects(
        m.activations(data, n, ['encoder'], 'median' as 'avg'),
        /'pool' must be 'avg' or 'max' but got 'median'/,
      );
      await assert.rejects(
        m.activations(data, 0, ['encoder'], 'avg'),
        /'batchSize' must be a positive integer/,
      );
      await assert.rejects(
        m.activations(data.subarray(1), n, ['encoder'], 'avg'),
        /'batch' has 9215 values but 3 images of 3×32×32 \(NCHW\) need 9216/,
      );
    });
  });

  test('option errors name the option, the value and the choices', async () => {
    await assert.rejects(
      createOnnxTargetModel(VIT_TS, { device: 'tpu' as 'cpu' }),
      /'device' must be 'cpu' or 'cuda' but got 'tpu'/,
    );
    await assert.rejects(
      createOnnxTargetModel(VIT_TS, { token: 'first' as 'cls' }),
      /'token' must be 'cls' or 'mean'/,
    );
    await assert.rejects(
      createOnnxTargetModel(VIT_TS, { threads: 0 }),
      /'threads' must be an integer from 1 to \d+ \(4 × the \d+ cores of this machine\) but got 0/,
    );
    await assert.rejects(createOnnxTargetModel(`${MODELS}nope.onnx`), (e: unknown) => {
      assert.ok(e instanceof ClipDissectError);
      assert.equal(e.code, 'ERR_MODEL_NOT_FOUND');
      return true;
    });
  });
});

describe('BatchNorm folding warnings', () => {
  test('TorchScript export with constant folding (the default): conv1 warns and the model warns', async () => {
    await withModel(RESNET_TS, {}, async (m) => {
      const conv1 = byName(m.layers()).get('conv1');
      assert.ok(conv1);
      assert.equal(conv1.warnings.length, 1);
      assert.match(conv1.warnings[0], /folded the BatchNorm/);
      assert.match(conv1.warnings[0], /do_constant_folding=False/);
      assert.match(conv1.warnings[0], /TrainingMode\.PRESERVE/);
      assert.ok(m.warnings.some((w) => /BatchNorm folded into 20 Conv layers/.test(w)));
      // only convolutions warn
      for (const l of m.layers())
        if (!/conv\d$|downsample\.0$/.test(l.name)) assert.deepEqual(l.warnings, [], l.name);
    });
  });

  test('no warning for a do_constant_folding=False export', async () => {
    await withModel(RESNET_TS_NOFOLD, {}, async (m) => {
      assert.deepEqual(m.warnings, []);
      for (const l of m.layers()) assert.deepEqual(l.warnings, [], l.name);
    });
  });

  test("the hooks' onWarning hears the model's warnings as it opens", async () => {
    const heard: string[] = [];
    const m = await createOnnxTargetModel(RESNET_TS, {}, { onWarning: (w) => heard.push(w) });
    try {
      assert.ok(m.warnings.length > 0);
      assert.deepEqual(heard, m.warnings);
    } finally {
      await m.release();
    }
  });

  test('dynamo export (optimizer fuses BatchNorm into Conv): the model warns', async () => {
    await withModel(RESNET_DYNAMO, {}, async (m) => {
      assert.ok(m.warnings.some((w) => /FuseBatchNormIntoConv/.test(w) && /'conv1'/.test(w)));
    });
  });
});

describe('external data', () => {
  let dir = '';
  before(async () => {
    dir = await mkdtemp(join(tmpdir(), 'clip-dissect-extdata-'));
  });
  after(async () => {
    await rm(dir, { recursive: true, force: true });
  });

  test('the dynamo fixture keeps its weights in resnet_small_dynamo.onnx.data', async () => {
    const loaded = await loadOnnxModel(RESNET_DYNAMO);
    assert.deepEqual(loaded.externalLocations, ['resnet_small_dynamo.onnx.data']);
    const external = loaded.graph.initializer.filter(
      (t) => t.dataLocation === onnx.TensorProto_DataLocation.EXTERNAL,
    );
    assert.ok(external.length >= 20, `${external.length} external tensors`); // the conv and fc weights
  });

  test('a model copied without its .data file is a clear error naming the file', async () => {
    await copyFile(RESNET_DYNAMO, join(dir, 'resnet_small_dynamo.onnx'));
    await assert.rejects(createOnnxTargetModel(join(dir, 'resnet_small_dynamo.onnx')), (e: unknown) => {
      assert.ok(e instanceof ClipDissectError);
      assert.equal(e.code, 'ERR_MODEL_EXTERNAL_DATA');
      assert.match(e.message, /resnet_small_dynamo\.onnx\.data/);
      return true;
    });
  });

  test('a truncated .data file is reported', async () => {
    const bytes = await readFile(`${RESNET_DYNAMO}.data`);
    await writeFile(join(dir, 'resnet_small_dynamo.onnx.data'), bytes.subarray(0, 1000));
    await assert.rejects(createOnnxTargetModel(join(dir, 'resnet_small_dynamo.onnx')), /truncated/);
  });

  test('the model works from another folder once the .data file is next to it', async () => {
    await copyFile(`${RESNET_DYNAMO}.data`, join(dir, 'resnet_small_dynamo.onnx.data'));
    const { data, n } = await caseInput('resnet_small');
    await withModel(join(dir, 'resnet_small_dynamo.onnx'), {}, async (m) => {
      const acts = await m.activations(data, n, ['layer4'], 'avg');
      assertClose(acts.get('layer4'), await golden('resnet_small', 'layer4', 'avg'), 'layer4');
    });
  });
});

describe('external data under any name', () => {
  for (const location of ['./x.bin', 'weights.bin', 'model.onnx_data', 'sub/w.bin']) {
    test(`weights in '${location}' are read (the location normalised for onnxruntime's in-memory table)`, async () => {
      const { model } = saveWithExternalData(RESNET_TS, tempDir(), 'model.onnx', location);
      const loaded = await loadOnnxModel(model);
      assert.deepEqual(loaded.externalLocations, [location.replace(/^\.\//, '')]);
      const { data, n } = await caseInput('resnet_small');
      await withModel(model, {}, async (m) => {
        const acts = await m.activations(data, n, ['layer4', 'fc'], 'avg');
        assertClose(acts.get('layer4'), await golden('resnet_small', 'layer4', 'avg'), 'layer4');
        assertClose(acts.get('fc'), await golden('resnet_small', 'fc', 'none'), 'fc');
      });
    });
  }

  test('a location outside the model folder is refused with the tensor, the location and the model named', async () => {
    const { model } = saveWithExternalData(RESNET_TS, join(tempDir(), 'm'), 'model.onnx', '../w.bin');
    await assert.rejects(createOnnxTargetModel(model), (e: unknown) => {
      assert.ok(e instanceof ClipDissectError);
      assert.equal(e.code, 'ERR_MODEL_EXTERNAL_DATA');
      assert.match(
        e.message,
        /tensor '.+' of target model '.*model\.onnx' has external data location '\.\.\/w\.bin'/,
      );
      return true;
    });
  });
});

describe('graph editing keeps the model intact', () => {
  test('onnx-buf round trip drops nothing (node metadata_props included)', async () => {
    const bytes = await readFile(RESNET_DYNAMO);
    const a = fromBinary(onnx.ModelProtoSchema, bytes);
    const b = fromBinary(onnx.ModelProtoSchema, toBinary(onnx.ModelProtoSchema, a));
    assert.ok(equals(onnx.ModelProtoSchema, a, b));
    assert.ok(a.graph!.node.every((n) => n.metadataProps.length > 0));
  });

  test('the hand-written serialisation (large raw_data copied once) equals toBinary', async () => {
    for (const path of [RESNET_TS, RESNET_DYNAMO, VIT_TS]) {
      const loaded = await loadOnnxModel(path);
      const bytes = serializeModel(loaded.model, loaded.graph);
      assert.ok(equals(onnx.ModelProtoSchema, fromBinary(onnx.ModelProtoSchema, bytes), loaded.model), path);
    }
    const big = (await loadOnnxModel(RESNET_TS)).graph.initializer.filter((t) => t.rawData.length >= 4096);
    assert.ok(big.length > 10, 'the TorchScript fixture has large inline tensors');
  });

  test('shape inference without weights: the TorchScript CNN gets every layer shape from onnxruntime', async () => {
    const loaded = await loadOnnxModel(RESNET_TS);
    const tensors = analyseModules(graphView(loaded)).candidateTensors;
    const bytes = shapeInferenceModel(loaded, 'input', tensors);
    const edited = fromBinary(onnx.ModelProtoSchema, bytes);
    // the weights became declared inputs: a few kilobytes instead of the model's size
    assert.ok(bytes.length * 10 < (await readFile(RESNET_TS)).length, `${bytes.length} bytes`);
    assert.ok(edited.graph!.input.length > 10);
    const values = (t: onnx.TensorProto) => t.dims.reduce((a, d) => a * Number(d), 1);
    assert.ok(
      edited
        .graph!.initializer.filter((t) => t.dataType === onnx.TensorProto_DataType.FLOAT)
        .every((t) => values(t) < 64),
      'only small float initializers stay',
    );
    const shapes = await withSession(bytes, null, { device: 'cpu', optimization: 'disabled' }, async (s) =>
      s.outputShapes(),
    );
    const infos = await withModel(RESNET_TS, {}, async (m) => byName(m.layers()));
    for (const [name, [c, hw]] of Object.entries(RESNET_SHAPES)) {
      const info = infos.get(name)!;
      assert.deepEqual(shapes.get(info.tensor), { dtype: 'float32', dims: ['batch', c, hw, hw] }, name);
    }
    assert.deepEqual(shapes.get('logits'), { dtype: 'float32', dims: ['batch', 10] });
    // the ViT's Reshape-computed shapes stay unknown: those come from the probe run (its layers are tested above)
    const vit = await loadOnnxModel(VIT_TS);
    const vitTensors = analyseModules(graphView(vit)).candidateTensors;
    const vitShapes = await withSession(
      shapeInferenceModel(vit, 'input', vitTensors),
      null,
      { device: 'cpu', optimization: 'disabled' },
      async (s) => s.outputShapes(),
    );
    assert.ok(vitTensors.some((t) => vitShapes.get(t)?.dims?.includes(null)));
  });

  test('edited models refer to the weights inside the model file instead of copying them', async () => {
    const loaded = await loadOnnxModel(RESNET_TS);
    const { bytes, outputs } = pooledModel(loaded, 'input', [
      { tensor: 'logits', reduction: { op: 'identity' }, isFloat32: true },
    ]);
    assert.ok(bytes.length * 10 < loaded.bytes.length, `${bytes.length} of ${loaded.bytes.length} bytes`);
    const edited = fromBinary(onnx.ModelProtoSchema, bytes);
    const refs = edited.graph!.initializer.filter(
      (t) => t.dataLocation === onnx.TensorProto_DataLocation.EXTERNAL,
    );
    assert.ok(refs.length > 10);
    // each reference points at the tensor's own bytes in the file
    const byName = new Map(loaded.graph.initializer.map((t) => [t.name, t]));
    for (const t of refs) {
      const kv = new Map(t.externalData.map((e) => [e.key, e.value]));
      const offset = Number(kv.get('offset'));
      const original = byName.get(t.name)!.rawData;
      assert.deepEqual(loaded.bytes.subarray(offset, offset + Number(kv.get('length'))), original, t.name);
    }
    // and onnxruntime reads them: the logits equal the unedited model's
    const x = new Float32Array(2 * 3 * 64 * 64).map((_, i) => Math.sin(i));
    const fromEdited = await withSession(bytes, loaded, { device: 'cpu' }, async (s) =>
      s.run('input', x, [2, 3, 64, 64], outputs),
    );
    const plain = await withSession(
      serializeModel(loaded.model, loaded.graph),
      null,
      { device: 'cpu' },
      async (s) => s.run('input', x, [2, 3, 64, 64], ['logits']),
    );
    assert.deepEqual(fromEdited.get(outputs[0])!.data, plain.get('logits')!.data);
  });

  test('the pooled model keeps the kept nodes as they were and adds pooled float outputs', async () => {
    const loaded = await loadOnnxModel(RESNET_DYNAMO);
    const { bytes, outputs } = pooledModel(loaded, 'input', [
      { tensor: 'relu_8', reduction: { op: 'reduce-max', axes: [2, 3] }, isFloat32: true },
    ]);
    const edited = fromBinary(onnx.ModelProtoSchema, bytes);
    assert.deepEqual(
      edited.graph!.output.map((o) => o.name),
      outputs,
    );
    const original = new Map(loaded.graph.node.map((n) => [n.name, n]));
    const kept = edited.graph!.node.filter((n) => original.has(n.name));
    assert.ok(kept.length > 0 && kept.length < loaded.graph.node.length, 'later layers are pruned');
    for (const n of kept) assert.ok(equals(onnx.NodeProtoSchema, n, original.get(n.name)!), n.name);
    assert.deepEqual(edited.opsetImport, loaded.model.opsetImport);
    assert.equal(edited.producerName, loaded.model.producerName);
    // the reduction uses the opset-18+ form (axes as an input)
    const reduce = edited.graph!.node.find((n) => n.opType === 'ReduceMax')!;
    assert.equal(reduce.input.length, 2);
  });
});

describe('device and native memory', () => {
  test("device 'cuda' without onnxruntime's CUDA build is a clear ClipDissectError", async () => {
    const before = liveSessionCount();
    await assert.rejects(createOnnxTargetModel(VIT_DYNAMO, { device: 'cuda' }), (e: unknown) => {
      assert.ok(e instanceof ClipDissectError);
      assert.equal(e.code, 'ERR_CUDA_UNAVAILABLE');
      assert.match(e.message, /CUDA execution provider/);
      assert.match(
        e.message,
        currentRuntime()?.name === 'wasm'
          ? /the runtime is wasm .* `npm i onnxruntime-node@1\.31\.1`/
          : /ONNXRUNTIME_NODE_INSTALL=cuda12 node node_modules\/onnxruntime-node\/script\/install\.js/,
      );
      assert.match(e.message, /device 'cpu'/);
      return true;
    });
    assert.equal(liveSessionCount(), before);
  });

  test("an aborted signal stops the opening with the signal's reason and leaves no session", async () => {
    const before = liveSessionCount();
    const reason = new Error('stopped by the caller');
    await assert.rejects(createOnnxTargetModel(VIT_TS, {}, { signal: AbortSignal.abort(reason) }), reason);
    // aborted while the model is read: the probe never runs
    const ac = new AbortController();
    const opening = createOnnxTargetModel(VIT_TS, {}, { signal: ac.signal });
    ac.abort(reason);
    await assert.rejects(opening, reason);
    assert.equal(liveSessionCount(), before);
  });

  test('withSession releases the session when the work throws', async () => {
    const before = liveSessionCount();
    const loaded = await loadOnnxModel(VIT_TS);
    const { bytes } = pooledModel(loaded, 'input', [
      { tensor: 'logits', reduction: { op: 'identity' }, isFloat32: true },
    ]);
    await assert.rejects(
      withSession(bytes, loaded, { device: 'cpu' }, async (s) => {
        assert.equal(liveSessionCount(), before + 1);
        await s.run('input', new Float32Array(5), [5], ['nope']); // wrong shape: onnxruntime throws
      }),
      (e: unknown) => e instanceof ClipDissectError && e.code === 'ERR_MODEL_RUN',
    );
    assert.equal(liveSessionCount(), before);
  });

  test('a probe run that fails (model traced at batch 3 only) releases its session', async () => {
    const dir = await mkdtemp(join(tmpdir(), 'clip-dissect-b3-'));
    const before = liveSessionCount();
    try {
      await writeFile(join(dir, 'b3.onnx'), batchThreeOnlyModel(false));
      await assert.rejects(createOnnxTargetModel(join(dir, 'b3.onnx')), (e: unknown) => {
        assert.ok(e instanceof ClipDissectError);
        assert.equal(e.code, 'ERR_MODEL_RUN');
        assert.match(e.message, /fails on a batch of 1 image of 3×4×4/);
        assert.match(e.message, /dynamic batch axis/);
        return true;
      });
      assert.equal(liveSessionCount(), before);
    } finally {
      await rm(dir, { recursive: true, force: true });
    }
  });

  test('a failing activations run leaves no session behind after release()', async () => {
    const dir = await mkdtemp(join(tmpdir(), 'clip-dissect-b3-'));
    const before = liveSessionCount();
    try {
      await writeFile(join(dir, 'b3.onnx'), batchThreeOnlyModel(true));
      const m = await createOnnxTargetModel(join(dir, 'b3.onnx'));
      try {
        assert.deepEqual(
          m.layers().map((l) => [l.name, l.neurons]),
          [
            ['block', 48],
            ['head', 48],
          ],
        );
        const ok = await m.activations(new Float32Array(3 * 48).fill(-1), 3, ['block', 'head'], 'avg');
        assert.equal(ok.get('head')!.data[0], 0);
        assert.equal(liveSessionCount(), before + 1);
        await assert.rejects(
          m.activations(new Float32Array(48), 1, ['block', 'head'], 'avg'),
          (e: unknown) => e instanceof ClipDissectError && e.code === 'ERR_MODEL_RUN',
        );
      } finally {
        await m.release();
      }
      assert.equal(liveSessionCount(), before);
      await assert.rejects(m.activations(new Float32Array(144), 3, ['block'], 'avg'), /was released/);
    } finally {
      await rm(dir, { recursive: true, force: true });
    }
  });

  test('changing the layer set replaces the cached session (one live session per model)', async () => {
    const before = liveSessionCount();
    const { data, n } = await caseInput('vit_tiny');
    await withModel(VIT_DYNAMO, {}, async (m) => {
      await m.activations(data, n, ['encoder'], 'avg');
      await m.activations(data, n, ['heads'], 'avg');
      await m.activations(data, n, ['heads'], 'max');
      assert.equal(liveSessionCount(), before + 1);
    });
    assert.equal(liveSessionCount(), before);
  });

  test('TargetSession has release() and Symbol.asyncDispose', () => {
    assert.equal(typeof TargetSession.prototype.release, 'function');
    assert.equal(typeof TargetSession.prototype[Symbol.asyncDispose], 'function');
  });
});

test('fixture cases list the expected modules', () => {
  assert.deepEqual(Object.keys(CASES.cases).sort(), [
    'nhwc_tiny',
    'resnet_small',
    'seqfirst_tiny',
    'vit_tiny',
  ]);
  assert.equal(CASES.cases.resnet_small.layer4.neurons, 64);
});
