/**
 * numpy `.npy` files (format versions 1.0, 2.0 and 3.0), read and written so that numpy reads ours and we
 * read numpy's: https://numpy.org/doc/stable/reference/generated/numpy.lib.format.html
 *
 * Layout: the magic `\x93NUMPY`, a major and minor version byte, the header length (uint16 little-endian
 * in 1.0, uint32 in 2.0 and 3.0), the header (a Python dict literal, latin1 in 1.0/2.0, UTF-8 in 3.0,
 * padded with spaces and ending in '\n' so the data starts at a multiple of 64), then the raw data in
 * C order.
 */
import { ArgumentError, ClipDissectError, formatChoices, ShapeError } from '../numeric/errors.js';
import { float16ToFloat32 } from '../numeric/float16.js';
import type { Matrix } from '../numeric/matrix.js';
import { writeFileAtomic } from './atomic.js';
import { describeFsError } from './files.js';
import { readRegularFile } from './regular-file.js';

/** An element type that clip-dissect reads and writes. */
export type NpyDType = 'float32' | 'float16' | 'float64' | 'int64' | 'int32';

/**
 * An n-dimensional array in C (row-major) order. `data.length` is the product of `shape` (1 for a 0-d
 * array). float16 data holds the raw IEEE half bits; convert with {@link float16ToFloat32}.
 */
export interface NpyArray {
  dtype: NpyDType;
  shape: number[];
  data: Float32Array | Float64Array | BigInt64Array | Int32Array | Uint16Array;
}

/** A `.npy` file or buffer that is malformed or holds something clip-dissect does not support. */
export class NpyFormatError extends ClipDissectError {
  constructor(message: string, options?: { cause?: unknown }) {
    super('ERR_NPY', message, options);
  }
}

const NPY_DTYPES: readonly NpyDType[] = ['float32', 'float16', 'float64', 'int64', 'int32'];

interface DTypeInfo {
  /** numpy's type code without the byte-order character: 'f4'. */
  code: string;
  itemsize: number;
  ctor:
    | Float32ArrayConstructor
    | Float64ArrayConstructor
    | BigInt64ArrayConstructor
    | Int32ArrayConstructor
    | Uint16ArrayConstructor;
}

const DTYPES: Record<NpyDType, DTypeInfo> = {
  float32: { code: 'f4', itemsize: 4, ctor: Float32Array },
  float16: { code: 'f2', itemsize: 2, ctor: Uint16Array },
  float64: { code: 'f8', itemsize: 8, ctor: Float64Array },
  int64: { code: 'i8', itemsize: 8, ctor: BigInt64Array },
  int32: { code: 'i4', itemsize: 4, ctor: Int32Array },
};

const MAGIC = [0x93, 0x4e, 0x55, 0x4d, 0x50, 0x59]; // \x93NUMPY
const MAGIC_LEN = 6;
const ARRAY_ALIGN = 64;
/** numpy leaves room after the header so that the first axis can grow to this many digits in place. */
const GROWTH_AXIS_MAX_DIGITS = 21;
const LITTLE_ENDIAN_HOST = new Uint8Array(new Uint16Array([1]).buffer)[0] === 1;
const NATIVE_ORDER = LITTLE_ENDIAN_HOST ? '<' : '>';

// ---------------------------------------------------------------------------------------------------
// Reading

/**
 * Parses a `.npy` file held in memory. `source` (a file path, usually) starts every error message.
 *
 * When the data is in native byte order and suitably aligned inside `bytes`, the returned array is a view
 * on `bytes` (no copy); otherwise the data is copied (and byte-swapped) into a new aligned typed array.
 * Bytes after the data are ignored, as numpy does.
 */
export function parseNpy(bytes: Uint8Array, source = '<buffer>'): NpyArray {
  const fail = (message: string): never => {
    throw new NpyFormatError(`${source}: ${message}`);
  };
  if (bytes.length < MAGIC_LEN || MAGIC.some((b, i) => bytes[i] !== b)) {
    fail('not a .npy file (bad magic bytes)');
  }
  if (bytes.length < MAGIC_LEN + 2) {
    fail(`truncated: the file ends after ${bytes.length} bytes, inside the header`);
  }
  const major = bytes[6];
  const minor = bytes[7];
  if ((major !== 1 && major !== 2 && major !== 3) || minor !== 0) {
    fail(`unsupported .npy format version ${major}.${minor}; valid versions are 1.0, 2.0 and 3.0`);
  }
  const lenBytes = major === 1 ? 2 : 4;
  const headerStart = MAGIC_LEN + 2 + lenBytes;
  if (bytes.length < headerStart) {
    fail(`truncated: the file ends after ${bytes.length} bytes, inside the header`);
  }
  const dv = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  const headerLen = major === 1 ? dv.getUint16(8, true) : dv.getUint32(8, true);
  const dataOffset = headerStart + headerLen;
  if (bytes.length < dataOffset) {
    fail(
      `truncated: the header length field says ${headerLen} bytes of header but the file has only ` +
        `${bytes.length - headerStart} after the ${headerStart}-byte prefix`,
    );
  }
  const headerBytes = bytes.subarray(headerStart, dataOffset);
  let header: string;
  if (major === 3) {
    try {
      header = new TextDecoder('utf-8', { fatal: true }).decode(headerBytes);
    } catch {
      return fail('the header of a version 3.0 file is not valid UTF-8');
    }
  } else {
    // latin1, byte for byte (TextDecoder's 'latin1' is windows-1252, which differs at 0x80-0x9f)
    header = '';
    for (const b of headerBytes) header += String.fromCharCode(b);
  }

  const { dtype, swap, fortranOrder, shape } = interpretHeader(header, source);
  // A Fortran-order array with at most one axis longer than 1 has the same layout as in C order.
  if (fortranOrder && shape.filter((d) => d > 1).length > 1) {
    fail(
      'Fortran-order arrays are not supported; save with np.ascontiguousarray(a) (got fortran_order: True)',
    );
  }
  const info = DTYPES[dtype];
  const count = shape.reduce((a, b) => a * b, 1);
  const nbytes = count * info.itemsize;
  if (!Number.isSafeInteger(nbytes)) fail(`shape ${formatShape(shape)} is too large (${count} elements)`);
  const available = bytes.length - dataOffset;
  if (available < nbytes) {
    fail(
      `truncated: header says shape ${formatShape(shape)} ${dtype} = ${nbytes} bytes of data but the file has ${available}`,
    );
  }
  return { dtype, shape, data: extractData(bytes, dataOffset, count, info, swap) };
}

/**
 * Reads and parses a `.npy` file. Unreadable files throw a ClipDissectError with code 'ERR_NPY_READ'; a FIFO,
 * socket or device is refused unopened (NotRegularFileError, see readRegularFile).
 */
export async function readNpy(path: string): Promise<NpyArray> {
  let bytes: Uint8Array;
  try {
    bytes = await readRegularFile(path);
  } catch (err) {
    if (err instanceof ClipDissectError) throw err;
    throw new ClipDissectError('ERR_NPY_READ', `${path}: cannot read .npy file: ${describeFsError(err)}`, {
      cause: err,
    });
  }
  return parseNpy(bytes, path);
}

/** Copies or views the data region as a typed array of the dtype, swapping bytes when needed. */
function extractData(
  bytes: Uint8Array,
  offset: number,
  count: number,
  info: DTypeInfo,
  swap: boolean,
): NpyArray['data'] {
  const nbytes = count * info.itemsize;
  const absolute = bytes.byteOffset + offset;
  if (!swap && absolute % info.itemsize === 0)
    return new info.ctor(bytes.buffer as ArrayBuffer, absolute, count);
  const copy = new Uint8Array(nbytes);
  copy.set(bytes.subarray(offset, offset + nbytes));
  if (swap) swapBytes(copy, info.itemsize);
  return new info.ctor(copy.buffer, 0, count);
}

/** Reverses the byte order of every `size`-byte element of `b` in place. */
function swapBytes(b: Uint8Array, size: number): void {
  for (let i = 0; i < b.length; i += size) {
    for (let lo = i, hi = i + size - 1; lo < hi; lo++, hi--) {
      const t = b[lo];
      b[lo] = b[hi];
      b[hi] = t;
    }
  }
}

interface HeaderInfo {
  dtype: NpyDType;
  swap: boolean;
  fortranOrder: boolean;
  shape: number[];
}

const HEADER_KEYS = ['descr', 'fortran_order', 'shape'];

function interpretHeader(header: string, source: string): HeaderInfo {
  const fail = (message: string): never => {
    throw new NpyFormatError(`${source}: ${message}`);
  };
  let value: PyValue;
  try {
    value = parsePyLiteral(header);
  } catch (err) {
    return fail(`cannot parse the header: ${(err as Error).message} (header: ${quoteHeader(header)})`);
  }
  if (!(value instanceof Map)) {
    return fail(`the header is not a dict (header: ${quoteHeader(header)})`);
  }
  for (const key of value.keys()) {
    if (!HEADER_KEYS.includes(key)) {
      fail(`the header has an unexpected key '${key}'; valid keys are ${formatChoices(HEADER_KEYS)}`);
    }
  }
  for (const key of HEADER_KEYS) {
    if (!value.has(key)) fail(`the header has no '${key}' key (header: ${quoteHeader(header)})`);
  }

  const descr = value.get('descr');
  if (typeof descr !== 'string') {
    return fail(
      `structured or non-string dtypes are not supported (got descr: ${pyRepr(descr!)}); ` +
        `valid dtypes are ${formatChoices(NPY_DTYPES)}`,
    );
  }
  const { dtype, swap } = interpretDescr(descr, fail);

  const fortran = value.get('fortran_order');
  if (typeof fortran !== 'boolean')
    return fail(`fortran_order must be True or False (got ${pyRepr(fortran!)})`);

  const shapeValue = value.get('shape');
  if (!(shapeValue instanceof PyTuple) || !shapeValue.items.every((d) => typeof d === 'bigint')) {
    return fail(`shape must be a tuple of integers (got shape: ${pyRepr(shapeValue!)})`);
  }
  const dims = shapeValue.items as bigint[];
  if (dims.some((d) => d < 0n || d > BigInt(Number.MAX_SAFE_INTEGER))) {
    fail(`shape must have non-negative dimensions (got shape: ${pyRepr(shapeValue)})`);
  }
  return { dtype, swap, fortranOrder: fortran, shape: dims.map(Number) };
}

function interpretDescr(descr: string, fail: (message: string) => never): { dtype: NpyDType; swap: boolean } {
  const unsupported = (): never =>
    fail(
      `dtype '${descr}' is not supported; valid dtypes are ${formatChoices(NPY_DTYPES)} ` +
        `(convert with a.astype(np.float32))`,
    );
  const order = descr[0];
  if (order !== '<' && order !== '>' && order !== '=' && order !== '|') return unsupported();
  const code = descr.slice(1);
  const dtype = NPY_DTYPES.find((d) => DTYPES[d].code === code);
  if (dtype === undefined) return unsupported();
  if (order === '|') {
    return fail(
      `dtype '${descr}' is not valid: byte order '|' is only for 1-byte types; use '<${code}' or '>${code}'`,
    );
  }
  const swap = order === '=' ? false : order !== NATIVE_ORDER;
  return { dtype, swap };
}

// ---------------------------------------------------------------------------------------------------
// A parser for the Python literals that appear in .npy headers: dicts, tuples, lists, strings, ints
// (with Python 2's `L` suffix), True, False and None.

type PyValue = string | bigint | boolean | null | PyTuple | PyValue[] | Map<string, PyValue>;

class PyTuple {
  constructor(readonly items: PyValue[]) {}
}

function parsePyLiteral(text: string): PyValue {
  let pos = 0;
  const error = (what: string): never => {
    throw new Error(`${what} at offset ${pos}`);
  };
  const skipSpace = (): void => {
    while (pos < text.length && /\s/.test(text[pos])) pos++;
  };
  const peek = (): string => {
    skipSpace();
    return text[pos] ?? '';
  };
  const expect = (ch: string): void => {
    if (peek() !== ch)
      error(`expected '${ch}' but found ${pos < text.length ? `'${text[pos]}'` : 'the end'}`);
    pos++;
  };

  const parseString = (): string => {
    const quote = text[pos++];
    let out = '';
    for (;;) {
      if (pos >= text.length) return error('unterminated string');
      const ch = text[pos++];
      if (ch === quote) return out;
      if (ch === '\\') {
        const esc = text[pos++];
        out += esc === 'n' ? '\n' : esc === 't' ? '\t' : esc === 'r' ? '\r' : esc;
      } else {
        out += ch;
      }
    }
  };

  /** Items up to `close`, with Python's optional trailing comma; reports whether any comma was seen. */
  const parseItems = (close: string): { items: PyValue[]; comma: boolean } => {
    const items: PyValue[] = [];
    let comma = false;
    while (peek() !== close) {
      items.push(parseValue());
      if (peek() === ',') {
        pos++;
        comma = true;
      } else if (peek() !== close) {
        error(`expected ',' or '${close}'`);
      }
    }
    pos++;
    return { items, comma };
  };

  const parseValue = (): PyValue => {
    const ch = peek();
    if (ch === '{') {
      pos++;
      const dict = new Map<string, PyValue>();
      while (peek() !== '}') {
        if (peek() !== "'" && peek() !== '"') error('expected a string key');
        const key = parseString();
        expect(':');
        dict.set(key, parseValue());
        if (peek() === ',') pos++;
        else if (peek() !== '}') error("expected ',' or '}'");
      }
      pos++;
      return dict;
    }
    if (ch === '(') {
      pos++;
      const { items, comma } = parseItems(')');
      // `(5)` is just 5 in Python; `(5,)` and `()` are tuples.
      return items.length === 1 && !comma ? items[0] : new PyTuple(items);
    }
    if (ch === '[') {
      pos++;
      return parseItems(']').items;
    }
    if (ch === "'" || ch === '"') return parseString();
    const m = /^(?:[-+]?\d+[lL]?|True|False|None)/.exec(text.slice(pos));
    if (m === null) return error(ch === '' ? 'unexpected end of header' : `unexpected '${ch}'`);
    pos += m[0].length;
    if (m[0] === 'True') return true;
    if (m[0] === 'False') return false;
    if (m[0] === 'None') return null;
    return BigInt(m[0].replace(/[lL]$/, ''));
  };

  const value = parseValue();
  skipSpace();
  if (pos < text.length) error(`unexpected '${text[pos]}' after the literal`);
  return value;
}

/** Python's repr of a parsed literal, for error messages. */
function pyRepr(v: PyValue): string {
  if (v === null) return 'None';
  if (v === true) return 'True';
  if (v === false) return 'False';
  if (typeof v === 'bigint') return v.toString();
  if (typeof v === 'string') return `'${v}'`;
  if (v instanceof PyTuple)
    return v.items.length === 1 ? `(${pyRepr(v.items[0])},)` : `(${v.items.map(pyRepr).join(', ')})`;
  if (Array.isArray(v)) return `[${v.map(pyRepr).join(', ')}]`;
  return `{${[...v].map(([k, x]) => `'${k}': ${pyRepr(x)}`).join(', ')}}`;
}

/** The header text for an error message, quoted, trimmed and cut to a readable length. */
function quoteHeader(header: string): string {
  const text = header.trim();
  return JSON.stringify(text.length > 200 ? `${text.slice(0, 200)}…` : text);
}

/** A shape as Python writes it: `()`, `(5,)`, `(3, 4)`. */
function formatShape(shape: readonly number[]): string {
  return shape.length === 1 ? `(${shape[0]},)` : `(${shape.join(', ')})`;
}

// ---------------------------------------------------------------------------------------------------
// Writing

/** Checks that `arr` is consistent (dtype, typed-array class, shape) and returns its dtype info. */
function checkArray(arr: NpyArray): DTypeInfo {
  const info = DTYPES[arr.dtype];
  if (info === undefined) {
    throw new ArgumentError(
      `'dtype' must be ${formatChoices(NPY_DTYPES)} but got ${JSON.stringify(arr.dtype)}`,
    );
  }
  if (!(arr.data instanceof info.ctor)) {
    throw new ArgumentError(
      `'data' of a ${arr.dtype} array must be a ${info.ctor.name} but got a ${arr.data?.constructor?.name}`,
    );
  }
  if (!Array.isArray(arr.shape) || !arr.shape.every((d) => Number.isSafeInteger(d) && d >= 0)) {
    throw new ArgumentError(
      `'shape' must be an array of non-negative integers but got ${JSON.stringify(arr.shape)}`,
    );
  }
  const count = arr.shape.reduce((a, b) => a * b, 1);
  if (count !== arr.data.length) {
    throw new ShapeError(
      `shape ${formatShape(arr.shape)} needs ${count} elements but 'data' has ${arr.data.length}`,
    );
  }
  return info;
}

/** The `.npy` header (magic, version, length, dict, padding) for `arr`, byte for byte as numpy writes it. */
function encodeHeader(arr: NpyArray, info: DTypeInfo): Uint8Array {
  let dict = `{'descr': '${NATIVE_ORDER}${info.code}', 'fortran_order': False, 'shape': ${formatShape(arr.shape)}, }`;
  if (arr.shape.length > 0)
    dict += ' '.repeat(Math.max(0, GROWTH_AXIS_MAX_DIGITS - String(arr.shape[0]).length));
  // The dict is ASCII, so latin1 (1.0, 2.0) suffices; 2.0 only when the header outgrows a uint16 length.
  const hlen = dict.length + 1; // + '\n'
  let lenBytes = 2;
  let padlen = ARRAY_ALIGN - ((MAGIC_LEN + 2 + lenBytes + hlen) % ARRAY_ALIGN);
  if (hlen + padlen > 0xffff) {
    lenBytes = 4;
    padlen = ARRAY_ALIGN - ((MAGIC_LEN + 2 + lenBytes + hlen) % ARRAY_ALIGN);
  }
  const total = MAGIC_LEN + 2 + lenBytes + hlen + padlen;
  const out = new Uint8Array(total);
  out.set(MAGIC, 0);
  out[6] = lenBytes === 2 ? 1 : 2;
  out[7] = 0;
  const dv = new DataView(out.buffer);
  if (lenBytes === 2) dv.setUint16(8, hlen + padlen, true);
  else dv.setUint32(8, hlen + padlen, true);
  const start = MAGIC_LEN + 2 + lenBytes;
  for (let i = 0; i < dict.length; i++) out[start + i] = dict.charCodeAt(i);
  out.fill(0x20, start + dict.length, total - 1);
  out[total - 1] = 0x0a;
  return out;
}

/**
 * The `.npy` file for `arr` as two chunks: the header and a view on the data (no copy). Written one after
 * the other they make the file; see {@link writeNpy}.
 */
export function encodeNpyChunks(arr: NpyArray): Uint8Array[] {
  const info = checkArray(arr);
  const { data } = arr;
  return [encodeHeader(arr, info), new Uint8Array(data.buffer, data.byteOffset, data.byteLength)];
}

/**
 * The `.npy` file for `arr` in one buffer: version 1.0 (2.0 only if the header needs it), native byte
 * order, C order, the data starting at a multiple of 64 bytes, exactly as `np.save` writes it.
 */
export function encodeNpy(arr: NpyArray): Uint8Array {
  const [header, data] = encodeNpyChunks(arr);
  const out = new Uint8Array(header.length + data.length);
  out.set(header, 0);
  out.set(data, header.length);
  return out;
}

/**
 * Writes `arr` to `path` as a `.npy` file, atomically (see writeFileAtomic) and without copying the data.
 * Failures throw a ClipDissectError with code 'ERR_NPY_WRITE' naming the path.
 */
export async function writeNpy(path: string, arr: NpyArray): Promise<void> {
  const chunks = encodeNpyChunks(arr);
  try {
    await writeFileAtomic(path, chunks);
  } catch (err) {
    throw new ClipDissectError('ERR_NPY_WRITE', `${path}: cannot write .npy file: ${describeFsError(err)}`, {
      cause: err,
    });
  }
}

// ---------------------------------------------------------------------------------------------------
// Conversions

/**
 * A 2-D array of any supported dtype as a float32 Matrix (rows × cols). float32 data is used as is (no
 * copy); other dtypes are converted (float64 and int64 round to nearest float32). `name` (a file path or
 * the role of the array) starts error messages.
 */
export function npyToMatrix(arr: NpyArray, name: string): Matrix {
  if (arr.shape.length !== 2) {
    throw new ShapeError(
      `${name}: expected a 2-D (rows×cols) array but got shape ${formatShape(arr.shape)} (${arr.shape.length}-D)`,
    );
  }
  checkArray(arr);
  const [rows, cols] = arr.shape;
  const { data } = arr;
  let out: Float32Array;
  if (data instanceof Float32Array) out = data;
  else if (arr.dtype === 'float16') out = float16ToFloat32(data as Uint16Array);
  else if (data instanceof BigInt64Array) {
    out = new Float32Array(data.length);
    for (let i = 0; i < data.length; i++) out[i] = Number(data[i]);
  } else out = new Float32Array(data as Float64Array | Int32Array);
  return { rows, cols, data: out };
}

/** A Matrix as a 2-D float32 array (shares `m.data`). */
export function matrixToNpy(m: Matrix): NpyArray {
  return { dtype: 'float32', shape: [m.rows, m.cols], data: m.data };
}
