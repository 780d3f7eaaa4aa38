import assert from 'node:assert/strict';
import { existsSync, readFileSync } from 'node:fs';
import { mkdir, mkdtemp, readdir, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, test } from 'node:test';
import { fileURLToPath } from 'node:url';
import {
  encodeNpy,
  encodeNpyChunks,
  matrixToNpy,
  type NpyArray,
  type NpyDType,
  NpyFormatError,
  npyToMatrix,
  parseNpy,
  readNpy,
  writeNpy,
} from '../../src/io/npy.js';
import { ClipDissectError } from '../../src/numeric/errors.js';
import { float16ToFloat32 } from '../../src/numeric/float16.js';

const FIXTURES = fileURLToPath(new URL('../../../test/fixtures/npy/', import.meta.url));
const DTYPES: NpyDType[] = ['float32', 'float16', 'float64', 'int64', 'int32'];
const SHAPES: number[][] = [[], [0], [5], [2, 3], [2, 3, 4], [0, 3], [3, 0], [1, 1]];

/** Deterministic, varied sample data of `n` elements. */
function sample(dtype: NpyDType, n: number): NpyArray['data'] {
  const v = (i: number) => ((i * 7919) % 201) - 100 + i / 8;
  switch (dtype) {
    case 'float32':
      return Float32Array.from({ length: n }, (_, i) => v(i) * 1.1);
    case 'float64':
      return Float64Array.from({ length: n }, (_, i) => v(i) * Math.PI);
    case 'int64':
      return BigInt64Array.from({ length: n }, (_, i) => BigInt(Math.round(v(i) * 1e6)) * 1_000_000_007n);
    case 'int32':
      return Int32Array.from({ length: n }, (_, i) => Math.round(v(i) * 1e6));
    case 'float16':
      return Uint16Array.from({ length: n }, (_, i) => (i * 4099) & 0xffff);
  }
}

function arrayOf(dtype: NpyDType, shape: number[]): NpyArray {
  return {
    dtype,
    shape,
    data: sample(
      dtype,
      shape.reduce((a, b) => a * b, 1),
    ),
  };
}

const latin1 = (b: Uint8Array) => Buffer.from(b.buffer, b.byteOffset, b.byteLength).toString('latin1');

/** Builds a .npy file around an arbitrary header text (padded to 64 like numpy) and data bytes. */
function makeNpy(header: string, data: Uint8Array = new Uint8Array(0), major = 1): Uint8Array {
  const lenBytes = major === 1 ? 2 : 4;
  const encoded = Buffer.from(header, major === 3 ? 'utf8' : 'latin1');
  const hlen = encoded.length + 1;
  const pad = 64 - ((8 + lenBytes + hlen) % 64);
  const out = new Uint8Array(8 + lenBytes + hlen + pad + data.length);
  out.set([0x93, 0x4e, 0x55, 0x4d, 0x50, 0x59, major, 0]);
  const dv = new DataView(out.buffer);
  if (lenBytes === 2) dv.setUint16(8, hlen + pad, true);
  else dv.setUint32(8, hlen + pad, true);
  out.set(encoded, 8 + lenBytes);
  out.fill(0x20, 8 + lenBytes + encoded.length, 8 + lenBytes + hlen + pad - 1);
  out[8 + lenBytes + hlen + pad - 1] = 0x0a;
  out.set(data, 8 + lenBytes + hlen + pad);
  return out;
}

const f32bytes = (values: number[]) => new Uint8Array(Float32Array.from(values).buffer);

/** The big-endian twin of a file written by encodeNpy: '<' → '>' in the descr, every element swapped. */
function toBigEndian(file: Uint8Array, itemsize: number): Uint8Array {
  const out = file.slice();
  const dataStart = 10 + new DataView(out.buffer).getUint16(8, true);
  const lt = latin1(out.subarray(0, dataStart)).indexOf("'<");
  out[lt + 1] = '>'.charCodeAt(0);
  for (let i = dataStart; i < out.length; i += itemsize) out.subarray(i, i + itemsize).reverse();
  return out;
}

function assertNpyError(fn: () => unknown, pattern: RegExp): void {
  assert.throws(fn, (err: unknown) => {
    assert.ok(err instanceof NpyFormatError, `expected NpyFormatError, got ${err}`);
    assert.ok(err instanceof ClipDissectError);
    assert.equal(err.code, 'ERR_NPY');
    assert.match(err.message, pattern);
    return true;
  });
}

describe('encodeNpy / parseNpy round trip', () => {
  for (const dtype of DTYPES) {
    for (const shape of SHAPES) {
      test(`${dtype} shape [${shape}]`, () => {
        const arr = arrayOf(dtype, shape);
        const back = parseNpy(encodeNpy(arr));
        assert.equal(back.dtype, dtype);
        assert.deepEqual(back.shape, shape);
        assert.equal(back.data.constructor, arr.data.constructor);
        assert.deepEqual(back.data, arr.data);
      });
    }
  }

  test('float special values survive (NaN, ±inf, -0, extremes)', () => {
    const data = Float64Array.of(Number.NaN, Infinity, -Infinity, -0, 0, Number.MIN_VALUE, Number.MAX_VALUE);
    const back = parseNpy(encodeNpy({ dtype: 'float64', shape: [7], data }));
    assert.deepEqual(back.data, data);
    assert.ok(Object.is(back.data[3], -0));
  });

  test('int64 extremes survive', () => {
    const data = BigInt64Array.of(-(2n ** 63n), 2n ** 63n - 1n, 2n ** 53n + 1n);
    assert.deepEqual(parseNpy(encodeNpy({ dtype: 'int64', shape: [3], data })).data, data);
  });

  test('encodeNpyChunks is the header plus a view on the data (no copy)', () => {
    const data = new Float32Array(1024).subarray(8, 20);
    const [header, body] = encodeNpyChunks({ dtype: 'float32', shape: [3, 4], data });
    assert.equal(body.buffer, data.buffer);
    assert.equal(body.byteOffset, data.byteOffset);
    assert.equal(body.byteLength, 48);
    assert.deepEqual(
      Buffer.concat([header, body]),
      Buffer.from(encodeNpy({ dtype: 'float32', shape: [3, 4], data })),
    );
  });
});

describe('header layout', () => {
  test('matches numpy byte for byte: v1.0, dict, growth spaces, padding to 64, newline', () => {
    const bytes = encodeNpy(arrayOf('float32', [3, 4]));
    const dict = "{'descr': '<f4', 'fortran_order': False, 'shape': (3, 4), }";
    assert.deepEqual([...bytes.subarray(0, 8)], [0x93, 0x4e, 0x55, 0x4d, 0x50, 0x59, 1, 0]);
    const hlen = new DataView(bytes.buffer).getUint16(8, true);
    assert.equal((10 + hlen) % 64, 0);
    const header = latin1(bytes.subarray(10, 10 + hlen));
    assert.ok(header.startsWith(dict));
    assert.match(header.slice(dict.length), /^ +\n$/);
    assert.equal(header.length, 118);
    assert.equal(bytes.length, 128 + 48);
  });

  for (const shape of [[], [7], [123456789, 0], [1, 2, 3, 4, 5, 6, 7, 8]]) {
    test(`data starts at a multiple of 64 for shape [${shape}]`, () => {
      for (const dtype of DTYPES) {
        const [header] = encodeNpyChunks(arrayOf(dtype, shape));
        assert.equal(header.length % 64, 0);
        assert.equal(header[header.length - 1], 0x0a);
        const text = latin1(header.subarray(10));
        const shapeText = shape.length === 1 ? `(${shape[0]},)` : `(${shape.join(', ')})`;
        assert.ok(text.includes(`'shape': ${shapeText}, }`), text);
      }
    });
  }

  test('a header too long for a uint16 length is written as version 2.0 and read back', () => {
    const shape = Array.from({ length: 30000 }, () => 1); // 90 000 header bytes
    const bytes = encodeNpy({ dtype: 'int32', shape, data: Int32Array.of(42) });
    assert.equal(bytes[6], 2);
    const hlen = new DataView(bytes.buffer).getUint32(8, true);
    assert.equal((12 + hlen) % 64, 0);
    const back = parseNpy(bytes);
    assert.equal(back.shape.length, 30000);
    assert.deepEqual(back.data, Int32Array.of(42));
  });
});

describe('parseNpy header variants', () => {
  const data = f32bytes([1, 2, 3, 4, 5, 6]);
  const variants: [string, string][] = [
    ['double quotes', '{"descr": "<f4", "fortran_order": False, "shape": (2, 3)}'],
    ['extra whitespace', "  {  'descr' :'<f4' ,\n 'fortran_order':False,'shape' : ( 2 ,3 , ) , }  "],
    ['keys in another order, no trailing comma', "{'shape': (2, 3), 'descr': '<f4', 'fortran_order': False}"],
    ['Python 2 long ints', "{'descr': '<f4', 'fortran_order': False, 'shape': (2L, 3L), }"],
    ["'=' byte order", "{'descr': '=f4', 'fortran_order': False, 'shape': (2, 3), }"],
  ];
  for (const [what, header] of variants) {
    test(what, () => {
      const arr = parseNpy(makeNpy(header, data));
      assert.deepEqual(arr.shape, [2, 3]);
      assert.deepEqual(arr.data, Float32Array.of(1, 2, 3, 4, 5, 6));
    });
  }

  test('(5,) is 1-d and () is 0-d', () => {
    assert.deepEqual(
      parseNpy(makeNpy("{'descr': '<f4', 'fortran_order': False, 'shape': (5,), }", data)).shape,
      [5],
    );
    const scalar = parseNpy(makeNpy("{'descr': '<f4', 'fortran_order': False, 'shape': (), }", data));
    assert.deepEqual(scalar.shape, []);
    assert.deepEqual(scalar.data, Float32Array.of(1));
  });

  test('version 2.0 and 3.0 headers (uint32 length)', () => {
    for (const major of [2, 3]) {
      const arr = parseNpy(makeNpy("{'descr': '<f4', 'fortran_order': False, 'shape': (3,), }", data, major));
      assert.deepEqual(arr.data, Float32Array.of(1, 2, 3));
    }
  });

  test('Fortran order is accepted when it is the same layout as C order (at most one axis > 1)', () => {
    const arr = parseNpy(makeNpy("{'descr': '<f4', 'fortran_order': True, 'shape': (1, 6), }", data));
    assert.deepEqual(arr.data, Float32Array.of(1, 2, 3, 4, 5, 6));
  });

  test('bytes after the data are ignored (as numpy does)', () => {
    const arr = parseNpy(makeNpy("{'descr': '<f4', 'fortran_order': False, 'shape': (2,), }", data));
    assert.deepEqual(arr.data, Float32Array.of(1, 2));
  });

  for (const dtype of DTYPES) {
    test(`big-endian ${dtype} is byte-swapped into a native array`, () => {
      const arr = arrayOf(dtype, [3, 5]);
      const itemsize = arr.data.BYTES_PER_ELEMENT;
      const be = toBigEndian(encodeNpy(arr), itemsize);
      assert.ok(latin1(be).includes(`'>`));
      const back = parseNpy(be);
      assert.equal(back.dtype, dtype);
      assert.deepEqual(back.data, arr.data);
    });
  }

  test('aligned native data is a view on the input; unaligned data is copied into an aligned array', () => {
    const arr = arrayOf('float64', [4, 4]);
    const file = encodeNpy(arr);
    const view = parseNpy(file);
    assert.equal(view.data.buffer, file.buffer);

    const shifted = new Uint8Array(file.length + 3);
    shifted.set(file, 3);
    const copy = parseNpy(shifted.subarray(3));
    assert.notEqual(copy.data.buffer, shifted.buffer);
    assert.equal(copy.data.byteOffset % 8, 0);
    assert.deepEqual(copy.data, arr.data);
  });
});

describe('parseNpy errors', () => {
  const header = (fields: string) => `{${fields}}`;
  const ok = "'descr': '<f4', 'fortran_order': False, 'shape': (2, 3), ";

  test('bad magic', () => {
    assertNpyError(
      () => parseNpy(Buffer.from('PK\x03\x04 this is a zip'), 'x.npy'),
      /^x\.npy: not a \.npy file \(bad magic bytes\)$/,
    );
    assertNpyError(
      () => parseNpy(new Uint8Array(0), 'x.npy'),
      /^x\.npy: not a \.npy file \(bad magic bytes\)$/,
    );
  });

  test('default source is <buffer>', () => {
    assertNpyError(() => parseNpy(new Uint8Array(3)), /^<buffer>: not a \.npy file/);
  });

  test('file ends inside the prefix', () => {
    const file = makeNpy(header(ok));
    assertNpyError(
      () => parseNpy(file.subarray(0, 7), 'x.npy'),
      /^x\.npy: truncated: the file ends after 7 bytes, inside the header$/,
    );
    assertNpyError(
      () => parseNpy(file.subarray(0, 9), 'x.npy'),
      /^x\.npy: truncated: the file ends after 9 bytes/,
    );
  });

  test('unsupported version', () => {
    const file = makeNpy(header(ok));
    file[6] = 4;
    assertNpyError(
      () => parseNpy(file, 'x.npy'),
      /^x\.npy: unsupported \.npy format version 4\.0; valid versions are 1\.0, 2\.0 and 3\.0$/,
    );
    file[6] = 1;
    file[7] = 1;
    assertNpyError(() => parseNpy(file, 'x.npy'), /version 1\.1/);
  });

  test('header length beyond the end of the file', () => {
    const file = makeNpy(header(ok));
    assertNpyError(
      () => parseNpy(file.subarray(0, 50), 'x.npy'),
      /^x\.npy: truncated: the header length field says 118 bytes of header but the file has only 40 after the 10-byte prefix$/,
    );
  });

  test('unparseable header', () => {
    assertNpyError(
      () => parseNpy(makeNpy("{'descr': '<f4', 'shape': (2, 3"), 'x.npy'),
      /^x\.npy: cannot parse the header: .*at offset/,
    );
    assertNpyError(
      () => parseNpy(makeNpy("{'descr': <f4}"), 'x.npy'),
      /^x\.npy: cannot parse the header: unexpected '<'/,
    );
    assertNpyError(() => parseNpy(makeNpy("{'descr': 'f4"), 'x.npy'), /unterminated string/);
    assertNpyError(() => parseNpy(makeNpy('{} junk'), 'x.npy'), /unexpected 'j' after the literal/);
  });

  test('header is not a dict', () => {
    assertNpyError(() => parseNpy(makeNpy("['descr', '<f4']"), 'x.npy'), /^x\.npy: the header is not a dict/);
  });

  test('missing and unexpected keys', () => {
    assertNpyError(
      () => parseNpy(makeNpy(header("'descr': '<f4', 'shape': (2, 3)")), 'x.npy'),
      /^x\.npy: the header has no 'fortran_order' key/,
    );
    assertNpyError(
      () => parseNpy(makeNpy(header(`${ok}'extra': 1`)), 'x.npy'),
      /^x\.npy: the header has an unexpected key 'extra'; valid keys are 'descr', 'fortran_order' or 'shape'$/,
    );
  });

  test('unsupported dtypes', () => {
    for (const descr of ['<i2', '|b1', '|u1', '<u4', '<c8', '<M8[ns]', '|O', 'f4']) {
      const escaped = descr.replace(/[|[\]]/g, '\\$&');
      assertNpyError(
        () =>
          parseNpy(makeNpy(header(`'descr': '${descr}', 'fortran_order': False, 'shape': (2,)`)), 'T.npy'),
        new RegExp(
          `^T\\.npy: dtype '${escaped}' is not supported; valid dtypes are 'float32', 'float16', 'float64', 'int64' or 'int32'`,
        ),
      );
    }
  });

  test("'|' byte order on a multi-byte type", () => {
    assertNpyError(
      () => parseNpy(makeNpy(header("'descr': '|f4', 'fortran_order': False, 'shape': (2,)")), 'T.npy'),
      /^T\.npy: dtype '\|f4' is not valid: byte order '\|' is only for 1-byte types; use '<f4' or '>f4'$/,
    );
  });

  test('structured dtype', () => {
    assertNpyError(
      () =>
        parseNpy(
          makeNpy(header("'descr': [('a', '<f4'), ('b', '<i4')], 'fortran_order': False, 'shape': (2,)")),
          'S.npy',
        ),
      /^S\.npy: structured or non-string dtypes are not supported \(got descr: \[\('a', '<f4'\), \('b', '<i4'\)\]\)/,
    );
  });

  test('Fortran order', () => {
    assertNpyError(
      () =>
        parseNpy(
          makeNpy(
            header("'descr': '<f4', 'fortran_order': True, 'shape': (2, 3)"),
            f32bytes([1, 2, 3, 4, 5, 6]),
          ),
          'A.npy',
        ),
      /^A\.npy: Fortran-order arrays are not supported; save with np\.ascontiguousarray\(a\) \(got fortran_order: True\)$/,
    );
  });

  test('fortran_order not a bool', () => {
    assertNpyError(
      () => parseNpy(makeNpy(header("'descr': '<f4', 'fortran_order': 0, 'shape': (2,)")), 'x.npy'),
      /^x\.npy: fortran_order must be True or False \(got 0\)$/,
    );
  });

  test('bad shapes', () => {
    const withShape = (s: string) => makeNpy(header(`'descr': '<f4', 'fortran_order': False, 'shape': ${s}`));
    assertNpyError(
      () => parseNpy(withShape('(5)'), 'x.npy'),
      /^x\.npy: shape must be a tuple of integers \(got shape: 5\)$/,
    );
    assertNpyError(
      () => parseNpy(withShape('[2, 3]'), 'x.npy'),
      /shape must be a tuple of integers \(got shape: \[2, 3\]\)/,
    );
    assertNpyError(
      () => parseNpy(withShape("(2, 'a')"), 'x.npy'),
      /shape must be a tuple of integers \(got shape: \(2, 'a'\)\)/,
    );
    assertNpyError(
      () => parseNpy(withShape('(2, -3)'), 'x.npy'),
      /shape must have non-negative dimensions \(got shape: \(2, -3\)\)/,
    );
    assertNpyError(() => parseNpy(withShape('(99999999999999999999,)'), 'x.npy'), /non-negative dimensions/);
    assertNpyError(
      () => parseNpy(withShape('(4294967296, 4294967296)'), 'x.npy'),
      /shape \(4294967296, 4294967296\) is too large/,
    );
  });

  test('truncated data', () => {
    const file = makeNpy(
      header("'descr': '<f4', 'fortran_order': False, 'shape': (10, 4)"),
      new Uint8Array(100),
    );
    assertNpyError(
      () => parseNpy(file, 'x.npy'),
      /^x\.npy: truncated: header says shape \(10, 4\) float32 = 160 bytes of data but the file has 100$/,
    );
    const one = makeNpy(header("'descr': '<i8', 'fortran_order': False, 'shape': (3,)"), new Uint8Array(16));
    assertNpyError(
      () => parseNpy(one, 'y.npy'),
      /^y\.npy: truncated: header says shape \(3,\) int64 = 24 bytes of data but the file has 16$/,
    );
  });
});

describe('encodeNpy argument errors', () => {
  test('data class must match the dtype', () => {
    assert.throws(
      () => encodeNpy({ dtype: 'float32', shape: [2], data: new Float64Array(2) }),
      /'data' of a float32 array must be a Float32Array but got a Float64Array/,
    );
    assert.throws(
      () => encodeNpy({ dtype: 'float16', shape: [2], data: new Float32Array(2) }),
      /must be a Uint16Array/,
    );
  });

  test('shape must fit the data', () => {
    assert.throws(
      () => encodeNpy({ dtype: 'int32', shape: [2, 3], data: new Int32Array(5) }),
      (err: unknown) =>
        err instanceof ClipDissectError &&
        err.code === 'ERR_SHAPE' &&
        /shape \(2, 3\) needs 6 elements but 'data' has 5/.test(err.message),
    );
    assert.throws(
      () => encodeNpy({ dtype: 'int32', shape: [-1], data: new Int32Array(0) }),
      /'shape' must be an array of non-negative integers but got \[-1\]/,
    );
    assert.throws(
      () => encodeNpy({ dtype: 'int32', shape: [1.5], data: new Int32Array(0) }),
      /non-negative integers/,
    );
  });

  test('unknown dtype', () => {
    assert.throws(
      () => encodeNpy({ dtype: 'int8' as NpyDType, shape: [1], data: new Int32Array(1) }),
      /'dtype' must be 'float32', 'float16', 'float64', 'int64' or 'int32' but got "int8"/,
    );
  });
});

describe('npyToMatrix / matrixToNpy', () => {
  test('float32 is used without a copy', () => {
    const arr = arrayOf('float32', [3, 4]);
    const m = npyToMatrix(arr, 'acts.npy');
    assert.equal(m.rows, 3);
    assert.equal(m.cols, 4);
    assert.equal(m.data, arr.data);
  });

  test('every dtype converts to float32', () => {
    const expect = Float32Array.of(1.5, -2, 0, 3e5, -7, 65504);
    const inputs: NpyArray[] = [
      { dtype: 'float64', shape: [2, 3], data: Float64Array.from(expect) },
      { dtype: 'int32', shape: [2, 3], data: Int32Array.of(1, -2, 0, 300000, -7, 65504) },
      { dtype: 'int64', shape: [2, 3], data: BigInt64Array.of(1n, -2n, 0n, 300000n, -7n, 65504n) },
      {
        dtype: 'float16',
        shape: [2, 3],
        data: Uint16Array.of(0x3e00, 0xc000, 0x0000, 0x7c00, 0xc700, 0x7bff),
      },
    ];
    for (const arr of inputs) {
      const m = npyToMatrix(arr, 'x.npy');
      assert.equal(m.rows, 2);
      assert.equal(m.cols, 3);
      assert.ok(m.data instanceof Float32Array);
      if (arr.dtype === 'int32' || arr.dtype === 'int64')
        assert.deepEqual(m.data, Float32Array.of(1, -2, 0, 300000, -7, 65504));
      else if (arr.dtype === 'float16')
        assert.deepEqual(m.data, Float32Array.of(1.5, -2, 0, Infinity, -7, 65504));
      else assert.deepEqual(m.data, expect);
    }
  });

  test('float64 rounds to nearest float32', () => {
    const m = npyToMatrix({ dtype: 'float64', shape: [1, 2], data: Float64Array.of(0.1, 1e300) }, 'x');
    assert.deepEqual(m.data, Float32Array.of(Math.fround(0.1), Infinity));
  });

  test('empty 2-D arrays', () => {
    const m = npyToMatrix({ dtype: 'float16', shape: [0, 5], data: new Uint16Array(0) }, 'x');
    assert.deepEqual([m.rows, m.cols, m.data.length], [0, 5, 0]);
  });

  test('non-2-D arrays are rejected with the shape', () => {
    assert.throws(
      () => npyToMatrix({ dtype: 'float32', shape: [5], data: new Float32Array(5) }, 'acts.npy'),
      (err: unknown) =>
        err instanceof ClipDissectError &&
        err.code === 'ERR_SHAPE' &&
        /^acts\.npy: expected a 2-D \(rows×cols\) array but got shape \(5,\) \(1-D\)$/.test(err.message),
    );
    assert.throws(
      () => npyToMatrix(arrayOf('float32', [2, 3, 4]), 'a.npy'),
      /^ShapeError: a\.npy: expected a 2-D \(rows×cols\) array but got shape \(2, 3, 4\) \(3-D\)$/,
    );
    assert.throws(() => npyToMatrix(arrayOf('float32', []), 'a.npy'), /got shape \(\) \(0-D\)/);
  });

  test('matrixToNpy round trip', () => {
    const m = { rows: 2, cols: 2, data: Float32Array.of(1, 2, 3, 4) };
    const arr = matrixToNpy(m);
    assert.deepEqual(arr, { dtype: 'float32', shape: [2, 2], data: m.data });
    const back = npyToMatrix(parseNpy(encodeNpy(arr)), 'm');
    assert.deepEqual(back, { rows: 2, cols: 2, data: m.data });
  });
});

describe('readNpy / writeNpy', () => {
  test('round trip through a file (parent directories created)', async () => {
    const dir = await mkdtemp(join(tmpdir(), 'npy-test-'));
    try {
      for (const dtype of DTYPES) {
        const arr = arrayOf(dtype, [4, 5]);
        const path = join(dir, 'sub', 'deeper', `${dtype}.npy`);
        await writeNpy(path, arr);
        assert.deepEqual(await readNpy(path), arr);
      }
      assert.deepEqual(
        (await readdir(join(dir, 'sub', 'deeper'))).sort(),
        DTYPES.map((d) => `${d}.npy`).sort(),
      );
    } finally {
      await rm(dir, { recursive: true, force: true });
    }
  });

  test('a larger array (16 MB) round trips', async () => {
    const dir = await mkdtemp(join(tmpdir(), 'npy-test-'));
    try {
      const data = Float32Array.from({ length: 4 << 20 }, (_, i) => i * 0.5);
      const path = join(dir, 'big.npy');
      await writeNpy(path, { dtype: 'float32', shape: [4096, 1024], data });
      const back = await readNpy(path);
      assert.deepEqual(back.shape, [4096, 1024]);
      assert.deepEqual(back.data, data);
    } finally {
      await rm(dir, { recursive: true, force: true });
    }
  });

  test('missing file: ERR_NPY_READ naming the path', async () => {
    const path = join(tmpdir(), 'definitely-not-here', 'acts.npy');
    await assert.rejects(readNpy(path), (err: unknown) => {
      assert.ok(err instanceof ClipDissectError);
      assert.equal(err.code, 'ERR_NPY_READ');
      assert.equal(err.message, `${path}: cannot read .npy file: no such file (ENOENT)`);
      assert.equal((err.cause as NodeJS.ErrnoException).code, 'ENOENT');
      return true;
    });
  });

  test('a directory: ERR_NPY_READ', async () => {
    const dir = await mkdtemp(join(tmpdir(), 'npy-test-'));
    try {
      await assert.rejects(readNpy(dir), {
        code: 'ERR_NPY_READ',
        message: `${dir}: cannot read .npy file: it is a directory (EISDIR)`,
      });
    } finally {
      await rm(dir, { recursive: true, force: true });
    }
  });

  test('a file that is not .npy: ERR_NPY naming the path', async () => {
    const dir = await mkdtemp(join(tmpdir(), 'npy-test-'));
    try {
      const path = join(dir, 'x.npy');
      await writeFile(path, 'hello');
      await assert.rejects(readNpy(path), (err: unknown) => {
        assert.ok(err instanceof NpyFormatError);
        assert.equal(err.message, `${path}: not a .npy file (bad magic bytes)`);
        return true;
      });
    } finally {
      await rm(dir, { recursive: true, force: true });
    }
  });

  test('write failure: ERR_NPY_WRITE naming the path', async () => {
    const dir = await mkdtemp(join(tmpdir(), 'npy-test-'));
    try {
      const path = join(dir, 'is-a-dir.npy');
      await mkdir(path);
      await assert.rejects(writeNpy(path, arrayOf('int32', [2])), (err: unknown) => {
        assert.ok(err instanceof ClipDissectError);
        assert.equal(err.code, 'ERR_NPY_WRITE');
        assert.ok(err.message.startsWith(`${path}: cannot write .npy file: `), err.message);
        return true;
      });
      assert.deepEqual(await readdir(dir), ['is-a-dir.npy']);
    } finally {
      await rm(dir, { recursive: true, force: true });
    }
  });
});

// ---------------------------------------------------------------------------------------------------
// numpy interop. The fixtures are written by scripts/make_npy_fixtures.py; see expected.json there.

type ExpectedValue = number | string;
interface ExpectedEntry {
  error?: string;
  dtype?: NpyDType;
  shape?: number[];
  values?: ExpectedValue[];
  bits?: number[];
  byteIdentical?: boolean;
}

function fromJson(v: ExpectedValue, dtype: NpyDType): number | bigint {
  if (dtype === 'int64') return BigInt(v as string);
  if (v === 'nan') return Number.NaN;
  if (v === 'inf') return Infinity;
  if (v === '-inf') return -Infinity;
  if (v === '-0') return -0;
  return v as number;
}

function toJson(x: number | bigint): ExpectedValue {
  if (typeof x === 'bigint') return x.toString();
  if (Number.isNaN(x)) return 'nan';
  if (x === Infinity) return 'inf';
  if (x === -Infinity) return '-inf';
  if (Object.is(x, -0)) return '-0'; // JSON.stringify(-0) is '0'
  return x;
}

function valuesOf(arr: NpyArray): (number | bigint)[] {
  return arr.dtype === 'float16' ? [...float16ToFloat32(arr.data as Uint16Array)] : [...arr.data];
}

describe('numpy fixtures', () => {
  const expected: Record<string, ExpectedEntry> = JSON.parse(
    readFileSync(join(FIXTURES, 'expected.json'), 'utf8'),
  );

  test('every fixture file is listed and the fixtures are small', async () => {
    const files = (await readdir(FIXTURES)).filter((f) => f.endsWith('.npy')).sort();
    assert.deepEqual(files, Object.keys(expected).sort());
    let total = 0;
    for (const f of await readdir(FIXTURES)) total += (await readFile(join(FIXTURES, f))).length;
    assert.ok(total < 20_000, `fixtures take ${total} bytes`);
  });

  for (const [name, want] of Object.entries(expected)) {
    test(name, async () => {
      const path = join(FIXTURES, name);
      if (want.error !== undefined) {
        await assert.rejects(readNpy(path), (err: unknown) => {
          assert.ok(err instanceof NpyFormatError);
          assert.ok(err.message.startsWith(`${path}: `), err.message);
          assert.ok(err.message.includes(want.error!), err.message);
          return true;
        });
        return;
      }
      const arr = await readNpy(path);
      assert.equal(arr.dtype, want.dtype);
      assert.deepEqual(arr.shape, want.shape);
      const got = valuesOf(arr);
      const exp = want.values!.map((v) => fromJson(v, want.dtype!));
      assert.equal(got.length, exp.length);
      for (const [i, g] of got.entries()) assert.ok(Object.is(g, exp[i]), `${name}[${i}]: ${g} != ${exp[i]}`);
      if (want.bits) assert.deepEqual([...(arr.data as Uint16Array)], want.bits);
      if (want.byteIdentical) {
        assert.deepEqual(
          Buffer.from(encodeNpy(arr)),
          await readFile(path),
          'our encoding differs from np.save',
        );
      }
      if (arr.shape.length === 2) {
        const m = npyToMatrix(arr, name);
        assert.equal(m.data.length, exp.length);
      }
    });
  }

  test('files written by our encoder, for `make_npy_fixtures.py --check` (set NPY_INTEROP_OUT=DIR to keep)', async () => {
    const keep = process.env['NPY_INTEROP_OUT'];
    const dir = keep ?? (await mkdtemp(join(tmpdir(), 'npy-interop-')));
    try {
      const arrays: Record<string, NpyArray> = {
        'f2_specials_2x4.npy': {
          dtype: 'float16',
          shape: [2, 4],
          data: Uint16Array.of(0x0000, 0x8000, 0x0001, 0x03ff, 0x7bff, 0x7c00, 0xfc00, 0x7e00),
        },
        'f4_0d.npy': { dtype: 'float32', shape: [], data: Float32Array.of(-1.25) },
        'f4_empty_3x0.npy': { dtype: 'float32', shape: [3, 0], data: new Float32Array(0) },
        'f8_specials_4.npy': {
          dtype: 'float64',
          shape: [4],
          data: Float64Array.of(-0, Number.NaN, -Infinity, 1e-310),
        },
      };
      for (const dtype of DTYPES) {
        for (const shape of [[5], [2, 3], [2, 3, 4]])
          arrays[`${dtype}_${shape.join('x')}.npy`] = arrayOf(dtype, shape);
      }
      const expected: Record<string, ExpectedEntry> = {};
      await mkdir(dir, { recursive: true });
      for (const [name, arr] of Object.entries(arrays)) {
        await writeNpy(join(dir, name), arr);
        expected[name] = {
          dtype: arr.dtype,
          shape: arr.shape,
          values: valuesOf(arr).map(toJson),
          byteIdentical: true,
        };
        if (arr.dtype === 'float16') expected[name].bits = [...(arr.data as Uint16Array)];
      }
      await writeFile(join(dir, 'expected.json'), `${JSON.stringify(expected, null, 1)}\n`);
      for (const [name, arr] of Object.entries(arrays)) assert.deepEqual(await readNpy(join(dir, name)), arr);
      assert.ok(existsSync(join(dir, 'expected.json')));
    } finally {
      if (keep === undefined) await rm(dir, { recursive: true, force: true });
    }
  });
});

test('a long unparseable header is cut short in the message', () => {
  const header = `{'descr': '<f4', 'shape': (${'1, '.repeat(1000)}`;
  assert.throws(
    () => parseNpy(makeNpy(header)),
    (err: unknown) => err instanceof NpyFormatError && err.message.length < 400 && err.message.includes('…"'),
  );
});

test('a version 3.0 header that is not UTF-8', () => {
  const file = makeNpy("{'descr': '<f4', 'fortran_order': False, 'shape': (), }", f32bytes([1]), 3);
  file[12] = 0xff;
  assert.throws(
    () => parseNpy(file, 'u.npy'),
    /^NpyFormatError: u\.npy: the header of a version 3\.0 file is not valid UTF-8$/,
  );
});
