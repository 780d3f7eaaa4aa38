/**
 * Image resizing that reproduces Pillow's `Image.resize(size, filter)` on 8-bit RGB images pixel for pixel
 * (as used by torchvision's `Resize` on PIL images, and by Hugging Face image processors).
 *
 * BILINEAR and BICUBIC follow Pillow's separable, antialiased resampler (libImaging/Resample.c):
 *
 * - For each output coordinate `i` the filter is centred on `center = (i + 0.5) * scale` in input
 *   coordinates, `scale = inSize / outSize`. When downscaling (`scale > 1`) the filter is stretched by
 *   `scale` (antialiasing): support `s * max(scale, 1)`, with `s` = 1 (triangle) or 2 (cubic, a = -0.5).
 * - It covers input pixels `trunc(center - support + 0.5)` .. `trunc(center + support + 0.5) - 1` (clamped
 *   to the image); each weight is `filter((j - center + 0.5) / max(scale, 1))`, and the weights are divided
 *   by their sum.
 * - The weights become integers with 22 fractional bits (`trunc(w * 2^22 ± 0.5)`, away from zero); a pass
 *   sums `2^21 + Σ pixel * weight` in integers and keeps `sum >> 22` clipped to 0..255.
 * - Two passes with a uint8 image in between: horizontal first (over the rows the vertical pass will read),
 *   then vertical; a pass whose size does not change is skipped. For images more than 100 times taller than
 *   wide that shrink vertically, Pillow's `Image.resize` runs the vertical pass first; so do we.
 *
 * NEAREST follows Pillow's affine scaling (libImaging/Geometry.c): source column `trunc(x_k)` with
 * `x_0 = scale / 2` and `x_{k+1} = x_k + scale`, accumulated in double precision as Pillow does; the same
 * for rows.
 *
 * Everything is integer or double arithmetic in the same order as Pillow, so the results are identical.
 */
import { ArgumentError, formatChoices, ShapeError } from '../numeric/errors.js';
import type { RGBImage } from './decode.js';

export type { RGBImage } from './decode.js';

/** The resampling filters of {@link resizeRGB}: Pillow's NEAREST (0), BILINEAR (2) and BICUBIC (3). */
export type ResampleFilter = 'bilinear' | 'bicubic' | 'nearest';

export const RESAMPLE_FILTERS: readonly ResampleFilter[] = ['bilinear', 'bicubic', 'nearest'];

/** Fractional bits of the fixed-point weights: 32 bits minus 8 for the pixel value minus 2 for overshoot. */
const PRECISION_BITS = 32 - 8 - 2;
const ONE = 1 << PRECISION_BITS;
const HALF = 1 << (PRECISION_BITS - 1);

interface Kernel {
  /** Half-width of the unstretched filter, in input pixels. */
  support: number;
  weight(x: number): number;
}

const TRIANGLE: Kernel = {
  support: 1,
  weight(x) {
    if (x < 0) x = -x;
    return x < 1 ? 1 - x : 0;
  },
};

/** Keys' cubic convolution with a = -0.5 (Catmull-Rom), written with the same operation order as Pillow. */
const CUBIC: Kernel = {
  support: 2,
  weight(x) {
    if (x < 0) x = -x;
    if (x < 1) return (1.5 * x - 2.5) * x * x + 1;
    if (x < 2) return (((x - 5) * x + 8) * x - 4) * -0.5;
    return 0;
  },
};

/** Fixed-point weights of a 1-D resampling pass: output `i` reads `count[i]` inputs from `first[i]` on,
 * with weights `weights[i * width ... i * width + count[i] - 1]`. */
interface PassWeights {
  first: Int32Array;
  count: Int32Array;
  weights: Int32Array;
  width: number;
}

/** Pillow's coefficient computation (`precompute_coeffs` + `normalize_coeffs_8bpc`) for the whole input range. */
function passWeights(inSize: number, outSize: number, kernel: Kernel): PassWeights {
  const scale = inSize / outSize;
  const filterScale = Math.max(scale, 1);
  const support = kernel.support * filterScale;
  const width = Math.ceil(support) * 2 + 1;
  const first = new Int32Array(outSize);
  const count = new Int32Array(outSize);
  const weights = new Int32Array(outSize * width);
  const w = new Float64Array(width);
  const inv = 1 / filterScale;
  for (let i = 0; i < outSize; i++) {
    const center = (i + 0.5) * scale;
    let lo = Math.trunc(center - support + 0.5);
    if (lo < 0) lo = 0;
    let hi = Math.trunc(center + support + 0.5);
    if (hi > inSize) hi = inSize;
    const n = hi - lo;
    let sum = 0;
    for (let j = 0; j < n; j++) {
      const v = kernel.weight((j + lo - center + 0.5) * inv);
      w[j] = v;
      sum += v;
    }
    const base = i * width;
    for (let j = 0; j < n; j++) {
      const v = sum !== 0 ? w[j] / sum : w[j];
      weights[base + j] = v < 0 ? Math.trunc(-0.5 + v * ONE) : Math.trunc(0.5 + v * ONE);
    }
    first[i] = lo;
    count[i] = n;
  }
  return { first, count, weights, width };
}

/** Clips a fixed-point sum to a pixel value (Pillow's clip8). */
function clip8(sum: number): number {
  const v = sum >> PRECISION_BITS;
  return v < 0 ? 0 : Math.min(v, 255);
}

/** Horizontal pass over input rows `row0 .. row0 + rows - 1` into a `pw.first.length`-wide image. */
function horizontal(src: Uint8Array, srcW: number, row0: number, rows: number, pw: PassWeights): Uint8Array {
  const outW = pw.first.length;
  const out = new Uint8Array(outW * rows * 3);
  const { first, count, weights, width } = pw;
  for (let y = 0; y < rows; y++) {
    const rowBase = (row0 + y) * srcW * 3;
    let o = y * outW * 3;
    for (let x = 0; x < outW; x++) {
      const n = count[x];
      const kb = x * width;
      let p = rowBase + first[x] * 3;
      let s0 = HALF;
      let s1 = HALF;
      let s2 = HALF;
      for (let j = 0; j < n; j++, p += 3) {
        const k = weights[kb + j];
        s0 = (s0 + Math.imul(src[p], k)) | 0;
        s1 = (s1 + Math.imul(src[p + 1], k)) | 0;
        s2 = (s2 + Math.imul(src[p + 2], k)) | 0;
      }
      out[o++] = clip8(s0);
      out[o++] = clip8(s1);
      out[o++] = clip8(s2);
    }
  }
  return out;
}

/** Vertical pass: output row `y` reads input rows `first[y] - row0 ...` of `src` (`w` pixels wide). */
function vertical(src: Uint8Array, w: number, row0: number, pw: PassWeights): Uint8Array {
  const outH = pw.first.length;
  const stride = w * 3;
  const out = new Uint8Array(outH * stride);
  const { first, count, weights, width } = pw;
  for (let y = 0; y < outH; y++) {
    const n = count[y];
    const kb = y * width;
    const r0 = (first[y] - row0) * stride;
    const ob = y * stride;
    for (let i = 0; i < stride; i++) {
      let s = HALF;
      for (let j = 0, p = r0 + i; j < n; j++, p += stride) s = (s + Math.imul(src[p], weights[kb + j])) | 0;
      out[ob + i] = clip8(s);
    }
  }
  return out;
}

/** Pillow's nearest-neighbour source indices: `trunc(x_k)`, `x_0 = scale / 2`, `x_{k+1} = x_k + scale`
 * (accumulated), or -1 where that falls outside the input. */
function nearestIndices(inSize: number, outSize: number): Int32Array {
  const scale = inSize / outSize;
  const idx = new Int32Array(outSize);
  let pos = scale * 0.5;
  for (let i = 0; i < outSize; i++) {
    const j = pos < 0 ? -1 : Math.trunc(pos);
    idx[i] = j >= 0 && j < inSize ? j : -1;
    pos += scale;
  }
  return idx;
}

function resizeNearest(img: RGBImage, outW: number, outH: number): Uint8Array {
  const xs = nearestIndices(img.width, outW);
  const ys = nearestIndices(img.height, outH);
  const out = new Uint8Array(outW * outH * 3); // zero where Pillow leaves the fill value
  const src = img.data;
  for (let y = 0; y < outH; y++) {
    const sy = ys[y];
    if (sy < 0) continue;
    const rb = sy * img.width * 3;
    let o = y * outW * 3;
    for (let x = 0; x < outW; x++, o += 3) {
      const sx = xs[x];
      if (sx < 0) continue;
      const p = rb + sx * 3;
      out[o] = src[p];
      out[o + 1] = src[p + 1];
      out[o + 2] = src[p + 2];
    }
  }
  return out;
}

function checkImage(img: RGBImage, name: string): void {
  if (img === null || typeof img !== 'object') {
    throw new ArgumentError(`'${name}' must be an image {width, height, data} but got ${String(img)}`);
  }
  const { width, height, data } = img;
  if (!Number.isInteger(width) || width < 1 || !Number.isInteger(height) || height < 1) {
    throw new ArgumentError(
      `'${name}' must have positive integer width and height but got ${String(width)}x${String(height)}`,
    );
  }
  if (!(data instanceof Uint8Array)) {
    throw new ArgumentError(`'${name}.data' must be a Uint8Array (HWC RGB) but got ${typeof data}`);
  }
  if (data.length !== width * height * 3) {
    throw new ShapeError(
      `'${name}.data' must hold width*height*3 = ${width}*${height}*3 = ${width * height * 3} bytes (HWC RGB) but has ${data.length}`,
    );
  }
}

/** Validates an RGB image: positive integer size and `width * height * 3` bytes of data. */
export function assertRGBImage(img: RGBImage, name = 'img'): void {
  checkImage(img, name);
}

/** A rectangle of an image, in pixels. */
export interface Region {
  x: number;
  y: number;
  width: number;
  height: number;
}

/** Outputs `start .. start + n - 1` of a pass. */
function slicePass(pw: PassWeights, start: number, n: number): PassWeights {
  return {
    first: pw.first.subarray(start, start + n),
    count: pw.count.subarray(start, start + n),
    weights: pw.weights.subarray(start * pw.width, (start + n) * pw.width),
    width: pw.width,
  };
}

/** The `r` part of an RGB image (a copy). */
function cropRGB(img: RGBImage, r: Region): RGBImage {
  if (r.x === 0 && r.y === 0 && r.width === img.width && r.height === img.height) return img;
  const out = new Uint8Array(r.width * r.height * 3);
  for (let y = 0; y < r.height; y++) {
    const from = ((r.y + y) * img.width + r.x) * 3;
    out.set(img.data.subarray(from, from + r.width * 3), y * r.width * 3);
  }
  return { width: r.width, height: r.height, data: out };
}

/**
 * Resizes an 8-bit RGB image to `outW` x `outH` exactly as Pillow's `Image.resize((outW, outH), filter)`
 * does (no `box`, no `reducing_gap`). Returns a new image; the input is not modified.
 */
export function resizeRGB(img: RGBImage, outW: number, outH: number, filter: ResampleFilter): RGBImage {
  return resizeRGBRegion(img, outW, outH, filter, { x: 0, y: 0, width: outW, height: outH });
}

/**
 * The `region` of {@link resizeRGB}`(img, outW, outH, filter)`, computing only its pixels: every output pixel of
 * Pillow's two passes depends on its own row and column only, so a center crop taken this way is identical to
 * cropping the whole resized image (and 25–50% cheaper for the usual resize-then-crop).
 */
export function resizeRGBRegion(
  img: RGBImage,
  outW: number,
  outH: number,
  filter: ResampleFilter,
  region: Region,
): RGBImage {
  checkImage(img, 'img');
  for (const [name, v] of [
    ['outW', outW],
    ['outH', outH],
  ] as const) {
    if (!Number.isInteger(v) || v < 1) {
      throw new ArgumentError(`resizeRGB: '${name}' must be a positive integer but got ${String(v)}`);
    }
  }
  if (!RESAMPLE_FILTERS.includes(filter)) {
    throw new ArgumentError(
      `resizeRGB: 'filter' must be ${formatChoices(RESAMPLE_FILTERS)} but got ${JSON.stringify(filter)}`,
    );
  }
  const r = region;
  if (
    ![r.x, r.y, r.width, r.height].every(Number.isInteger) ||
    r.x < 0 ||
    r.y < 0 ||
    r.width < 1 ||
    r.height < 1 ||
    r.x + r.width > outW ||
    r.y + r.height > outH
  )
    throw new ArgumentError(
      `resizeRGBRegion: 'region' must lie inside the ${outW}x${outH} output but got ${JSON.stringify(r)}`,
    );
  const { width: inW, height: inH } = img;
  const { width, height } = r;
  if (outW === inW && outH === inH) {
    const c = cropRGB(img, r);
    return c === img ? { width, height, data: img.data.slice() } : c;
  }
  if (filter === 'nearest')
    return cropRGB({ width: outW, height: outH, data: resizeNearest(img, outW, outH) }, r);

  const kernel = filter === 'bilinear' ? TRIANGLE : CUBIC;
  const needH = outW !== inW;
  const needV = outH !== inH;
  if (inH > inW * 100 && outH < inH) {
    // Pillow's Image.resize: very tall images shrink vertically first, then horizontally.
    const tmp = vertical(img.data, inW, 0, passWeights(inH, outH, kernel));
    const data = needH ? horizontal(tmp, inW, 0, outH, passWeights(inW, outW, kernel)) : tmp;
    return cropRGB({ width: outW, height: outH, data }, r);
  }
  if (!needH) {
    // output columns are input columns: take the region's columns, then resize them vertically
    const cols = cropRGB(img, { x: r.x, y: 0, width, height: inH });
    const pv = slicePass(passWeights(inH, outH, kernel), r.y, height);
    return { width, height, data: vertical(cols.data, width, 0, pv) };
  }
  const ph = slicePass(passWeights(inW, outW, kernel), r.x, width);
  if (!needV) return { width, height, data: horizontal(img.data, inW, r.y, height, ph) };
  const pv = slicePass(passWeights(inH, outH, kernel), r.y, height);
  // Only the input rows that the vertical pass reads go through the horizontal pass.
  const row0 = pv.first[0];
  const rowEnd = pv.first[height - 1] + pv.count[height - 1];
  const tmp = horizontal(img.data, inW, row0, rowEnd - row0, ph);
  return { width, height, data: vertical(tmp, width, row0, pv) };
}
