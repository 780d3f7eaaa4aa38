import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { float16ToFloat32, float32ToFloat16 } from '../../src/numeric/float16.js';

describe('float16ToFloat32', () => {
  test('special values', () => {
    const cases: [number, number][] = [
      [0x0000, 0],
      [0x8000, -0],
      [0x3c00, 1],
      [0xc000, -2],
      [0x7bff, 65504],
      [0xfbff, -65504],
      [0x0400, 2 ** -14], // smallest normal
      [0x0001, 2 ** -24], // smallest subnormal
      [0x8001, -(2 ** -24)],
      [0x03ff, 1023 * 2 ** -24], // largest subnormal
      [0x0200, 2 ** -15],
      [0x3555, 0.333251953125],
      [0x7c00, Infinity],
      [0xfc00, -Infinity],
    ];
    const out = float16ToFloat32(Uint16Array.from(cases, ([h]) => h));
    for (const [i, [h, want]] of cases.entries()) {
      assert.ok(Object.is(out[i], want), `0x${h.toString(16)}: ${out[i]} != ${want}`);
    }
  });

  test('NaNs stay NaN with sign and payload', () => {
    const out = float16ToFloat32(Uint16Array.of(0x7e00, 0x7c01, 0xfe00, 0x7fff));
    const bits = new Uint32Array(out.buffer);
    for (const x of out) assert.ok(Number.isNaN(x));
    assert.deepEqual([...bits], [0x7fc00000, 0x7f802000, 0xffc00000, 0x7fffe000]);
  });

  test('all 65536 halves match the definition', () => {
    const all = Uint16Array.from({ length: 65536 }, (_, i) => i);
    const out = float16ToFloat32(all);
    for (let h = 0; h < 65536; h++) {
      const sign = h & 0x8000 ? -1 : 1;
      const e = (h >> 10) & 31;
      const m = h & 1023;
      const want =
        e === 31
          ? m
            ? Number.NaN
            : sign * Infinity
          : e === 0
            ? sign * m * 2 ** -24
            : sign * (1 + m / 1024) * 2 ** (e - 15);
      if (!Object.is(out[h], want)) assert.fail(`0x${h.toString(16)}: ${out[h]} != ${want}`);
    }
  });

  test('empty input', () => {
    assert.equal(float16ToFloat32(new Uint16Array(0)).length, 0);
  });
});

describe('float32ToFloat16', () => {
  test('rounds to nearest even and back', () => {
    const x = Float32Array.of(0, -0, 1, -2, 0.1, 65504, 65520, 1e-8, 6e-8, 2 ** -24, 2 ** -14, 1.00048828125);
    const h = float32ToFloat16(x);
    assert.deepEqual(
      [...h].map((v) => v.toString(16)),
      ['0', '8000', '3c00', 'c000', '2e66', '7bff', '7c00', '0', '1', '1', '400', '3c00'],
    );
    const back = float16ToFloat32(h);
    assert.equal(back[2], 1);
    assert.equal(back[5], 65504);
    assert.equal(back[6], Number.POSITIVE_INFINITY);
    assert.ok(Math.abs(back[4] - 0.1) < 1e-4);
    assert.ok(Number.isNaN(float16ToFloat32(float32ToFloat16(Float32Array.of(Number.NaN)))[0]));
  });
});
