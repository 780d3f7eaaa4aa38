/**
 * Serialises an ONNX model whose large tensors are written straight into the output buffer (protobuf-es
 * copies bytes fields several times, ~15 ms per MB; this is one memcpy each). Valid protobuf: fields may come
 * in any order, and tensors appended to the graph message read like any repeated `initializer` field.
 * Internal: shared by src/compute (graphs built at run time) and src/models (edited target models).
 */

/** A TensorProto as its serialised fields without raw_data (`header`) plus the raw_data bytes, if any. */
export interface SerialisedTensor {
  header: Uint8Array;
  rawData?: Uint8Array | null;
}

const LEN = 2; // protobuf wire type: length-delimited
const MODEL_GRAPH = 7; // ModelProto.graph
const GRAPH_INITIALIZER = 5; // GraphProto.initializer
const TENSOR_RAW_DATA = 9; // TensorProto.raw_data

function varintLength(n: number): number {
  let len = 1;
  while (n >= 128) {
    n = Math.floor(n / 128);
    len++;
  }
  return len;
}

function writeVarint(out: Uint8Array, pos: number, n: number): number {
  while (n >= 128) {
    out[pos++] = (n % 128) | 128;
    n = Math.floor(n / 128);
  }
  out[pos++] = n;
  return pos;
}

/**
 * `modelHead`: the ModelProto without its graph; `graphHead`: the GraphProto without the `tensors`, which are
 * appended as initializers in order.
 */
export function assembleOnnxModel(
  modelHead: Uint8Array,
  graphHead: Uint8Array,
  tensors: readonly SerialisedTensor[],
): Uint8Array {
  const lens = tensors.map(
    (t) => t.header.length + (t.rawData ? 1 + varintLength(t.rawData.length) + t.rawData.length : 0),
  );
  let graphLen = graphHead.length;
  for (const len of lens) graphLen += 1 + varintLength(len) + len;
  const out = new Uint8Array(modelHead.length + 1 + varintLength(graphLen) + graphLen);
  let pos = 0;
  const put = (bytes: Uint8Array) => {
    out.set(bytes, pos);
    pos += bytes.length;
  };
  const putTagLen = (field: number, len: number) => {
    out[pos++] = (field << 3) | LEN;
    pos = writeVarint(out, pos, len);
  };
  put(modelHead);
  putTagLen(MODEL_GRAPH, graphLen);
  put(graphHead);
  tensors.forEach((t, i) => {
    putTagLen(GRAPH_INITIALIZER, lens[i]);
    put(t.header);
    if (t.rawData) {
      putTagLen(TENSOR_RAW_DATA, t.rawData.length);
      put(t.rawData);
    }
  });
  return out;
}
