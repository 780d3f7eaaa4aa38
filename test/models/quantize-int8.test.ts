import assert from 'node:assert/strict';
import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import { create, fromBinary, toBinary } from '@bufbuild/protobuf';
import * as onnx from 'onnx-buf';
import * as ort from 'onnxruntime-node';
import { int8WeightMax } from '../../src/compute/_cpu-features.js';
import { valueInfo } from '../../src/compute/_onnx.js';
import { serializeModel } from '../../src/models/_onnx-graph-edit.js';
import {
  floatValues,
  int8TowerBytes,
  quantizeMatMulsInt8,
  quantizePerColumn,
} from '../../src/models/_quantize-int8.js';
import { createOnnxClipEncoder, type OnnxClipEncoder } from '../../src/models/onnx-clip-encoder.js';
import type { ClipDissectError } from '../../src/numeric/errors.js';
import {
  assembleModelDir,
  CLIP_FIXTURES,
  compare,
  GOLDEN,
  NEEDS_SHARED,
  syntheticPixels,
} from './clip-helpers.js';

const DT = onnx.TensorProto_DataType;

function floatTensor(name: string, dims: number[], data: Float32Array): onnx.TensorProto {
  return create(onnx.TensorProtoSchema, {
    name,
    dataType: DT.FLOAT,
    dims: dims.map(BigInt),
    rawData: new Uint8Array(data.slice().buffer),
  });
}

/** Deterministic values in [-1, 1) (a 32-bit LCG). */
function lcg(n: number, seed: number): Float32Array {
  const out = new Float32Array(n);
  let s = seed >>> 0;
  for (let i = 0; i < n; i++) {
    s = (Math.imul(s, 1664525) + 1013904223) >>> 0;
    out[i] = s / 2 ** 31 - 1;
  }
  return out;
}

/** x [M, K] · W [K, N] (+ bias) in float64. */
function matmul(
  x: Float32Array,
  w: Float32Array,
  m: number,
  k: number,
  n: number,
  bias?: Float32Array,
): Float64Array {
  const y = new Float64Array(m * n);
  for (let i = 0; i < m; i++)
    for (let j = 0; j < n; j++) {
      let s = bias ? bias[j] : 0;
      for (let t = 0; t < k; t++) s += x[i * k + t] * w[t * n + j];
      y[i * n + j] = s;
    }
  return y;
}

/** Counts MatMul nodes whose second input is a float32 2-D initializer. */
function floatWeightMatMuls(model: onnx.ModelProto): number {
  const g = model.graph!;
  const inits = new Map(g.initializer.map((t) => [t.name, t]));
  return g.node.filter((nd) => {
    const w = nd.opType === 'MatMul' ? inits.get(nd.input[1]) : undefined;
    return w !== undefined && w.dataType === DT.FLOAT && w.dims.length === 2;
  }).length;
}

describe('int8 quantization of MatMul weights', () => {
  test('per-column symmetric: |w - q·scale| <= scale/2, q in [-127, 127], column max maps to ±127', () => {
    const k = 5;
    const n = 3;
    const w = Float32Array.from([0.5, -2, 0, -0.25, 1, 0, 0.125, 0.3, 0, 0.5, -0.7, 0, -0.1, 2, 0]);
    const { q, scale } = quantizePerColumn(w, k, n);
    assert.deepEqual([...scale], [Math.fround(0.5 / 127), Math.fround(2 / 127), 1]); // zero column: scale 1
    assert.equal(q[0], 127);
    assert.equal(q[1], -127);
    assert.equal(q[13], 127);
    for (let i = 0; i < w.length; i++) {
      assert.ok(Math.abs(q[i]) <= 127);
      assert.ok(Math.abs(w[i] - q[i] * scale[i % n]) <= scale[i % n] / 2 + 1e-7, `element ${i}`);
    }
    assert.equal(q[2], 0);
  });

  test('a hand-built MatMul (+ bias Add) runs as DynamicQuantizeMatMul within the quantization error bound', async () => {
    const [m, k, n] = [4, 64, 24];
    const w = lcg(k * n, 7);
    const w2 = lcg(n * 8, 11);
    const bias = lcg(n, 3);
    const x = lcg(m * k, 5);
    const graph = create(onnx.GraphProtoSchema, {
      name: 'tiny',
      node: [
        create(onnx.NodeProtoSchema, { opType: 'MatMul', input: ['x', 'W'], output: ['xw'], name: 'mm' }),
        create(onnx.NodeProtoSchema, { opType: 'Add', input: ['xw', 'bias'], output: ['y'], name: 'add' }),
        // a second MatMul reading a graph output: not folded, still rewritten
        create(onnx.NodeProtoSchema, { opType: 'MatMul', input: ['y', 'W2'], output: ['z'], name: 'mm2' }),
      ],
      initializer: [
        floatTensor('W', [k, n], w),
        floatTensor('bias', [n], bias),
        floatTensor('W2', [n, 8], w2),
      ],
      input: [valueInfo('x', ['batch', k])],
      output: [valueInfo('y', ['batch', n]), valueInfo('z', ['batch', 8])],
    });
    const model = create(onnx.ModelProtoSchema, {
      irVersion: 8n,
      opsetImport: [{ domain: '', version: 17n }],
      graph,
    });
    const qmax = int8WeightMax();
    const { model: q, rewritten, biasesFolded } = quantizeMatMulsInt8(model, qmax);
    assert.equal(rewritten, 2);
    assert.equal(biasesFolded, 1); // the Add of 'bias' became the first op's bias input
    assert.deepEqual(
      q.graph!.node.map((nd) => [nd.opType, nd.domain, nd.input, nd.output]),
      [
        ['DynamicQuantizeMatMul', 'com.microsoft', ['x', 'W_int8', 'W_int8_scale', '', 'bias'], ['y']],
        ['DynamicQuantizeMatMul', 'com.microsoft', ['y', 'W2_int8', 'W2_int8_scale'], ['z']],
      ],
    );
    assert.deepEqual(
      q.graph!.initializer.map((t) => [t.name, t.dataType, t.dims.map(Number)]),
      [
        ['bias', DT.FLOAT, [n]],
        ['W_int8', DT.INT8, [k, n]],
        ['W_int8_scale', DT.FLOAT, [n]],
        ['W2_int8', DT.INT8, [n, 8]],
        ['W2_int8_scale', DT.FLOAT, [8]],
      ],
    );
    assert.deepEqual(floatValues(q.graph!.initializer[2]), quantizePerColumn(w, k, n, qmax).scale);
    assert.equal(model.graph!.node[0].opType, 'MatMul', 'input model untouched');
    const session = await ort.InferenceSession.create(serializeModel(q, q.graph!), { intraOpNumThreads: 1 });
    try {
      const res = await session.run({ x: new ort.Tensor('float32', x, [m, k]) });
      const y = res['y'].data as Float32Array;
      const want = matmul(x, w, m, k, n, bias);
      // error bound: weight error <= scale/2 per element, activation error <= a_scale/2 (uint8 over the row
      // range [min(0, x), max(0, x)]); |Δy| <= Σ_k (|x| scale/2 + |w| a_scale/2 + scale a_scale / 4)
      const { scale } = quantizePerColumn(w, k, n, qmax);
      let worst = 0;
      for (let i = 0; i < m; i++) {
        // onnxruntime quantizes A per tensor (all rows together, a range that includes 0)
        let lo = 0;
        let hi = 0;
        for (let t = 0; t < m * k; t++) {
          lo = Math.min(lo, x[t]);
          hi = Math.max(hi, x[t]);
        }
        const aScale = (hi - lo) / 255;
        for (let j = 0; j < n; j++) {
          let bound = 0;
          for (let t = 0; t < k; t++)
            bound +=
              (Math.abs(x[i * k + t]) * scale[j]) / 2 +
              (Math.abs(w[t * n + j]) * aScale) / 2 +
              (scale[j] * aScale) / 4;
          const err = Math.abs(y[i * n + j] - want[i * n + j]);
          assert.ok(err <= bound + 1e-5, `y[${i},${j}]: error ${err} > bound ${bound}`);
          assert.ok(err > 0 || bound === 0, 'the result is quantized, not the float MatMul');
          worst = Math.max(worst, err / bound);
        }
      }
      assert.ok(worst > 0.01 && worst <= 1, `worst error / bound ${worst}`);
      const z = res['z'].data as Float32Array;
      const wantZ = matmul(y, w2, m, n, 8);
      let zErr = 0;
      let zMax = 0;
      for (let i = 0; i < m * 8; i++) {
        zErr = Math.max(zErr, Math.abs(z[i] - wantZ[i]));
        zMax = Math.max(zMax, Math.abs(wantZ[i]));
      }
      assert.ok(zErr > 0 && zErr <= 0.01 * zMax, `second MatMul: max error ${zErr}, max |z| ${zMax}`);
    } finally {
      await session.release();
    }
  });
});

describe('int8 tower loading', () => {
  test('a model with external data, or without MatMul weights, is refused with the file named', async () => {
    const root = await mkdtemp(join(tmpdir(), 'clip-dissect-int8-'));
    try {
      const w = create(onnx.TensorProtoSchema, {
        name: 'W',
        dataType: DT.FLOAT,
        dims: [2n, 2n],
        dataLocation: onnx.TensorProto_DataLocation.EXTERNAL,
        externalData: [{ key: 'location', value: 'model.onnx_data' }],
      });
      const mk = (node: onnx.NodeProto, initializer: onnx.TensorProto[]) =>
        create(onnx.ModelProtoSchema, {
          irVersion: 8n,
          opsetImport: [{ domain: '', version: 17n }],
          graph: {
            name: 'g',
            node: [node],
            initializer,
            input: [valueInfo('x', [1, 2])],
            output: [valueInfo('y', [1, 2])],
          },
        });
      const ext = join(root, 'ext.onnx');
      await writeFile(
        ext,
        toBinary(
          onnx.ModelProtoSchema,
          mk(create(onnx.NodeProtoSchema, { opType: 'MatMul', input: ['x', 'W'], output: ['y'] }), [w]),
        ),
      );
      await assert.rejects(int8TowerBytes(ext), (e: ClipDissectError) => {
        assert.equal(e.code, 'ERR_MODEL_FORMAT');
        assert.ok(e.message.includes(ext) && /external data/.test(e.message), e.message);
        return true;
      });
      const none = join(root, 'none.onnx');
      await writeFile(
        none,
        toBinary(
          onnx.ModelProtoSchema,
          mk(create(onnx.NodeProtoSchema, { opType: 'Relu', input: ['x'], output: ['y'] }), []),
        ),
      );
      await assert.rejects(int8TowerBytes(none), (e: ClipDissectError) => {
        assert.equal(e.code, 'ERR_MODEL_FORMAT');
        assert.ok(e.message.includes(none) && /no MatMul/.test(e.message), e.message);
        return true;
      });
      await assert.rejects(int8TowerBytes(join(root, 'missing.onnx')), { code: 'ERR_MODEL_FILES' });
    } finally {
      await rm(root, { recursive: true, force: true });
    }
  });
});

describe('int8 CLIP towers on the tiny fixture model', { skip: NEEDS_SHARED }, () => {
  let dir: string;
  let cleanup: () => Promise<void>;
  let fp32: OnnxClipEncoder;
  let int8: OnnxClipEncoder;

  before(async () => {
    ({ dir, cleanup } = await assembleModelDir());
    fp32 = await createOnnxClipEncoder(dir, { threads: 1 });
    int8 = await createOnnxClipEncoder(dir, { threads: 1, dtype: 'int8' });
  });
  after(async () => {
    await fp32?.release();
    await int8?.release();
    await cleanup?.();
  });

  test('every MatMul with float initializer weights is rewritten', async () => {
    for (const tower of ['text_model', 'vision_model']) {
      const model = fromBinary(
        onnx.ModelProtoSchema,
        await readFile(join(CLIP_FIXTURES, 'model', 'onnx', `${tower}.onnx`)),
      );
      const want = floatWeightMatMuls(model);
      const { model: q, rewritten } = quantizeMatMulsInt8(model);
      assert.ok(want >= 10, `${tower}: ${want} MatMuls with weights`);
      assert.equal(rewritten, want, tower);
      assert.equal(floatWeightMatMuls(q), 0, tower);
      assert.equal(q.graph!.node.filter((nd) => nd.opType === 'DynamicQuantizeMatMul').length, want, tower);
      // the int8 weights are the fp32 ones quantized: no weight is kept twice
      const names = new Set(q.graph!.initializer.map((t) => t.name));
      for (const nd of model.graph!.node.filter((x) => x.opType === 'MatMul'))
        if (names.has(nd.input[1])) assert.fail(`${tower}: fp32 weight ${nd.input[1]} kept`);
      const int8Bytes = q
        .graph!.initializer.filter((t) => t.dataType === DT.INT8)
        .reduce((s, t) => s + t.rawData.length, 0);
      assert.ok(int8Bytes > 0);
    }
  });

  test('image and text embeddings are close to fp32 ones', async () => {
    const pixels = syntheticPixels(4);
    const { minCosine: imageCos } = compare(
      await int8.encodeImages(pixels, 4),
      await fp32.encodeImages(pixels, 4),
    );
    const { minCosine: textCos } = compare(
      await int8.encodeText(GOLDEN.concepts),
      await fp32.encodeText(GOLDEN.concepts),
    );
    console.log(`int8 vs fp32: image cosine >= ${imageCos.toFixed(5)}, text cosine >= ${textCos.toFixed(5)}`);
    // 7-bit weights (x86 without VNNI) have twice the quantization step, so about four times 1 - cosine
    const floor = int8WeightMax() === 127 ? 0.999 : 0.997;
    assert.ok(imageCos >= floor && imageCos < 0.999999, `image cosine ${imageCos}`);
    assert.ok(textCos >= floor && textCos < 0.999999, `text cosine ${textCos}`);
  });

  test('int8 reads the fp32 files: a folder with only the q8 text file is refused, the fp32 file named', async () => {
    const { dir: d2, cleanup: c2 } = await assembleModelDir('renamed', {
      'onnx/text_model.onnx': 'onnx/text_model_quantized.onnx',
    });
    try {
      await assert.rejects(createOnnxClipEncoder(d2, { dtype: 'int8' }), (e: ClipDissectError) => {
        assert.equal(e.code, 'ERR_MODEL_FILES');
        assert.match(e.message, /text_model\.onnx/);
        return true;
      });
    } finally {
      await c2();
    }
  });
});
