/**
 * In-memory int8 weight quantization of an fp32 ONNX model (the `dtype: 'int8'` CLIP towers; internal).
 *
 * Every `MatMul` whose second input is a float32 2-D initializer W [K, N] becomes the onnxruntime contrib op
 * `com.microsoft.DynamicQuantizeMatMul(A, B, b_scale, b_zero_point?, bias?)`: A stays float and is quantized
 * per run by onnxruntime (uint8, asymmetric); B is W quantized symmetrically per column,
 *
 *     scale[n] = max_k |W[k, n]| / qmax        (1 where the column is all zeros)
 *     B[k, n]  = clamp(round(W[k, n] / scale[n]), -qmax, qmax)     int8, zero point 0 (the input is omitted)
 *
 * so |W - B·scale| <= scale / 2 elementwise. qmax is 127 where the CPU's kernels accumulate in 32 bits (VNNI,
 * Arm) and 63 on x86 without VNNI, whose int16 pair sums would saturate (compute/_cpu-features.ts). Signed weights take onnxruntime's U8S8 kernels (VNNI on AVX-512
 * CPUs), about twice as fast as the unsigned weights of the hub's `*_quantized.onnx`. A following `Add` of a
 * float32 1-D initializer [N] (a Linear layer's bias) is folded into the op's `bias` input when the MatMul
 * output feeds nothing else.
 */

import { create, fromBinary } from '@bufbuild/protobuf';
import * as onnx from 'onnx-buf';
import { readRegularFile } from '../io/regular-file.js';
import { ClipDissectError } from '../numeric/errors.js';
import { serializeModel } from './_onnx-graph-edit.js';

const DT = onnx.TensorProto_DataType;
const MS_DOMAIN = 'com.microsoft';

export interface Int8Result {
  model: onnx.ModelProto;
  /** MatMul nodes replaced by DynamicQuantizeMatMul. */
  rewritten: number;
  /** Of those, how many took a following bias Add in. */
  biasesFolded: number;
}

/** The values of a float32 initializer (raw_data little-endian or float_data). */
export function floatValues(t: onnx.TensorProto): Float32Array {
  if (t.rawData.length > 0) {
    const copy = new Uint8Array(t.rawData); // a copy at offset 0 (raw_data may be an unaligned view)
    return new Float32Array(copy.buffer, 0, copy.byteLength / 4);
  }
  return Float32Array.from(t.floatData);
}

function isInternal(t: onnx.TensorProto): boolean {
  return t.dataLocation !== onnx.TensorProto_DataLocation.EXTERNAL;
}

/** Symmetric per-column int8 quantization of a row-major [K, N] matrix. */
export function quantizePerColumn(
  w: Float32Array,
  k: number,
  n: number,
  qmax = 127,
): { q: Int8Array; scale: Float32Array } {
  const maxAbs = new Float32Array(n);
  for (let r = 0; r < k; r++) {
    const off = r * n;
    for (let c = 0; c < n; c++) {
      const a = Math.abs(w[off + c]);
      if (a > maxAbs[c]) maxAbs[c] = a;
    }
  }
  const scale = new Float32Array(n);
  const inv = new Float64Array(n);
  for (let c = 0; c < n; c++) {
    scale[c] = maxAbs[c] > 0 ? maxAbs[c] / qmax : 1;
    inv[c] = 1 / scale[c];
  }
  const q = new Int8Array(k * n);
  for (let r = 0; r < k; r++) {
    const off = r * n;
    for (let c = 0; c < n; c++) {
      const v = Math.round(w[off + c] * inv[c]);
      q[off + c] = Math.min(qmax, Math.max(-qmax, v));
    }
  }
  return { q, scale };
}

function tensor(
  name: string,
  dataType: number,
  dims: readonly number[],
  bytes: Uint8Array,
): onnx.TensorProto {
  return create(onnx.TensorProtoSchema, {
    name,
    dataType,
    dims: dims.map((d) => BigInt(d)),
    rawData: new Uint8Array(bytes.buffer, bytes.byteOffset, bytes.byteLength) as Uint8Array<ArrayBuffer>,
  });
}

/**
 * The model with its MatMuls of float32 2-D initializer weights rewritten (see the file comment). Pure: the
 * input model is not modified. Only the main graph is rewritten (CLIP towers have no subgraphs).
 */
export function quantizeMatMulsInt8(model: onnx.ModelProto, qmax = 127): Int8Result {
  const g = model.graph;
  if (!g) return { model, rewritten: 0, biasesFolded: 0 };
  const inits = new Map(g.initializer.map((t) => [t.name, t]));
  const graphInputs = new Set(g.input.map((i) => i.name));
  const graphOutputs = new Set(g.output.map((o) => o.name));
  const consumers = new Map<string, number[]>();
  g.node.forEach((nd, i) => {
    for (const name of nd.input) if (name !== '') consumers.set(name, [...(consumers.get(name) ?? []), i]);
  });
  const used = new Set<string>([...g.initializer.map((t) => t.name), ...g.node.flatMap((nd) => nd.output)]);
  const fresh = (base: string) => {
    let name = base;
    for (let i = 1; used.has(name); i++) name = `${base}_${i}`;
    used.add(name);
    return name;
  };

  const isWeight = (name: string): onnx.TensorProto | undefined => {
    const t = inits.get(name);
    if (!t || graphInputs.has(name) || t.dataType !== DT.FLOAT || t.dims.length !== 2 || !isInternal(t))
      return;
    return t;
  };
  const isBias = (name: string, cols: number): boolean => {
    const t = inits.get(name);
    return (
      !!t &&
      !graphInputs.has(name) &&
      t.dataType === DT.FLOAT &&
      t.dims.length === 1 &&
      Number(t.dims[0]) === cols &&
      isInternal(t)
    );
  };

  const quantized = new Map<string, { b: string; scale: string }>(); // weight initializer → its int8 pair
  const added: onnx.TensorProto[] = [];
  const dropped = new Set<number>(); // folded Add nodes
  const nodes: onnx.NodeProto[] = [];
  let rewritten = 0;
  let biasesFolded = 0;
  g.node.forEach((nd, i) => {
    if (dropped.has(i)) return;
    const w =
      nd.opType === 'MatMul' && (nd.domain === '' || nd.domain === 'ai.onnx')
        ? isWeight(nd.input[1])
        : undefined;
    if (!w) {
      nodes.push(nd);
      return;
    }
    const [k, n] = w.dims.map(Number);
    let q = quantized.get(w.name);
    if (!q) {
      const { q: qb, scale } = quantizePerColumn(floatValues(w), k, n, qmax);
      q = { b: fresh(`${w.name}_int8`), scale: fresh(`${w.name}_int8_scale`) };
      added.push(tensor(q.b, DT.INT8, [k, n], new Uint8Array(qb.buffer)));
      added.push(tensor(q.scale, DT.FLOAT, [n], new Uint8Array(scale.buffer)));
      quantized.set(w.name, q);
    }
    let output = nd.output[0];
    let bias = '';
    const next = consumers.get(output) ?? [];
    if (next.length === 1 && !graphOutputs.has(output)) {
      const add = g.node[next[0]];
      if (add.opType === 'Add' && add.domain === '' && add.input.length === 2) {
        const other = add.input[0] === output ? add.input[1] : add.input[0];
        if (other !== output && isBias(other, n)) {
          bias = other;
          output = add.output[0];
          dropped.add(next[0]);
          biasesFolded++;
        }
      }
    }
    nodes.push(
      create(onnx.NodeProtoSchema, {
        name: nd.name ? `${nd.name}_int8` : '',
        opType: 'DynamicQuantizeMatMul',
        domain: MS_DOMAIN,
        input: bias ? [nd.input[0], q.b, q.scale, '', bias] : [nd.input[0], q.b, q.scale],
        output: [output],
      }),
    );
    rewritten++;
  });
  if (rewritten === 0) return { model, rewritten, biasesFolded };

  // the fp32 weights (and folded biases) nothing reads any more
  const reads = new Set<string>([...g.output.map((o) => o.name)]);
  for (const nd of nodes) for (const name of nd.input) reads.add(name);
  const initializer = [...g.initializer.filter((t) => reads.has(t.name)), ...added];
  const opsetImport = model.opsetImport.some((o) => o.domain === MS_DOMAIN)
    ? model.opsetImport
    : [...model.opsetImport, create(onnx.OperatorSetIdProtoSchema, { domain: MS_DOMAIN, version: 1n })];
  const graph: onnx.GraphProto = { ...g, node: nodes, initializer };
  return { model: { ...model, opsetImport, graph }, rewritten, biasesFolded };
}

/**
 * An fp32 CLIP tower file as int8 ONNX bytes for onnxruntime. ClipDissectErrors: 'ERR_MODEL_FILES' (unreadable),
 * 'ERR_MODEL_FORMAT' (not ONNX; weights in external data files; no MatMul weights to quantize).
 */
export async function int8TowerBytes(
  path: string,
  qmax = 127,
): Promise<{ bytes: Uint8Array; rewritten: number }> {
  let raw: Uint8Array;
  try {
    raw = await readRegularFile(path);
  } catch (e) {
    throw new ClipDissectError('ERR_MODEL_FILES', `cannot read ${path}: ${(e as Error).message}`, {
      cause: e,
    });
  }
  let model: onnx.ModelProto;
  try {
    model = fromBinary(onnx.ModelProtoSchema, raw);
  } catch (e) {
    throw new ClipDissectError(
      'ERR_MODEL_FORMAT',
      `${path} is not an ONNX model (protobuf parse failed: ${(e as Error).message})`,
      { cause: e },
    );
  }
  const g = model.graph;
  if (g?.initializer.some((t) => !isInternal(t)))
    throw new ClipDissectError(
      'ERR_MODEL_FORMAT',
      `dtype 'int8' quantizes the weights of ${path} in memory, but this file keeps them in an external data file (.onnx_data); use dtype 'fp32' or 'q8' for this model`,
    );
  const { model: out, rewritten } = quantizeMatMulsInt8(model, qmax);
  if (rewritten === 0 || !out.graph)
    throw new ClipDissectError(
      'ERR_MODEL_FORMAT',
      `dtype 'int8': ${path} has no MatMul with float32 2-D initializer weights to quantize; use dtype 'fp32'`,
    );
  return { bytes: serializeModel(out, out.graph), rewritten };
}
