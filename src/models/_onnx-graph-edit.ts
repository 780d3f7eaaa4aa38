/**
 * Reading and editing target-network ONNX models with onnx-buf (internal to src/models; protobuf and
 * onnxruntime types never leave this folder).
 *
 * Edits never rebuild a message from scratch: the edited model is a shallow copy of the parsed ModelProto with a
 * new node / output / initializer list, so every other field (metadata_props, opset imports, functions, unknown
 * fields) is serialised back unchanged. External data (`model.onnx.data`, which torch's dynamo exporter writes by
 * default, or any other name) is handed to onnxruntime in memory through `SessionOptions.externalData`, under the
 * `location` that the initializers name (normalised, see _onnx-external-data.ts), so weights are not copied into
 * the protobuf and models over 2 GB keep working.
 */

import { create, toBinary } from '@bufbuild/protobuf';
import * as onnx from 'onnx-buf';
import { platform } from '#platform';
import { GraphBuilder } from '../compute/_onnx.js';
import { readRegularFile } from '../io/regular-file.js';
import { ClipDissectError } from '../numeric/errors.js';
import { assembleOnnxModel } from '../runtime/_onnx-serialize.js';
import { createSession, type InferenceSession, type SessionConfig, Tensor } from '../runtime/index.js';
import type { GraphNode, GraphView } from './_module-tree.js';
import { externalDataFiles, parseOnnxModel } from './_onnx-external-data.js';

const DT = onnx.TensorProto_DataType;

/** A parsed model and where its external data lives. */
export interface LoadedModel {
  readonly path: string;
  readonly model: onnx.ModelProto;
  readonly graph: onnx.GraphProto;
  /** Opset of the default ONNX domain. */
  readonly opset: number;
  /** External data files: the `location` strings, relative to the model folder, normalised (`./x.bin`: `x.bin`). */
  readonly externalLocations: readonly string[];
  /**
   * The model file's bytes: the parsed tensors' raw_data are views into them, so edited models refer to the
   * weights as in-memory external data (INLINE_WEIGHTS) instead of copying them.
   */
  readonly bytes: Uint8Array;
}

/**
 * The external-data location under which edited models refer to the weights stored inside the original model
 * file (handed to onnxruntime in memory, never a file on disk).
 */
const INLINE_WEIGHTS = '__clip_dissect_model_file__';

export async function loadOnnxModel(path: string): Promise<LoadedModel> {
  let bytes: Uint8Array;
  try {
    bytes = await readRegularFile(path);
  } catch (e) {
    throw new ClipDissectError(
      'ERR_MODEL_NOT_FOUND',
      `cannot read target model '${path}': ${(e as Error).message}`,
      { cause: e },
    );
  }
  const model = parseOnnxModel(bytes, `target model '${path}'`);
  const graph = model.graph;
  if (!graph || graph.node.length === 0)
    throw new ClipDissectError('ERR_MODEL_FORMAT', `target model '${path}' has no graph nodes`);
  const opsetEntry = model.opsetImport.find((o) => o.domain === '' || o.domain === 'ai.onnx');
  const opset = opsetEntry ? Number(opsetEntry.version) : 0;
  if (opset < 11)
    throw new ClipDissectError(
      'ERR_MODEL_FORMAT',
      `target model '${path}' uses ONNX opset ${opset}; opset 11 or newer is needed (re-export with opset_version=17)`,
    );
  // locations normalised in place: the edited models name the files as onnxruntime's in-memory table does
  const externalLocations = (await externalDataFiles(path, model, `target model '${path}'`)).map(
    (f) => f.location,
  );
  if (externalLocations.includes(INLINE_WEIGHTS))
    throw new ClipDissectError(
      'ERR_MODEL_EXTERNAL_DATA',
      `target model '${path}' names the reserved external data location '${INLINE_WEIGHTS}'`,
    );
  return { path, model, graph, opset, externalLocations, bytes };
}

/** The external data files, read for one session creation (onnxruntime copies what it needs). */
async function readExternalData(loaded: LoadedModel): Promise<{ path: string; data: Uint8Array }[]> {
  const dir = platform.paths.dirname(loaded.path);
  return Promise.all(
    loaded.externalLocations.map(async (location) => ({
      path: location,
      data: await readRegularFile(platform.paths.join(dir, location)),
    })),
  );
}

/** Names an attribute subgraph reads from the enclosing graph (not produced or declared inside it). */
function outerReads(g: onnx.GraphProto, out: Set<string>): void {
  const local = new Set<string>([...g.input.map((i) => i.name), ...g.initializer.map((i) => i.name)]);
  for (const n of g.node) for (const o of n.output) local.add(o);
  for (const n of g.node) {
    for (const i of n.input) if (i !== '' && !local.has(i)) out.add(i);
    for (const a of n.attribute) {
      const subs = [...(a.g ? [a.g] : []), ...a.graphs];
      for (const sub of subs) {
        const inner = new Set<string>();
        outerReads(sub, inner);
        for (const i of inner) if (!local.has(i)) out.add(i);
      }
    }
  }
}

export function graphView(loaded: LoadedModel): GraphView {
  const g = loaded.graph;
  const initializers = new Set(g.initializer.map((t) => t.name));
  for (const s of g.sparseInitializer) if (s.values) initializers.add(s.values.name);
  const nodes: GraphNode[] = g.node.map((n) => {
    const implicit = new Set<string>();
    for (const a of n.attribute)
      for (const sub of [...(a.g ? [a.g] : []), ...a.graphs]) outerReads(sub, implicit);
    return {
      name: n.name,
      opType: n.opType,
      domain: n.domain,
      inputs: n.input,
      outputs: n.output,
      implicitInputs: [...implicit],
      metadata: new Map(n.metadataProps.map((p) => [p.key, p.value])),
    };
  });
  return {
    nodes,
    inputs: g.input.filter((i) => !initializers.has(i.name)).map((i) => i.name),
    outputs: g.output.map((o) => o.name),
    initializers,
  };
}

/** Element type and dims of a value as declared in the model (value_info, inputs, outputs). */
export interface DeclaredType {
  readonly dtype: string;
  /** Dims: a number, a symbolic name, or null when unknown; null overall when the rank is unknown. */
  readonly dims: readonly (number | string | null)[] | null;
}

const DTYPE_NAMES: Partial<Record<number, string>> = {
  [DT.FLOAT]: 'float32',
  [DT.FLOAT16]: 'float16',
  [DT.BFLOAT16]: 'bfloat16',
  [DT.DOUBLE]: 'float64',
  [DT.INT64]: 'int64',
  [DT.INT32]: 'int32',
  [DT.INT8]: 'int8',
  [DT.UINT8]: 'uint8',
  [DT.BOOL]: 'bool',
};

export const FLOAT_DTYPES: ReadonlySet<string> = new Set(['float32', 'float16', 'bfloat16', 'float64']);

function declaredType(vi: onnx.ValueInfoProto): DeclaredType | null {
  const t = vi.type?.value;
  if (t?.case !== 'tensorType') return null;
  const dtype = DTYPE_NAMES[t.value.elemType] ?? `onnx-type-${t.value.elemType}`;
  if (t.value.elemType === DT.UNDEFINED) return null;
  const shape = t.value.shape;
  const dims = shape
    ? shape.dim.map((d) =>
        d.value.case === 'dimValue'
          ? Number(d.value.value)
          : d.value.case === 'dimParam' && d.value.value !== ''
            ? d.value.value
            : null,
      )
    : null;
  return { dtype, dims };
}

export function declaredTypes(loaded: LoadedModel): Map<string, DeclaredType> {
  const out = new Map<string, DeclaredType>();
  const g = loaded.graph;
  for (const vi of [...g.input, ...g.valueInfo, ...g.output]) {
    const d = declaredType(vi);
    if (d) out.set(vi.name, d);
  }
  return out;
}

/** How one tensor leaves the edited graph. */
export type Reduction =
  | { op: 'reduce-mean' | 'reduce-max'; axes: readonly number[] }
  | { op: 'gather'; axis: number; index: number }
  | { op: 'identity' };

export interface PooledOutput {
  readonly tensor: string;
  readonly reduction: Reduction;
  /** Whether the tensor is float32 already (otherwise a Cast to float32 is added). */
  readonly isFloat32: boolean;
}

/** Builds new nodes with names that cannot clash with the model's. */
class NodeMaker {
  readonly nodes: onnx.NodeProto[] = [];
  readonly initializers: onnx.TensorProto[] = [];
  private n = 0;
  constructor(
    private readonly taken: ReadonlySet<string>,
    private readonly prefix: string,
  ) {}

  fresh(hint: string): string {
    let name: string;
    do name = `${this.prefix}/${hint}_${this.n++}`;
    while (this.taken.has(name));
    return name;
  }

  int64s(hint: string, values: readonly number[], scalar = false): string {
    const name = this.fresh(hint);
    this.initializers.push(
      create(onnx.TensorProtoSchema, {
        name,
        dims: scalar ? [] : [BigInt(values.length)],
        dataType: DT.INT64,
        int64Data: values.map((v) => BigInt(v)),
      }),
    );
    return name;
  }

  op(opType: string, inputs: readonly string[], hint: string, attrs: onnx.AttributeProto[] = []): string {
    const out = this.fresh(hint);
    this.nodes.push(
      create(onnx.NodeProtoSchema, {
        opType,
        input: [...inputs],
        output: [out],
        name: this.fresh(`${opType}_node`),
        attribute: attrs,
      }),
    );
    return out;
  }
}

function intsAttr(name: string, values: readonly number[]): onnx.AttributeProto {
  return create(onnx.AttributeProtoSchema, {
    name,
    type: onnx.AttributeProto_AttributeType.INTS,
    ints: values.map((v) => BigInt(v)),
  });
}

function intAttr(name: string, value: number): onnx.AttributeProto {
  return create(onnx.AttributeProtoSchema, {
    name,
    type: onnx.AttributeProto_AttributeType.INT,
    i: BigInt(value),
  });
}

function allNames(loaded: LoadedModel): Set<string> {
  const g = loaded.graph;
  const s = new Set<string>();
  for (const n of g.node) {
    s.add(n.name);
    for (const o of n.output) s.add(o);
  }
  for (const t of g.initializer) s.add(t.name);
  for (const i of g.input) s.add(i.name);
  return s;
}

function reduce(
  mk: NodeMaker,
  opset: number,
  op: 'ReduceMean' | 'ReduceMax',
  x: string,
  axes: readonly number[],
): string {
  // axes moved from an attribute to an input in opset 18 (both ReduceMean and ReduceMax)
  if (opset >= 18) return mk.op(op, [x, mk.int64s('axes', axes)], op, [intAttr('keepdims', 0)]);
  return mk.op(op, [x], op, [intsAttr('axes', axes), intAttr('keepdims', 0)]);
}

/**
 * The model reduced to what the given outputs need, with each tensor pooled inside the graph and exposed as
 * a new float32 graph output (the model's own outputs are dropped). Returns the serialised model and the output
 * name of each request.
 */
export function pooledModel(
  loaded: LoadedModel,
  imageInput: string,
  requests: readonly PooledOutput[],
): { bytes: Uint8Array; outputs: string[] } {
  const mk = new NodeMaker(allNames(loaded), 'clip_dissect');
  const outputs = requests.map((r) => {
    let y: string;
    const red = r.reduction;
    if (red.op === 'reduce-mean') y = reduce(mk, loaded.opset, 'ReduceMean', r.tensor, red.axes);
    else if (red.op === 'reduce-max') y = reduce(mk, loaded.opset, 'ReduceMax', r.tensor, red.axes);
    else if (red.op === 'gather')
      y = mk.op('Gather', [r.tensor, mk.int64s('index', [red.index], true)], 'Gather', [
        intAttr('axis', red.axis),
      ]);
    else y = mk.op('Identity', [r.tensor], 'Identity');
    if (!r.isFloat32) y = mk.op('Cast', [y], 'Cast', [intAttr('to', DT.FLOAT)]);
    return y;
  });
  return { bytes: editedModel(loaded, imageInput, mk, outputs), outputs };
}

/**
 * A probe of the given tensors: for each, its runtime shape (`Shape`) and a one-element sample whose declared
 * type is the tensor's type (so that types come from onnxruntime's inference without fetching whole tensors).
 */
export function probeModel(
  loaded: LoadedModel,
  imageInput: string,
  tensors: readonly string[],
): { bytes: Uint8Array; shapes: string[]; samples: string[] } {
  const mk = new NodeMaker(allNames(loaded), 'clip_dissect_probe');
  const minusOne = mk.int64s('minus_one', [-1]);
  const zero = mk.int64s('zero', [0]);
  const one = mk.int64s('one', [1]);
  const shapes: string[] = [];
  const samples: string[] = [];
  for (const t of tensors) {
    shapes.push(mk.op('Shape', [t], 'shape'));
    const flat = mk.op('Reshape', [t, minusOne], 'flat');
    samples.push(mk.op('Slice', [flat, zero, one], 'sample'));
  }
  return { bytes: editedModel(loaded, imageInput, mk, [...shapes, ...samples]), shapes, samples };
}

/**
 * The model for onnxruntime's shape inference only (its session is opened and never run): the given tensors
 * are its outputs, and every floating-point initializer of 64 values or more (and every one kept in external
 * data) becomes a graph input of the same type and dims, so no weight is copied, serialised or pre-packed.
 * Small and integer initializers stay: shape computations (Reshape targets, Slice bounds) read their values.
 */
export function shapeInferenceModel(
  loaded: LoadedModel,
  imageInput: string,
  tensors: readonly string[],
): Uint8Array {
  const mk = new NodeMaker(allNames(loaded), 'clip_dissect_shapes');
  return editedModel(loaded, imageInput, mk, tensors, (t) => {
    const external = t.dataLocation === onnx.TensorProto_DataLocation.EXTERNAL;
    if (!external && !FLOAT_TENSOR_TYPES.has(t.dataType)) return false;
    const n = t.dims.reduce((a, d) => a * Number(d), 1);
    return external || n >= 64;
  });
}

const FLOAT_TENSOR_TYPES: ReadonlySet<number> = new Set([DT.FLOAT, DT.FLOAT16, DT.BFLOAT16, DT.DOUBLE]);

/**
 * The model with `mk`'s nodes appended, `outputs` as its only outputs, and the nodes they do not need pruned.
 * Initializers for which `asInput` holds become graph inputs declared with their type and dims.
 */
function editedModel(
  loaded: LoadedModel,
  imageInput: string,
  mk: NodeMaker,
  outputs: readonly string[],
  asInput?: (t: onnx.TensorProto) => boolean,
): Uint8Array {
  const g = loaded.graph;
  const allNodes = [...g.node, ...mk.nodes];
  const producer = new Map<string, number>();
  allNodes.forEach((n, i) => {
    for (const o of n.output) producer.set(o, i);
  });
  const reads = allNodes.map((n) => {
    const r = new Set(n.input.filter((i) => i !== ''));
    for (const a of n.attribute) for (const sub of [...(a.g ? [a.g] : []), ...a.graphs]) outerReads(sub, r);
    return r;
  });
  const keep = new Set<number>();
  const needed = new Set<string>();
  const stack = [...outputs];
  while (stack.length > 0) {
    const t = stack.pop()!;
    if (needed.has(t)) continue;
    needed.add(t);
    const p = producer.get(t);
    if (p === undefined || keep.has(p)) continue;
    keep.add(p);
    for (const i of reads[p]) stack.push(i);
  }
  for (const n of allNodes) for (const o of n.output) if (keep.has(producer.get(o)!)) needed.add(o);
  const nodes = allNodes.filter((_, i) => keep.has(i));
  const initializers = [...g.initializer, ...mk.initializers].filter((t) => needed.has(t.name));
  const moved = asInput ? initializers.filter(asInput) : [];
  const movedNames = new Set(moved.map((t) => t.name));
  const graph: onnx.GraphProto = {
    ...g,
    node: nodes,
    initializer: initializers.filter((t) => !movedNames.has(t.name)),
    sparseInitializer: g.sparseInitializer.filter((s) => s.values && needed.has(s.values.name)),
    input: [
      ...g.input.filter((i) => (i.name === imageInput || needed.has(i.name)) && !movedNames.has(i.name)),
      ...moved.map((t) =>
        create(onnx.ValueInfoProtoSchema, {
          name: t.name,
          type: {
            value: {
              case: 'tensorType',
              value: {
                elemType: t.dataType,
                shape: { dim: t.dims.map((d) => ({ value: { case: 'dimValue' as const, value: d } })) },
              },
            },
          },
        }),
      ),
    ],
    output: outputs.map((name) => create(onnx.ValueInfoProtoSchema, { name })),
    valueInfo: g.valueInfo.filter((v) => needed.has(v.name)),
  };
  // weights by reference to the model file, except for the shape-inference graph (opened without them)
  return serializeModel(loaded.model, graph, asInput ? undefined : loaded.bytes);
}

/** Tensors with at least this many raw bytes are written by hand (see serializeModel). */
const BIG_TENSOR = 4096;

/**
 * `toBinary` of `{ ...model, graph }`, with the raw data of large initializers copied straight into the output
 * (protobuf-es copies bytes fields several times, about 15 ms per MB; this is one memcpy). Valid protobuf:
 * fields may come in any order, and the tensors are appended to the graph message like any repeated field.
 *
 * With `file` (the bytes the model was parsed from), a large initializer whose raw_data lies in `file` is
 * written as an external-data reference to it instead (location INLINE_WEIGHTS, offset, length): nothing is
 * copied, and TargetSession hands `file` to onnxruntime in memory. ResNet-50: 16 ms instead of ~0.5 s (on this
 * VM, filling 100 MB of fresh memory is most of that).
 */
export function serializeModel(
  model: onnx.ModelProto,
  graph: onnx.GraphProto,
  file?: Uint8Array,
): Uint8Array {
  const graphHead = toBinary(onnx.GraphProtoSchema, { ...graph, initializer: [] });
  const modelHead = toBinary(onnx.ModelProtoSchema, { ...model, graph: undefined });
  const entry = (key: string, value: string) => create(onnx.StringStringEntryProtoSchema, { key, value });
  // every initializer in its original order: small ones whole, big ones as header + raw_data written here
  const tensors = graph.initializer.map((t) => {
    if (t.rawData.length < BIG_TENSOR) return { header: toBinary(onnx.TensorProtoSchema, t) };
    const { rawData: _, ...rest } = t;
    const offset = t.rawData.byteOffset - (file?.byteOffset ?? 0);
    if (file && t.rawData.buffer === file.buffer && offset >= 0 && offset + t.rawData.length <= file.length) {
      const ref: onnx.TensorProto = {
        ...t,
        rawData: new Uint8Array(0),
        dataLocation: onnx.TensorProto_DataLocation.EXTERNAL,
        externalData: [
          entry('location', INLINE_WEIGHTS),
          entry('offset', String(offset)),
          entry('length', String(t.rawData.length)),
        ],
      };
      return { header: toBinary(onnx.TensorProtoSchema, ref) };
    }
    return { header: toBinary(onnx.TensorProtoSchema, rest as onnx.TensorProto), rawData: t.rawData };
  });
  return assembleOnnxModel(modelHead, graphHead, tensors);
}

// ---------------------------------------------------------------------------------------------------------
// sessions

let liveSessions = 0;

/** Sessions created and not yet released (for tests of the release paths). */
export function liveSessionCount(): number {
  return liveSessions;
}

/** A target-model session. Wraps onnxruntime so that no runtime type leaves src/models. */
export class TargetSession {
  private released = false;
  private constructor(private readonly session: InferenceSession) {}

  /** `loaded` supplies the external data and the name for messages; null for self-contained graphs. */
  static async create(
    bytes: Uint8Array,
    loaded: LoadedModel | null,
    config: SessionConfig,
    label = loaded?.path ?? '<graph>',
  ): Promise<TargetSession> {
    // the model file itself, for the weights that edited models refer to (see serializeModel)
    const externalData = loaded
      ? [...(await readExternalData(loaded)), { path: INLINE_WEIGHTS, data: loaded.bytes }]
      : [];
    const what = loaded ? `target model '${label}'` : `'${label}'`;
    const session = await createSession(bytes, config, what, externalData);
    liveSessions++;
    return new TargetSession(session);
  }

  /**
   * Output name → element type and dims from onnxruntime's shape inference: a number, a symbolic name, or null
   * where unknown; dims null when not even the rank is known (onnxruntime reports those as rank 0).
   */
  outputShapes(): Map<string, DeclaredType> {
    const out = new Map<string, DeclaredType>();
    for (const m of this.session.outputMetadata) {
      if (!m.isTensor) continue;
      const dims = m.shape.map((d) =>
        typeof d === 'number' && d >= 0 ? d : typeof d === 'string' && d !== '' ? d : null,
      );
      out.set(m.name, { dtype: m.type, dims: dims.length > 0 ? dims : null });
    }
    return out;
  }

  /** Output name → declared element type ('float32', 'int64', …) from onnxruntime's type inference. */
  outputTypes(): Map<string, string> {
    const out = new Map<string, string>();
    for (const m of this.session.outputMetadata) if (m.isTensor) out.set(m.name, m.type);
    return out;
  }

  /** Runs on one float32 input; returns the fetched outputs as plain arrays. */
  async run(
    input: string,
    data: Float32Array,
    dims: readonly number[],
    fetch: readonly string[],
  ): Promise<Map<string, { data: Float32Array | BigInt64Array; dims: number[] }>> {
    if (this.released) throw new ClipDissectError('ERR_RELEASED', 'the target model session was released');
    const feeds = { [input]: new Tensor('float32', data, dims) };
    let res: InferenceSession.ReturnType;
    try {
      res = await this.session.run(feeds, [...fetch]);
    } catch (e) {
      throw new ClipDissectError(
        'ERR_MODEL_RUN',
        `onnxruntime failed on a batch of shape [${dims.join(', ')}]: ${(e as Error).message.trim()}`,
        { cause: e },
      );
    }
    const out = new Map<string, { data: Float32Array | BigInt64Array; dims: number[] }>();
    for (const name of fetch) {
      const t = res[name];
      out.set(name, { data: t.data as Float32Array | BigInt64Array, dims: [...t.dims] });
    }
    return out;
  }

  async release(): Promise<void> {
    if (this.released) return;
    this.released = true;
    liveSessions--;
    await this.session.release();
  }

  async [Symbol.asyncDispose](): Promise<void> {
    await this.release();
  }
}

/**
 * Whether the execution provider of `config` loads, checked on a one-node graph (so that a missing CUDA build
 * is reported when the model is opened, not at its first batch).
 */
export async function checkDevice(config: SessionConfig, label: string): Promise<void> {
  if (config.device === 'cpu') return;
  const gb = new GraphBuilder();
  gb.input('x', [1]);
  gb.op('Relu', ['x'], 'y');
  gb.output('y', [1]);
  await withSession(gb.toBytes(), null, config, async () => undefined, label);
}

/** Creates a session, runs `fn` on it, and releases it whatever happens. */
export async function withSession<T>(
  bytes: Uint8Array,
  loaded: LoadedModel | null,
  config: SessionConfig,
  fn: (s: TargetSession) => Promise<T>,
  label?: string,
): Promise<T> {
  const s = await TargetSession.create(bytes, loaded, config, label);
  try {
    return await fn(s);
  } finally {
    await s.release();
  }
}
