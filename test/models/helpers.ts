/** Fixtures of test/fixtures/models (written by scripts/export_target_models.py) and comparison helpers. */
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { create, toBinary } from '@bufbuild/protobuf';
import * as onnx from 'onnx-buf';
import { valueInfo } from '../../src/compute/_onnx.js';
import { npyToMatrix, readNpy } from '../../src/io/npy.js';
import type { Matrix } from '../../src/numeric/matrix.js';

export const MODELS = fileURLToPath(new URL('../../../test/fixtures/models/', import.meta.url));

export const CASES = JSON.parse(readFileSync(`${MODELS}cases.json`, 'utf8')) as {
  torch: string;
  cases: Record<string, Record<string, { pools: string[]; neurons: number }>>;
};

/** The NCHW float32 input batch of a case and its batch size. */
export async function caseInput(name: string): Promise<{ data: Float32Array; n: number }> {
  const a = await readNpy(`${MODELS}${name}_input.npy`);
  return { data: a.data as Float32Array, n: a.shape[0] };
}

/** The PyTorch hook's pooled activations: pool is 'avg', 'max', 'cls', 'mean' or 'none' (2-D outputs). */
export async function golden(name: string, module: string, pool: string): Promise<Matrix> {
  return npyToMatrix(await readNpy(`${MODELS}${name}_${module}_${pool}.npy`), `${module}_${pool}`);
}

/** max |a - b| / max |b|: the error relative to the activations' scale. */
export function relativeError(got: Matrix, want: Matrix): number {
  assert.equal(got.rows, want.rows, 'rows');
  assert.equal(got.cols, want.cols, 'cols');
  let diff = 0;
  let scale = 0;
  for (let i = 0; i < want.data.length; i++) {
    diff = Math.max(diff, Math.abs(got.data[i] - want.data[i]));
    scale = Math.max(scale, Math.abs(want.data[i]));
  }
  return diff / Math.max(scale, 1e-12);
}

export function assertClose(got: Matrix | undefined, want: Matrix, what: string, tol = 1e-4): void {
  assert.ok(got, `${what}: missing`);
  const err = relativeError(got, want);
  assert.ok(err <= tol, `${what}: relative error ${err.toExponential(2)} > ${tol}`);
}

function vi(name: string, dims: (number | string)[] | null): onnx.ValueInfoProto {
  return dims === null ? create(onnx.ValueInfoProtoSchema, { name }) : valueInfo(name, dims);
}

/**
 * A hand-made model with TorchScript-style scoped node names: input [batch, 3, 4, 4] → `/block/Reshape` to the
 * constant shape [3, 48] (so it runs only at batch size 3, like a badly traced export) → `/head/Relu`.
 * With `declareShapes` the intermediate shapes are declared (value_info) so that no probe run is needed.
 */
export function batchThreeOnlyModel(declareShapes: boolean): Uint8Array {
  const shape = create(onnx.TensorProtoSchema, {
    name: 'shape',
    dims: [2n],
    dataType: onnx.TensorProto_DataType.INT64,
    int64Data: [3n, 48n],
  });
  const graph = create(onnx.GraphProtoSchema, {
    name: 'batch_three_only',
    node: [
      create(onnx.NodeProtoSchema, {
        opType: 'Reshape',
        name: '/block/Reshape',
        input: ['input', 'shape'],
        output: ['/block/Reshape_output_0'],
      }),
      create(onnx.NodeProtoSchema, {
        opType: 'Relu',
        name: '/head/Relu',
        input: ['/block/Reshape_output_0'],
        output: ['out'],
      }),
    ],
    initializer: [shape],
    input: [vi('input', ['batch', 3, 4, 4])],
    output: [vi('out', declareShapes ? ['batch', 48] : null)],
    valueInfo: declareShapes ? [vi('/block/Reshape_output_0', ['batch', 48])] : [],
  });
  const model = create(onnx.ModelProtoSchema, {
    irVersion: 8n,
    producerName: 'clip-dissect-test',
    opsetImport: [{ domain: '', version: 17n }],
    graph,
  });
  return toBinary(onnx.ModelProtoSchema, model);
}

/**
 * Encodes three texts in batches of 2 through `encode` (an encoder's encodeText or encode with those options),
 * aborting after the first batch: the promise must reject with the signal's reason, progress having reached
 * 2 of 3 and no further.
 */
export async function assertStopsBetweenBatches(
  encode: (
    texts: string[],
    options: { batchSize: number; onProgress: (e: { done: number }) => void; signal: AbortSignal },
  ) => Promise<unknown>,
): Promise<void> {
  const reason = new Error('stopped by the caller');
  const ac = new AbortController();
  const done: number[] = [];
  const onProgress = (e: { done: number }) => {
    done.push(e.done);
    if (e.done === 2) ac.abort(reason);
  };
  await assert.rejects(
    encode(['a dog', 'a cat', 'a tree'], { batchSize: 2, onProgress, signal: ac.signal }),
    reason,
  );
  assert.deepEqual(done, [0, 2]);
}
