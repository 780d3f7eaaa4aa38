import assert from 'node:assert/strict';
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, it } from 'node:test';
import { create, toBinary } from '@bufbuild/protobuf';
import * as onnx from 'onnx-buf';
import { valueInfo } from '../../src/compute/_onnx.js';
import { linearWeightsBetween } from '../../src/models/_onnx-weights.js';
import type { Matrix } from '../../src/numeric/matrix.js';
import { tempDir } from '../helpers/cli.js';
import { golden, MODELS, relativeError } from './helpers.js';

/** x·Wᵀ + b for every row x of `x` (W is [to, from]). */
function linear(x: Matrix, w: Matrix, b: Float32Array | null): Matrix {
  const out = new Float32Array(x.rows * w.rows);
  for (let i = 0; i < x.rows; i++)
    for (let t = 0; t < w.rows; t++) {
      let s = b ? b[t] : 0;
      for (let f = 0; f < w.cols; f++) s += x.data[i * x.cols + f] * w.data[t * w.cols + f];
      out[i * w.rows + t] = s;
    }
  return { rows: x.rows, cols: w.rows, data: out };
}

const FLOAT = onnx.TensorProto_DataType.FLOAT;
const tensor = (name: string, dims: number[], values: number[]) =>
  create(onnx.TensorProtoSchema, { name, dims: dims.map(BigInt), dataType: FLOAT, floatData: values });
const node = (opType: string, name: string, input: string[], output: string[]) =>
  create(onnx.NodeProtoSchema, { opType, name, input, output });

/** input [b, 3] → /body/Relu → (/head/Gemm | /head/MatMul + /head/Add) → out [b, 2]. */
function tinyModel(kind: 'gemm-transB0' | 'matmul'): string {
  // W[to, from] = [[1, 2, 3], [4, 5, 6]]; stored [in, out] = its transpose
  const stored = tensor('head.w', [3, 2], [1, 4, 2, 5, 3, 6]);
  const bias = tensor('head.b', [2], [0.5, -1]);
  const nodes =
    kind === 'matmul'
      ? [
          node('Relu', '/body/Relu', ['input'], ['h']),
          node('MatMul', '/head/MatMul', ['h', 'head.w'], ['mm']),
          node('Add', '/head/Add', ['mm', 'head.b'], ['out']),
        ]
      : [
          node('Relu', '/body/Relu', ['input'], ['h']),
          create(onnx.NodeProtoSchema, {
            opType: 'Gemm',
            name: '/head/Gemm',
            input: ['h', 'head.w', 'head.b'],
            output: ['out'],
            attribute: [
              { name: 'transB', type: onnx.AttributeProto_AttributeType.INT, i: 0n },
              { name: 'alpha', type: onnx.AttributeProto_AttributeType.FLOAT, f: 2 },
            ],
          }),
        ];
  const graph = create(onnx.GraphProtoSchema, {
    name: 'tiny',
    node: nodes,
    initializer: [stored, bias],
    input: [valueInfo('input', ['batch', 3])],
    output: [valueInfo('out', ['batch', 2])],
  });
  const model = create(onnx.ModelProtoSchema, {
    irVersion: 8n,
    opsetImport: [{ domain: '', version: 17n }],
    graph,
  });
  const path = join(tempDir(), `${kind}.onnx`);
  writeFileSync(path, toBinary(onnx.ModelProtoSchema, model));
  return path;
}

describe('linearWeightsBetween', () => {
  for (const exporter of ['ts', 'dynamo']) {
    it(`resnet_small (${exporter} export): layer4 → fc reproduces PyTorch's logits from layer4's pooled output`, async () => {
      const lw = await linearWeightsBetween(
        `${MODELS}resnet_small_${exporter}.onnx`,
        { name: 'layer4' },
        { name: 'fc' },
      );
      assert.equal(lw.opType, 'Gemm');
      assert.equal(lw.weightTensor, 'fc.weight');
      assert.equal(lw.storedLayout, 'out,in');
      assert.deepEqual([lw.weight.rows, lw.weight.cols], [10, 64]);
      assert.deepEqual(
        lw.path,
        exporter === 'ts' ? ['GlobalAveragePool', 'Flatten'] : ['ReduceMean', 'Reshape'],
      );
      const logits = linear(await golden('resnet_small', 'layer4', 'avg'), lw.weight, lw.bias);
      const want = await golden('resnet_small', 'fc', 'none');
      assert.ok(relativeError(logits, want) < 1e-5, `relative error ${relativeError(logits, want)}`);
    });
  }

  it('vit_tiny: encoder → heads goes through the class-token Gather', async () => {
    const lw = await linearWeightsBetween(
      `${MODELS}vit_tiny_ts.onnx`,
      { name: 'encoder' },
      { name: 'heads' },
    );
    assert.deepEqual(lw.path, ['Gather']);
    const logits = linear(await golden('vit_tiny', 'encoder', 'cls'), lw.weight, lw.bias);
    assert.ok(relativeError(logits, await golden('vit_tiny', 'heads', 'none')) < 1e-5);
  });

  it('Gemm with transB = 0 and alpha = 2: W = alpha·Bᵀ', async () => {
    const lw = await linearWeightsBetween(tinyModel('gemm-transB0'), { name: 'body' }, { name: 'head' });
    assert.equal(lw.storedLayout, 'in,out');
    assert.deepEqual(Array.from(lw.weight.data), [2, 4, 6, 8, 10, 12]);
    assert.deepEqual(Array.from(lw.bias ?? []), [0.5, -1]);
  });

  it('MatMul [in, out] followed by a bias Add', async () => {
    const lw = await linearWeightsBetween(tinyModel('matmul'), { name: 'body' }, { name: 'head' });
    assert.equal(lw.opType, 'MatMul');
    assert.deepEqual([lw.weight.rows, lw.weight.cols], [2, 3]);
    assert.deepEqual(Array.from(lw.weight.data), [1, 2, 3, 4, 5, 6]);
    assert.deepEqual(Array.from(lw.bias ?? []), [0.5, -1]);
  });

  it('layers that no single linear layer connects: an error naming both and what was found', async () => {
    await assert.rejects(
      linearWeightsBetween(`${MODELS}resnet_small_ts.onnx`, { name: 'layer3' }, { name: 'fc' }),
      (e: Error) =>
        /no Gemm or MatMul of layer 'fc' reads the output of layer 'layer3'/.test(e.message) &&
        /Gemm '\/fc\/Gemm' reads '\/Flatten_output_0' through GlobalAveragePool → Flatten, which comes from Relu/.test(
          e.message,
        ),
    );
    await assert.rejects(
      linearWeightsBetween(`${MODELS}resnet_small_ts.onnx`, { name: 'layer3' }, { name: 'layer4' }),
      /layer 'layer4' of .* holds no Gemm or MatMul node/,
    );
    await assert.rejects(
      linearWeightsBetween(`${MODELS}resnet_small_ts.onnx`, { name: 'layer4' }, { name: 'fcc' }),
      /'fcc' is neither a module nor a tensor/,
    );
  });
});
