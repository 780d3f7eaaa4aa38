/**
 * resizeRGB against Pillow's `Image.resize((w, h), filter)` on the fixtures written by
 * scripts/make_image_fixtures.py (test/fixtures/images/expected.json).
 */
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { describe, it } from 'node:test';
import { fileURLToPath } from 'node:url';
import { inflateSync } from 'node:zlib';
import { type ResampleFilter, type RGBImage, resizeRGB, resizeRGBRegion } from '../../src/data/resize.js';
import { ClipDissectError } from '../../src/numeric/errors.js';

const DIR = fileURLToPath(new URL('../../../test/fixtures/images/', import.meta.url));

interface ResizeCase {
  image: string;
  filter: ResampleFilter;
  width: number;
  height: number;
  data: string;
}
const EXPECTED: {
  images: Record<string, { width: number; height: number; rgb: string }>;
  resize: ResizeCase[];
} = JSON.parse(readFileSync(`${DIR}expected.json`, 'utf8'));

const unpack = (b64: string) => new Uint8Array(inflateSync(Buffer.from(b64, 'base64')));

/** PIL's RGB image of a fixture. */
function pilImage(name: string): RGBImage {
  const e = EXPECTED.images[name];
  return { width: e.width, height: e.height, data: unpack(e.rgb) };
}

function throwsCode(fn: () => unknown, code: string, parts: string[]): void {
  assert.throws(fn, (err: unknown) => {
    assert.ok(err instanceof ClipDissectError, String(err));
    assert.equal(err.code, code, err.message);
    for (const p of parts) assert.ok(err.message.includes(p), `'${p}' not in: ${err.message}`);
    return true;
  });
}

describe('resizeRGB equals Pillow pixel for pixel', () => {
  for (const c of EXPECTED.resize) {
    const src = EXPECTED.images[c.image];
    it(`${c.image} ${src.width}x${src.height} -> ${c.width}x${c.height} ${c.filter}`, () => {
      const img = pilImage(c.image);
      const before = img.data.slice();
      const out = resizeRGB(img, c.width, c.height, c.filter);
      assert.equal(out.width, c.width);
      assert.equal(out.height, c.height);
      const want = unpack(c.data);
      assert.equal(out.data.length, want.length);
      let differ = 0;
      let max = 0;
      for (let i = 0; i < want.length; i++) {
        const d = Math.abs(out.data[i] - want[i]);
        if (d) differ++;
        if (d > max) max = d;
      }
      assert.equal(differ, 0, `${differ} of ${want.length} samples differ (max ${max})`);
      assert.deepEqual(img.data, before, 'input modified');
    });
  }

  it('covers up- and down-scaling, one-axis resizes and the tall-image path', () => {
    const kinds = new Set<string>();
    for (const c of EXPECTED.resize) {
      const s = EXPECTED.images[c.image];
      if (c.width > s.width || c.height > s.height) kinds.add('up');
      if (c.width < s.width || c.height < s.height) kinds.add('down');
      if (c.width === s.width || c.height === s.height) kinds.add('one-axis');
      if (s.height > 100 * s.width && c.height < s.height) kinds.add('tall');
    }
    assert.deepEqual([...kinds].sort(), ['down', 'one-axis', 'tall', 'up']);
  });
});

describe('resizeRGB properties', () => {
  it('same size returns an equal copy', () => {
    const img = pilImage('rgb_odd.png');
    for (const f of ['nearest', 'bilinear', 'bicubic'] as const) {
      const out = resizeRGB(img, img.width, img.height, f);
      assert.notEqual(out.data, img.data);
      assert.deepEqual(out.data, img.data);
    }
  });

  it('a constant image stays constant (weights sum to one in fixed point)', () => {
    const img: RGBImage = { width: 13, height: 7, data: new Uint8Array(13 * 7 * 3) };
    for (let i = 0; i < img.data.length; i += 3) img.data.set([7, 128, 255], i);
    for (const f of ['nearest', 'bilinear', 'bicubic'] as const) {
      for (const [w, h] of [
        [5, 3],
        [29, 17],
        [1, 1],
        [13, 40],
      ]) {
        const out = resizeRGB(img, w, h, f);
        for (let i = 0; i < out.data.length; i += 3) {
          assert.deepEqual(Array.from(out.data.subarray(i, i + 3)), [7, 128, 255], `${f} ${w}x${h}`);
        }
      }
    }
  });

  it('resizeRGBRegion equals the same region of the whole resized image', () => {
    let seed = 7;
    const rand = () => {
      seed = (Math.imul(seed, 1103515245) + 12345) >>> 0;
      return seed / 2 ** 32;
    };
    const noise = (w: number, h: number): RGBImage => ({
      width: w,
      height: h,
      data: Uint8Array.from({ length: w * h * 3 }, () => Math.floor(rand() * 256)),
    });
    const images = [noise(37, 23), noise(9, 30), noise(4, 450), pilImage('rgb_odd.png')];
    let checked = 0;
    for (const img of images)
      for (const f of ['nearest', 'bilinear', 'bicubic'] as const)
        for (const [w, h] of [
          [img.width, 11], // vertical pass only
          [17, img.height], // horizontal pass only
          [20, 14], // both, shrinking
          [61, 45], // both, growing
          [3, 5],
          [img.width, img.height],
        ]) {
          const whole = resizeRGB(img, w, h, f);
          for (let k = 0; k < 4; k++) {
            const x = Math.floor(rand() * w);
            const y = Math.floor(rand() * h);
            const rw = 1 + Math.floor(rand() * (w - x));
            const rh = 1 + Math.floor(rand() * (h - y));
            const part = resizeRGBRegion(img, w, h, f, { x, y, width: rw, height: rh });
            assert.equal(part.width, rw);
            assert.equal(part.height, rh);
            for (let yy = 0; yy < rh; yy++) {
              const from = ((y + yy) * w + x) * 3;
              assert.deepEqual(
                part.data.subarray(yy * rw * 3, (yy + 1) * rw * 3),
                whole.data.subarray(from, from + rw * 3),
                `${img.width}x${img.height} → ${w}x${h} ${f}, region ${x},${y} ${rw}x${rh}, row ${yy}`,
              );
            }
            checked++;
          }
        }
    assert.equal(checked, 4 * 3 * 6 * 4);
    throwsCode(
      () => resizeRGBRegion(images[0], 10, 10, 'bilinear', { x: 5, y: 0, width: 6, height: 2 }),
      'ERR_ARGUMENT',
      ["'region'", '10x10', '"x":5'],
    );
  });

  it('rejects bad sizes, filters and images, naming the argument and value', () => {
    const img = pilImage('tiny1x1.png');
    throwsCode(() => resizeRGB(img, 0, 4, 'bilinear'), 'ERR_ARGUMENT', [
      "'outW'",
      'positive integer',
      'got 0',
    ]);
    throwsCode(() => resizeRGB(img, 4, 2.5, 'bilinear'), 'ERR_ARGUMENT', ["'outH'", 'got 2.5']);
    throwsCode(() => resizeRGB(img, 4, 4, 'lanczos' as ResampleFilter), 'ERR_ARGUMENT', [
      "'filter'",
      "'bilinear', 'bicubic' or 'nearest'",
      '"lanczos"',
    ]);
    throwsCode(
      () => resizeRGB({ width: 2, height: 2, data: new Uint8Array(11) }, 4, 4, 'bicubic'),
      'ERR_SHAPE',
      ['2*2*3 = 12', 'has 11'],
    );
    throwsCode(
      () => resizeRGB({ width: 0, height: 2, data: new Uint8Array(0) }, 4, 4, 'bicubic'),
      'ERR_ARGUMENT',
      ['0x2'],
    );
  });
});
