import { ArgumentError } from './errors.js';
import type { Matrix } from './matrix.js';

/**
 * Top-k selection. Order is descending by value; ties are broken by the LOWER index first; NaN counts as
 * smaller than every number (it is selected last). These rules make every selection reproducible; the
 * reference (torch.topk) leaves tie order unspecified.
 */

/** True when value a at index ia ranks before value b at index ib (the order of every ranking here and in
 * eval-metrics.ts). */
export function before(a: number, ia: number, b: number, ib: number): boolean {
  if (a > b) return true;
  if (a < b) return false;
  if (a === b) return ia < ib;
  // at least one NaN
  const aNaN = Number.isNaN(a);
  const bNaN = Number.isNaN(b);
  if (aNaN && !bNaN) return false;
  if (bNaN && !aNaN) return true;
  return ia < ib;
}

/**
 * Bounded min-heaps by rank order, stored at hv/hi[base .. base + size): the root is the worst kept element
 * (smallest value; among equal values the higher index). Shared by every top-k selection below.
 */
function siftDown(hv: Float64Array, hi: Int32Array, base: number, pos: number, size: number): void {
  for (;;) {
    const l = 2 * pos + 1;
    if (l >= size) return;
    let w = l;
    const a = base + l;
    if (l + 1 < size && before(hv[a], hi[a], hv[a + 1], hi[a + 1])) w = l + 1;
    const bw = base + w;
    const bp = base + pos;
    if (!before(hv[bp], hi[bp], hv[bw], hi[bw])) return;
    const tv = hv[bp];
    hv[bp] = hv[bw];
    hv[bw] = tv;
    const ti = hi[bp];
    hi[bp] = hi[bw];
    hi[bw] = ti;
    pos = w;
  }
}

function heapify(hv: Float64Array, hi: Int32Array, base: number, size: number): void {
  for (let p = (size >> 1) - 1; p >= 0; p--) siftDown(hv, hi, base, p, size);
}

/** Offers (v, i) to a full heap; rows arrive in increasing i, so a tie with the kept worst never displaces it. */
function offer(hv: Float64Array, hi: Int32Array, base: number, size: number, v: number, i: number): void {
  const w = hv[base];
  // NaN displaces nothing but NaN
  if (!(v > w) && (!Number.isNaN(w) || Number.isNaN(v))) return;
  hv[base] = v;
  hi[base] = i;
  siftDown(hv, hi, base, 0, size);
}

/** Empties a heap worst-first into out[outOffset .. outOffset + size), which ends up in rank order. */
function drain(
  hv: Float64Array,
  hi: Int32Array,
  base: number,
  size: number,
  out: Int32Array,
  outOffset: number,
): void {
  for (; size > 0; size--) {
    out[outOffset + size - 1] = hi[base];
    hv[base] = hv[base + size - 1];
    hi[base] = hi[base + size - 1];
    siftDown(hv, hi, base, 0, size - 1);
  }
}

/**
 * Indices of the k largest of `values[offset + i*stride]` for i in [0, n), written to `out[outOffset..+k)`
 * in rank order. O(n·log k) with a bounded heap; k <= n.
 */
export function topKStrided(
  values: Float32Array,
  n: number,
  k: number,
  out: Int32Array,
  outOffset = 0,
  offset = 0,
  stride = 1,
): void {
  if (k > n) throw new ArgumentError(`'k' must be <= n (${n}) but got ${k}`);
  if (k === 0) return;
  const hv = new Float64Array(k);
  const hi = new Int32Array(k);
  for (let i = 0; i < k; i++) {
    hv[i] = values[offset + i * stride];
    hi[i] = i;
  }
  heapify(hv, hi, 0, k);
  for (let i = k; i < n; i++) offer(hv, hi, 0, k, values[offset + i * stride], i);
  drain(hv, hi, 0, k, out, outOffset);
}

/** Indices of the k largest entries of a vector, in rank order. */
export function topK(values: Float32Array, k: number): Int32Array {
  const out = new Int32Array(k);
  topKStrided(values, values.length, k, out);
  return out;
}

/**
 * For each column j of `m` (rows×cols), the row indices of its k largest entries in rank order.
 * Returns a cols×k row-major Int32Array. Used for "the top-k images of each neuron" on an N×K
 * activation matrix. Reads `m` once, row by row, keeping one bounded min-heap per column.
 */
export function columnTopK(m: Matrix, k: number): Int32Array {
  const { rows, cols, data } = m;
  if (k > rows) throw new ArgumentError(`'k' must be <= the number of rows (${rows}) but got ${k}`);
  const out = new Int32Array(cols * k);
  if (k === 0) return out;
  const hv = new Float64Array(cols * k); // heap values; column j's heap at [j*k, j*k + k)
  const hi = new Int32Array(cols * k);
  for (let i = 0; i < k; i++) {
    const off = i * cols;
    for (let j = 0; j < cols; j++) {
      hv[j * k + i] = data[off + j];
      hi[j * k + i] = i;
    }
  }
  for (let j = 0; j < cols; j++) heapify(hv, hi, j * k, k);
  for (let i = k; i < rows; i++) {
    const off = i * cols;
    for (let j = 0; j < cols; j++) {
      const v = data[off + j];
      const base = j * k;
      // the common case, a value below the kept worst, without a call
      if (v < hv[base]) continue;
      offer(hv, hi, base, k, v, i);
    }
  }
  for (let j = 0; j < cols; j++) drain(hv, hi, j * k, k, out, j * k);
  return out;
}

/**
 * Every column's rows in rank order: columnTopK(m, m.rows) for an `m` without NaN, sorting one number per entry
 * (the value's order-preserving 32-bit code, then the row) instead of running heaps.
 */
export function columnRanking(m: Matrix): Int32Array {
  const { rows, cols, data } = m;
  if (rows > 1 << 21) return columnTopK(m, rows); // the code·2²¹ + row key needs 53 bits
  const bits = new Uint32Array(1);
  const f = new Float32Array(bits.buffer);
  const keys = new Float64Array(rows);
  const out = new Int32Array(rows * cols);
  for (let j = 0; j < cols; j++) {
    for (let i = 0; i < rows; i++) {
      f[0] = data[i * cols + j] + 0; // −0 ranks as 0
      const b = bits[0];
      // ascending in the value; the key sorts descending values first
      const code = b & 0x80000000 ? b : 0x7fffffff - b;
      keys[i] = code * (1 << 21) + i;
    }
    keys.sort();
    for (let i = 0; i < rows; i++) out[j * rows + i] = keys[i] % (1 << 21);
  }
  return out;
}

/**
 * columnTopK(gatherRows(m, rows), k) without forming the resampled matrix, from `order` = columnTopK(m, m.rows)
 * (every column's rows in rank order): rows[p] is the row of `m` at position p of the resample (bootstrap draws,
 * a permutation, a subset). Walks each column's ranking, giving each row's positions in increasing order and
 * merging the positions of tied rows. `m` must hold no NaN (whose rank rules differ).
 */
export function resampledColumnTopK(
  m: Matrix,
  order: Int32Array,
  rows: ArrayLike<number>,
  k: number,
): Int32Array {
  const { rows: nRows, cols, data } = m;
  const n = rows.length;
  if (k > n) throw new ArgumentError(`'k' must be <= the number of rows (${n}) but got ${k}`);
  if (order.length !== cols * nRows)
    throw new ArgumentError(`'order' must hold ${cols}×${nRows} ranks but has ${order.length}`);
  // each row's positions in the resample, increasing (CSR)
  const start = new Int32Array(nRows + 1);
  for (let p = 0; p < n; p++) start[rows[p] + 1]++;
  for (let i = 0; i < nRows; i++) start[i + 1] += start[i];
  const fill = start.slice(0, nRows);
  const positions = new Int32Array(n);
  for (let p = 0; p < n; p++) positions[fill[rows[p]]++] = p;
  const out = new Int32Array(cols * k);
  const tied = new Int32Array(n);
  for (let j = 0; j < cols; j++) {
    const o = j * nRows;
    let emitted = 0;
    for (let t = 0; emitted < k; ) {
      const v = data[order[o + t] * cols + j];
      let t2 = t + 1;
      while (t2 < nRows && data[order[o + t2] * cols + j] === v) t2++;
      if (t2 === t + 1) {
        const r = order[o + t];
        for (let q = start[r]; q < start[r + 1] && emitted < k; q++) out[j * k + emitted++] = positions[q];
      } else {
        let c = 0;
        for (let u = t; u < t2; u++) {
          const r = order[o + u];
          for (let q = start[r]; q < start[r + 1]; q++) tied[c++] = positions[q];
        }
        const group = tied.subarray(0, c).sort();
        for (let q = 0; q < c && emitted < k; q++) out[j * k + emitted++] = group[q];
      }
      t = t2;
    }
  }
  return out;
}
