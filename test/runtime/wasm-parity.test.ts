/**
 * The WebAssembly runtime against the native one on the same inputs: the tiny target networks' pooled
 * activations, the tiny CLIP's text and image features, float16 tensors through a session, and one tiny
 * dissection through the CLI with `--runtime wasm`. Each runtime's outputs are also checked against the
 * PyTorch golden values by the model tests (`npm run test:wasm` runs those on wasm).
 */
import assert from 'node:assert/strict';
import { readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, test } from 'node:test';
import { create, toBinary } from '@bufbuild/protobuf';
import * as onnx from 'onnx-buf';
import { createOnnxClipEncoder } from '../../src/models/onnx-clip-encoder.js';
import { createOnnxTargetModel } from '../../src/models/onnx-target-model.js';
import type { Matrix } from '../../src/numeric/matrix.js';
import {
  createSession,
  floatTensor,
  floatTensorValues,
  type RuntimeName,
  selectRuntime,
} from '../../src/runtime/index.js';
import { cli, spawnCli, tempDir } from '../helpers/cli.js';
import { maxAbsDiff } from '../helpers/data.js';
import { assembleModelDir, GOLDEN, NEEDS_SHARED, syntheticPixels } from '../models/clip-helpers.js';
import { caseInput, MODELS } from '../models/helpers.js';
import { FOLDED, PREPROCESS_JSON, probeFolder } from '../pipeline/helpers.js';

const RUNTIMES: readonly RuntimeName[] = ['native', 'wasm'];
/** Largest |wasm − native| accepted, relative to the largest |native| value (float32 kernels that sum in
 * another order). */
const TOLERANCE = 1e-5;

/** Runs `fn` once per runtime; returns the results by runtime. */
async function onBoth<T>(fn: () => Promise<T>): Promise<Record<RuntimeName, T>> {
  const out = {} as Record<RuntimeName, T>;
  for (const r of RUNTIMES) {
    await selectRuntime(r);
    out[r] = await fn();
  }
  await selectRuntime('auto');
  return out;
}

function assertAgree(native: ArrayLike<number>, wasm: ArrayLike<number>, what: string): void {
  assert.equal(wasm.length, native.length, what);
  const scale = Math.max(...Array.from(native, Math.abs));
  const diff = maxAbsDiff(native, wasm);
  assert.ok(diff <= TOLERANCE * scale, `${what}: max |wasm − native| ${diff} (scale ${scale})`);
}

describe('wasm and native runtimes agree', () => {
  for (const [name, layers, pool] of [
    ['resnet_small_ts', ['conv1', 'layer2', 'layer4', 'fc'], 'avg'],
    ['vit_tiny_ts', ['conv_proj', 'encoder'], 'max'],
  ] as const) {
    test(`${name}: pooled activations of ${layers.join(', ')}`, async () => {
      const { data, n } = await caseInput(name.replace(/_ts$/, ''));
      const acts = await onBoth(async () => {
        const m = await createOnnxTargetModel(`${MODELS}${name}.onnx`, { threads: 2 });
        try {
          return await m.activations(
            data,
            n,
            [...layers],
            pool === 'max' && name.startsWith('vit') ? 'avg' : pool,
          );
        } finally {
          await m.release();
        }
      });
      for (const l of layers) assertAgree(acts.native.get(l)!.data, acts.wasm.get(l)!.data, `${name} ${l}`);
    });
  }

  test('tiny CLIP: text and image features', { skip: NEEDS_SHARED }, async () => {
    const { dir, cleanup } = await assembleModelDir();
    try {
      const feats = await onBoth(async () => {
        const enc = await createOnnxClipEncoder(dir, { threads: 2 });
        try {
          const text: Matrix = await enc.encodeText(GOLDEN.concepts);
          const image = await enc.encodeImages(syntheticPixels(3), 3);
          return { text, image };
        } finally {
          await enc.release();
        }
      });
      assertAgree(feats.native.text.data, feats.wasm.text.data, 'text features');
      assertAgree(feats.native.image.data, feats.wasm.image.data, 'image features');
    } finally {
      await cleanup();
    }
  });

  test('float16 tensors in and out (the fp16 exports take and give float16)', async () => {
    // y = float16(2 · float32(x)), x and y float16 [2, 3]
    const T = onnx.TensorProto_DataType;
    const value = (name: string) =>
      create(onnx.ValueInfoProtoSchema, {
        name,
        type: {
          value: {
            case: 'tensorType',
            value: {
              elemType: T.FLOAT16,
              shape: { dim: [2, 3].map((d) => ({ value: { case: 'dimValue' as const, value: BigInt(d) } })) },
            },
          },
        },
      });
    const cast = (input: string, output: string, to: number) =>
      create(onnx.NodeProtoSchema, {
        opType: 'Cast',
        input: [input],
        output: [output],
        attribute: [{ name: 'to', type: onnx.AttributeProto_AttributeType.INT, i: BigInt(to) }],
      });
    const model = toBinary(
      onnx.ModelProtoSchema,
      create(onnx.ModelProtoSchema, {
        irVersion: 8n,
        opsetImport: [{ domain: '', version: 17n }],
        graph: {
          name: 'fp16',
          input: [value('x')],
          output: [value('y')],
          node: [
            cast('x', 'xf', T.FLOAT),
            create(onnx.NodeProtoSchema, { opType: 'Add', input: ['xf', 'xf'], output: ['yf'] }),
            cast('yf', 'y', T.FLOAT16),
          ],
        },
      }),
    );
    const x = Float32Array.of(1, 0.5, -2, 0.1, 1000, -3.25);
    const ys = await onBoth(async () => {
      const s = await createSession(model, { device: 'cpu', threads: 1 }, 'an fp16 graph');
      try {
        const res = await s.run({ x: floatTensor('float16', x, [2, 3]) });
        assert.equal(res['y'].type, 'float16');
        return floatTensorValues(res['y'])!;
      } finally {
        await s.release();
      }
    });
    assert.deepEqual([...ys.native], [2, 1, -4, 0.199951171875, 2000, -6.5]);
    assert.deepEqual([...ys.wasm], [...ys.native]);
  });

  test('a tiny dissection through the CLI with --runtime wasm gives the labels of the native runtime', {
    skip: NEEDS_SHARED,
  }, async () => {
    const { dir: clip, cleanup } = await assembleModelDir();
    try {
      const concepts = join(tempDir(), 'concepts.txt');
      writeFileSync(concepts, 'dog\ncat\nbird\ncar\ntree\nwater\nsky\ngrass\nroad\nperson\n');
      const runs = {} as Record<
        RuntimeName,
        { csv: string[]; args: Record<string, unknown>; stderr: string }
      >;
      for (const runtime of RUNTIMES) {
        const out = tempDir();
        const r = await spawnCli([
          'dissect',
          ...[
            '--target',
            FOLDED,
            '--layers',
            'conv1,layer4',
            '--probe',
            probeFolder(),
            '--concepts',
            concepts,
          ],
          ...['--clip', clip, '--preprocess', PREPROCESS_JSON, '--top-k', '5', '--threads', '2'],
          ...['--cache-dir', tempDir(), '--out', out, '--no-report', '--no-trust', '--runtime', runtime],
        ]).done;
        assert.equal(r.code, 0, r.stderr);
        runs[runtime] = {
          csv: readFileSync(join(out, 'descriptions.csv'), 'utf8').trim().split('\n'),
          args: JSON.parse(readFileSync(join(out, 'args.json'), 'utf8')),
          stderr: r.stderr,
        };
      }
      assert.match(
        runs.wasm.stderr,
        /^runtime: wasm \(onnxruntime-web 1\.31\.1, WebAssembly; requested\); for the faster native runtime, install/m,
      );
      assert.match(runs.native.stderr, /^runtime: native \(onnxruntime-node 1\.31\.1; requested\)$/m);
      assert.equal(runs.wasm.args['runtime'], 'wasm');
      assert.equal(runs.native.args['runtime'], 'native');
      assert.equal(runs.wasm.csv.length, 1 + 8 + 64);
      // layer,unit,description,similarity: the same label per neuron, scores within the tolerance
      const rows = (csv: string[]) => csv.slice(1).map((l) => l.split(','));
      const [native, wasm] = [rows(runs.native.csv), rows(runs.wasm.csv)];
      assert.deepEqual(
        wasm.map((r) => r.slice(0, 3)),
        native.map((r) => r.slice(0, 3)),
        'labels',
      );
      assertAgree(
        native.map((r) => Number(r[3])),
        wasm.map((r) => Number(r[3])),
        'similarity scores',
      );
    } finally {
      await cleanup();
    }
  });

  test('the CLI refuses --device cuda on wasm and an unknown --runtime before any work', async () => {
    const out = join(tempDir(), 'out');
    const args = [
      'dissect',
      '--target',
      FOLDED,
      '--out',
      out,
      '--quiet',
      '--device',
      'cuda',
      '--runtime',
      'wasm',
    ];
    const r = await cli(args);
    assert.equal(r.code, 1);
    assert.match(
      r.stderr,
      /^clip-dissect: error: device 'cuda' was requested but the runtime is wasm \(onnxruntime-web 1\.31\.1\), which has no CUDA execution provider; install the native runtime next to clip-dissect: .*; or use device 'cpu'\n$/,
    );
    const bad = await cli(['layers', FOLDED, '--runtime', 'gpu']);
    assert.equal(bad.code, 1);
    assert.match(bad.stderr, /--runtime must be 'auto', 'native' or 'wasm' but got 'gpu'/);
    await selectRuntime('auto');
  });
});
