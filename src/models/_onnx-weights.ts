/**
 * The weight matrix that connects two layers of an exported network (internal to src/models): the Gemm or
 * MatMul inside the `to` module whose data input is the `from` layer's output, reached through the ops that
 * keep one value per channel (torchvision ResNet: layer4 → avgpool (GlobalAveragePool / ReduceMean) → flatten
 * (Flatten / Reshape) → fc (Gemm)). The weights are read from the model's initializers (raw or typed data,
 * external data files, float32 / float16 / bfloat16 / float64), through Identity, Transpose and Constant nodes.
 *
 * Layouts: Gemm Y = α·A·op(B) + β·C with op(B) = Bᵀ when transB = 1 (torch's export of nn.Linear: B is
 * [out, in]) and B when transB = 0 (B is [in, out]); MatMul Y = A·B with B [in, out]. The result is always
 * W[to, from] (row-major, nn.Linear's `weight` layout), scaled by α.
 */

import * as onnx from 'onnx-buf';
import { platform } from '#platform';
import { ClipDissectError, formatChoices } from '../numeric/errors.js';
import { float16ToFloat32 } from '../numeric/float16.js';
import type { Matrix } from '../numeric/matrix.js';
import { analyseModules, nodeScopes } from './_module-tree.js';
import { externalEntries } from './_onnx-external-data.js';
import { graphView, type LoadedModel, loadOnnxModel } from './_onnx-graph-edit.js';

const DT = onnx.TensorProto_DataType;

/** Ops between the `from` output and the linear layer that keep one value per channel. */
const PASS_THROUGH: ReadonlySet<string> = new Set([
  'Flatten',
  'Reshape',
  'GlobalAveragePool',
  'GlobalMaxPool',
  'ReduceMean',
  'ReduceMax',
  'Squeeze',
  'Unsqueeze',
  'Identity',
  'Dropout',
  'Cast',
  'Gather',
]);

export interface LayerRef {
  /** A PyTorch module name (`layer4`, `fc`) or an ONNX tensor name. */
  name: string;
  /** The output tensor of `name` when known (e.g. from the dissection's args.json). */
  tensor?: string;
}

export interface LinearWeights {
  /** W[to, from], row-major: nTo × nFrom. */
  weight: Matrix;
  /** The bias of the `to` units (length nTo), or null when the layer has none. */
  bias: Float32Array | null;
  /** The Gemm / MatMul node. */
  node: string;
  opType: 'Gemm' | 'MatMul';
  /** The initializer holding the weights. */
  weightTensor: string;
  /** Whether the stored tensor was [out, in] (Gemm transB = 1) or [in, out]. */
  storedLayout: 'out,in' | 'in,out';
  /** The ops from the `from` output to the linear node, in graph order (`GlobalAveragePool`, `Flatten`). */
  path: string[];
  /** The tensor that was taken as the `from` layer's output. */
  fromTensor: string;
}

type Node = onnx.NodeProto;

function attrInt(n: Node, name: string, dflt: number): number {
  const a = n.attribute.find((x) => x.name === name);
  return a ? Number(a.i) : dflt;
}
function attrFloat(n: Node, name: string, dflt: number): number {
  const a = n.attribute.find((x) => x.name === name);
  return a ? a.f : dflt;
}
function attrInts(n: Node, name: string): number[] | null {
  const a = n.attribute.find((x) => x.name === name);
  return a ? a.ints.map(Number) : null;
}

async function tensorBytes(loaded: LoadedModel, t: onnx.TensorProto): Promise<Uint8Array | null> {
  const ext = externalEntries(t);
  if (ext) {
    const file = platform.paths.join(platform.paths.dirname(loaded.path), ext.location);
    const count = t.dims.reduce((a, d) => a * Number(d), 1);
    const per = t.dataType === DT.DOUBLE ? 8 : t.dataType === DT.FLOAT ? 4 : 2;
    const length = ext.length >= 0 ? ext.length : count * per;
    const fh = await platform.files.open(file, 'r');
    try {
      const buf = new Uint8Array(length);
      await fh.read(buf, 0, length, ext.offset);
      return buf;
    } finally {
      await fh.close();
    }
  }
  return t.rawData.length > 0 ? t.rawData : null;
}

/** A float tensor's values as float32 and its dims. */
async function readFloatTensor(
  loaded: LoadedModel,
  t: onnx.TensorProto,
): Promise<{ dims: number[]; data: Float32Array }> {
  const dims = t.dims.map(Number);
  const count = dims.reduce((a, d) => a * d, 1);
  const raw = await tensorBytes(loaded, t);
  const view = raw ? new DataView(raw.buffer, raw.byteOffset, raw.byteLength) : null;
  const out = new Float32Array(count);
  switch (t.dataType) {
    case DT.FLOAT:
      for (let i = 0; i < count; i++) out[i] = view ? view.getFloat32(4 * i, true) : t.floatData[i];
      break;
    case DT.DOUBLE:
      for (let i = 0; i < count; i++) out[i] = view ? view.getFloat64(8 * i, true) : t.doubleData[i];
      break;
    case DT.FLOAT16: {
      const bits = new Uint16Array(count);
      for (let i = 0; i < count; i++) bits[i] = view ? view.getUint16(2 * i, true) : t.int32Data[i];
      out.set(float16ToFloat32(bits));
      break;
    }
    case DT.BFLOAT16: {
      const b = new DataView(new ArrayBuffer(4));
      for (let i = 0; i < count; i++) {
        b.setUint32(0, (view ? view.getUint16(2 * i, true) : t.int32Data[i]) << 16);
        out[i] = b.getFloat32(0);
      }
      break;
    }
    default:
      throw new ClipDissectError(
        'ERR_MODEL_FORMAT',
        `weight tensor '${t.name}' of '${loaded.path}' has ONNX data type ${t.dataType}; float32, float16, bfloat16 or float64 is needed`,
      );
  }
  return { dims, data: out };
}

/** The constant value behind a tensor name: an initializer, a Constant node, through Identity / Transpose. */
async function constantValue(
  loaded: LoadedModel,
  name: string,
  producers: Map<string, Node>,
  inits: Map<string, onnx.TensorProto>,
): Promise<{ dims: number[]; data: Float32Array; source: string } | null> {
  const init = inits.get(name);
  if (init) return { ...(await readFloatTensor(loaded, init)), source: name };
  const p = producers.get(name);
  if (!p) return null;
  if (p.opType === 'Constant') {
    const a = p.attribute.find((x) => x.name === 'value');
    if (!a?.t) return null;
    return { ...(await readFloatTensor(loaded, a.t)), source: p.name || name };
  }
  if (p.opType === 'Identity') return constantValue(loaded, p.input[0], producers, inits);
  if (p.opType === 'Transpose') {
    const v = await constantValue(loaded, p.input[0], producers, inits);
    if (v?.dims.length !== 2) return null;
    const perm = attrInts(p, 'perm') ?? [1, 0];
    if (perm[0] === 0) return v;
    return { dims: [v.dims[1], v.dims[0]], data: transpose2(v.data, v.dims[0], v.dims[1]), source: v.source };
  }
  return null;
}

function transpose2(data: Float32Array, rows: number, cols: number): Float32Array {
  const out = new Float32Array(rows * cols);
  for (let i = 0; i < rows; i++) for (let j = 0; j < cols; j++) out[j * rows + i] = data[i * cols + j];
  return out;
}

/**
 * The weights between layer `from` and layer `to` of the ONNX model at `modelPath`.
 * Errors: ClipDissectError 'ERR_LAYER' naming both layers and what was found when `to` has no Gemm / MatMul
 * that reads `from`'s output; 'ERR_MODEL_FORMAT' for weights that are not constant 2-D float tensors.
 */
export async function linearWeightsBetween(
  modelPath: string,
  from: LayerRef,
  to: LayerRef,
): Promise<LinearWeights> {
  const loaded = await loadOnnxModel(modelPath);
  const g = loaded.graph;
  const view = graphView(loaded);
  const analysis = analyseModules(view);
  const producers = new Map<string, Node>();
  for (const n of g.node) for (const o of n.output) producers.set(o, n);
  const inits = new Map(g.initializer.map((t) => [t.name, t]));

  const moduleOutput = (ref: LayerRef): string | null => {
    if (ref.tensor) return ref.tensor;
    const call = analysis.calls.find((c) => c.module === ref.name && c.call === 0);
    if (call) return call.outputs[call.outputs.length - 1];
    return producers.has(ref.name) ? ref.name : null;
  };
  const fromTensor = moduleOutput(from);
  if (fromTensor === null)
    throw new ClipDissectError(
      'ERR_LAYER',
      `'${from.name}' is neither a module nor a tensor of '${modelPath}' (modules: ${formatChoices(analysis.modules.filter((m) => !m.includes('.')))})`,
    );

  // the linear nodes of `to`: inside its scope, or producing its tensor (directly or before a bias Add)
  const toTensor = moduleOutput(to);
  const linear = g.node.filter((n, i) => {
    if (n.opType !== 'Gemm' && n.opType !== 'MatMul') return false;
    if (nodeScopes(view.nodes[i]).scopes.includes(to.name)) return true;
    if (toTensor === null) return false;
    if (n.output[0] === toTensor) return true;
    const p = producers.get(toTensor);
    return p?.opType === 'Add' && p.input.includes(n.output[0]);
  });
  if (linear.length === 0)
    throw new ClipDissectError(
      'ERR_LAYER',
      toTensor === null && !analysis.modules.includes(to.name)
        ? `'${to.name}' is neither a module nor a tensor of '${modelPath}' (modules: ${formatChoices(analysis.modules.filter((m) => !m.includes('.')))})`
        : `layer '${to.name}' of '${modelPath}' holds no Gemm or MatMul node, so there is no weight matrix from '${from.name}' to it${toTensor ? ` (its output '${toTensor}' is made by ${producers.get(toTensor)?.opType ?? 'an input'})` : ''}`,
    );

  const found: string[] = [];
  for (const n of linear) {
    // walk back from the data input through per-channel ops to the `from` tensor
    const path: string[] = [];
    let t = n.input[0];
    let reached = t === fromTensor;
    while (!reached) {
      const p = producers.get(t);
      if (!p || !PASS_THROUGH.has(p.opType)) {
        found.push(
          `${n.opType} '${n.name}' reads '${n.input[0]}'${path.length ? ` through ${path.join(' → ')}` : ''}, which comes from ${p ? `${p.opType} '${p.name}'` : 'a graph input'}`,
        );
        break;
      }
      path.unshift(p.opType);
      t = p.input[0];
      reached = t === fromTensor;
    }
    if (!reached) continue;

    const w = await constantValue(loaded, n.input[1], producers, inits);
    if (w?.dims.length !== 2)
      throw new ClipDissectError(
        'ERR_MODEL_FORMAT',
        `the weights '${n.input[1]}' of ${n.opType} '${n.name}' are not a constant 2-D float tensor (computed at run time or of rank ${w?.dims.length ?? '?'})`,
      );
    let weight: Matrix;
    let storedLayout: LinearWeights['storedLayout'];
    let alpha = 1;
    if (n.opType === 'Gemm') {
      if (attrInt(n, 'transA', 0) !== 0)
        throw new ClipDissectError(
          'ERR_MODEL_FORMAT',
          `Gemm '${n.name}' transposes its data input (transA = 1); only transA = 0 is supported`,
        );
      alpha = attrFloat(n, 'alpha', 1);
      storedLayout = attrInt(n, 'transB', 0) === 1 ? 'out,in' : 'in,out';
    } else storedLayout = 'in,out';
    if (storedLayout === 'out,in') weight = { rows: w.dims[0], cols: w.dims[1], data: w.data };
    else weight = { rows: w.dims[1], cols: w.dims[0], data: transpose2(w.data, w.dims[0], w.dims[1]) };
    if (alpha !== 1) for (let i = 0; i < weight.data.length; i++) weight.data[i] *= alpha;

    // bias: Gemm's C (times β), or an Add of a constant right after the MatMul
    let bias: Float32Array | null = null;
    if (n.opType === 'Gemm' && n.input[2]) {
      const c = await constantValue(loaded, n.input[2], producers, inits);
      if (c && c.data.length === weight.rows) {
        const beta = attrFloat(n, 'beta', 1);
        bias = c.data.map((v) => v * beta);
      }
    } else if (n.opType === 'MatMul') {
      const add = g.node.find((m) => m.opType === 'Add' && m.input.includes(n.output[0]));
      const other = add?.input.find((x) => x !== n.output[0]);
      const c = other ? await constantValue(loaded, other, producers, inits) : null;
      if (c && c.data.length === weight.rows) bias = c.data;
    }
    return {
      weight,
      bias,
      node: n.name,
      opType: n.opType as 'Gemm' | 'MatMul',
      weightTensor: w.source,
      storedLayout,
      path,
      fromTensor,
    };
  }
  throw new ClipDissectError(
    'ERR_LAYER',
    `no Gemm or MatMul of layer '${to.name}' reads the output of layer '${from.name}' ('${fromTensor}') through pooling / flatten / reshape only: ${found.join('; ')}`,
  );
}
