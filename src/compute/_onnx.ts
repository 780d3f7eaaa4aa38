/**
 * Small ONNX graphs built at run time and run with onnxruntime (sessions from the runtime gateway): the heavy
 * matrix products of the similarity engine (MLAS SGEMM, multi-threaded). Internal: ORT types never leave
 * src/compute.
 */
import { create, toBinary } from '@bufbuild/protobuf';
import * as onnx from 'onnx-buf';
import { assembleOnnxModel } from '../runtime/_onnx-serialize.js';
import { createSession, type InferenceSession, Tensor } from '../runtime/index.js';

export { checkThreads } from '../runtime/index.js';

const FLOAT = onnx.TensorProto_DataType.FLOAT;
const INT64 = onnx.TensorProto_DataType.INT64;

export type Dim = number | string;

/** A float32 tensor's ValueInfoProto; string dims are symbolic. */
export function valueInfo(name: string, dims: readonly Dim[]): onnx.ValueInfoProto {
  return create(onnx.ValueInfoProtoSchema, {
    name,
    type: {
      value: {
        case: 'tensorType',
        value: {
          elemType: FLOAT,
          shape: {
            dim: dims.map((d) =>
              typeof d === 'string'
                ? { value: { case: 'dimParam' as const, value: d } }
                : { value: { case: 'dimValue' as const, value: BigInt(d) } },
            ),
          },
        },
      },
    },
  });
}

/** Integers (and integer lists) are INT(S); floats must be marked `{ float: x }`. */
type AttrValue = number | number[] | string | { float: number };

function attribute(name: string, v: AttrValue): onnx.AttributeProto {
  const T = onnx.AttributeProto_AttributeType;
  if (typeof v === 'string')
    return create(onnx.AttributeProtoSchema, { name, type: T.STRING, s: new TextEncoder().encode(v) });
  if (typeof v === 'object' && !Array.isArray(v))
    return create(onnx.AttributeProtoSchema, { name, type: T.FLOAT, f: v.float });
  if (Array.isArray(v))
    return create(onnx.AttributeProtoSchema, { name, type: T.INTS, ints: v.map((x) => BigInt(x)) });
  if (!Number.isInteger(v))
    throw new TypeError(`attribute '${name}': ${v} is not an integer; mark floats { float: x }`);
  return create(onnx.AttributeProtoSchema, { name, type: T.INT, i: BigInt(v) });
}

/** A tiny graph builder: `g.op('MatMul', ['X', 'W'], 'P')`. */
export class GraphBuilder {
  private readonly nodes: onnx.NodeProto[] = [];
  private readonly inits: onnx.TensorProto[] = [];
  /** Large float constants, appended to the serialised graph without protobuf-es's buffer copies. */
  private readonly bigInits: { header: Uint8Array; data: Float32Array }[] = [];
  private readonly inputs: onnx.ValueInfoProto[] = [];
  private readonly outputs: onnx.ValueInfoProto[] = [];

  input(name: string, dims: readonly Dim[]): string {
    this.inputs.push(valueInfo(name, dims));
    return name;
  }

  output(name: string, dims: readonly Dim[]): string {
    this.outputs.push(valueInfo(name, dims));
    return name;
  }

  /** A float32 constant (weights are stored in the model so onnxruntime can pre-pack them). */
  constant(name: string, dims: readonly number[], data: Float32Array): string {
    const header = toBinary(
      onnx.TensorProtoSchema,
      create(onnx.TensorProtoSchema, { name, dims: dims.map((d) => BigInt(d)), dataType: FLOAT }),
    );
    this.bigInits.push({ header, data });
    return name;
  }

  constantInt64(name: string, values: readonly number[]): string {
    this.inits.push(
      create(onnx.TensorProtoSchema, {
        name,
        dims: [BigInt(values.length)],
        dataType: INT64,
        int64Data: values.map((v) => BigInt(v)),
      }),
    );
    return name;
  }

  op(
    opType: string,
    inputs: readonly string[],
    output: string,
    attrs: Record<string, AttrValue> = {},
  ): string {
    this.nodes.push(
      create(onnx.NodeProtoSchema, {
        opType,
        input: [...inputs],
        output: [output],
        name: `${opType}_${this.nodes.length}`,
        attribute: Object.entries(attrs).map(([k, v]) => attribute(k, v)),
      }),
    );
    return output;
  }

  /**
   * The serialised ModelProto. Float constants are written as `raw_data` fields appended to the graph
   * message (protobuf allows a repeated field anywhere in its message), so each constant is copied once.
   */
  toBytes(): Uint8Array {
    const graph = create(onnx.GraphProtoSchema, {
      name: 'clip_dissect_compute',
      node: this.nodes,
      initializer: this.inits,
      input: this.inputs,
      output: this.outputs,
    });
    const model = create(onnx.ModelProtoSchema, {
      irVersion: 8n,
      producerName: 'clip-dissect',
      opsetImport: [{ domain: '', version: 17n }],
    });
    const graphHead = toBinary(onnx.GraphProtoSchema, graph);
    const modelHead = toBinary(onnx.ModelProtoSchema, model);
    return assembleOnnxModel(
      modelHead,
      graphHead,
      this.bigInits.map(({ header, data }) => ({
        header,
        rawData: new Uint8Array(data.buffer, data.byteOffset, data.byteLength),
      })),
    );
  }
}

export interface ComputeSessionOptions {
  /** onnxruntime intra-op threads; default: all cores. */
  threads?: number;
}

/** A compiled graph: float32 inputs in, float32 outputs out. `release()` frees native memory. */
export class ComputeSession {
  private constructor(private readonly session: InferenceSession) {}

  static async create(graph: GraphBuilder, options: ComputeSessionOptions = {}): Promise<ComputeSession> {
    const config = { device: 'cpu', threads: options.threads } as const;
    return new ComputeSession(await createSession(graph.toBytes(), config, 'a compute graph'));
  }

  /**
   * Runs the graph; inputs are given as [data, dims]. Outputs named in `into` are written straight into
   * the given arrays (e.g. views on WebAssembly memory; no copy), the others are returned.
   */
  async run(
    inputs: Record<string, [Float32Array, readonly number[]]>,
    into: Record<string, [Float32Array, readonly number[]]> = {},
  ): Promise<Record<string, { data: Float32Array; dims: readonly number[] }>> {
    const feeds: Record<string, Tensor> = {};
    for (const [name, [data, dims]] of Object.entries(inputs))
      feeds[name] = new Tensor('float32', data, dims);
    const fetches: Record<string, Tensor | null> = {};
    for (const name of this.session.outputNames) fetches[name] = null;
    for (const [name, [data, dims]] of Object.entries(into))
      fetches[name] = new Tensor('float32', data, dims);
    const res = await this.session.run(feeds, fetches);
    const out: Record<string, { data: Float32Array; dims: readonly number[] }> = {};
    for (const [name, t] of Object.entries(res)) out[name] = { data: t.data as Float32Array, dims: t.dims };
    return out;
  }

  async release(): Promise<void> {
    await this.session.release();
  }

  async [Symbol.asyncDispose](): Promise<void> {
    await this.release();
  }
}
