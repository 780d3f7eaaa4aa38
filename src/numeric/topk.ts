import { ArgumentError } from './errors.js';
import type { Matrix } from './matrix.js';

/**
 * Top-k selection. Order is descending by value; ties are broken by the LOWER index first; NaN counts as
 * smaller than every number (it is selected last). These rules make every selection reproducible; the
 * reference (torch.topk) leaves tie order unspecified.
 */

/** True when value a at index ia ranks before value b at index ib. */
function before(a: number, ia: number, b: number, ib: number): boolean {
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
  // min-heap (by rank order) of size k: heap[0] is the worst kept element.
  const heapIdx = new Int32Array(k);
  const heapVal = new Float64Array(k);
  let size = 0;
  const worse = (i: number, j: number) => before(heapVal[j], heapIdx[j], heapVal[i], heapIdx[i]);
  const siftDown = (pos: number) => {
    for (;;) {
      const l = 2 * pos + 1;
      if (l >= size) return;
      const r = l + 1;
      let w = l;
      if (r < size && worse(r, l)) w = r;
      if (!worse(w, pos)) return;
      const ti = heapIdx[pos];
      heapIdx[pos] = heapIdx[w];
      heapIdx[w] = ti;
      const tv = heapVal[pos];
      heapVal[pos] = heapVal[w];
      heapVal[w] = tv;
      pos = w;
    }
  };
  for (let i = 0; i < n; i++) {
    const v = values[offset + i * stride];
    if (size < k) {
      let pos = size++;
      heapIdx[pos] = i;
      heapVal[pos] = v;
      while (pos > 0) {
        const parent = (pos - 1) >> 1;
        if (!worse(pos, parent)) break;
        const ti = heapIdx[pos];
        heapIdx[pos] = heapIdx[parent];
        heapIdx[parent] = ti;
        const tv = heapVal[pos];
        heapVal[pos] = heapVal[parent];
        heapVal[parent] = tv;
        pos = parent;
      }
    } else {
      // i only grows, so a tie with the kept worst never displaces it; NaN displaces nothing but NaN.
      const w = heapVal[0];
      if (!(v > w) && (!Number.isNaN(w) || Number.isNaN(v))) continue;
      heapIdx[0] = i;
      heapVal[0] = v;
      siftDown(0);
    }
  }
  // pop worst-first into the tail of the output
  for (let pos = k - 1; pos >= 0; pos--) {
    out[outOffset + pos] = heapIdx[0];
    size--;
    heapIdx[0] = heapIdx[size];
    heapVal[0] = heapVal[size];
    siftDown(0);
  }
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
  // heap order: hv[parent] ranks after (is worse than or equal to) its children
  const worse = (a: number, b: number) => before(hv[b], hi[b], hv[a], hi[a]);
  const sift = (base: number, pos: number, size: number) => {
    for (;;) {
      const l = 2 * pos + 1;
      if (l >= size) return;
      let w = l;
      if (l + 1 < size && worse(base + l + 1, base + l)) w = l + 1;
      if (!worse(base + w, base + pos)) return;
      const a = base + pos;
      const b = base + w;
      const tv = hv[a];
      hv[a] = hv[b];
      hv[b] = tv;
      const ti = hi[a];
      hi[a] = hi[b];
      hi[b] = ti;
      pos = w;
    }
  };
  for (let i = 0; i < k; i++) {
    const off = i * cols;
    for (let j = 0; j < cols; j++) {
      hv[j * k + i] = data[off + j];
      hi[j * k + i] = i;
    }
  }
  for (let j = 0; j < cols; j++) for (let p = (k >> 1) - 1; p >= 0; p--) sift(j * k, p, k);
  for (let i = k; i < rows; i++) {
    const off = i * cols;
    for (let j = 0; j < cols; j++) {
      const v = data[off + j];
      const base = j * k;
      const w = hv[base];
      // rows arrive in increasing order: a tie with the kept worst never displaces it
      if (!(v > w) && (!Number.isNaN(w) || Number.isNaN(v))) continue;
      hv[base] = v;
      hi[base] = i;
      sift(base, 0, k);
    }
  }
  // pop worst-first into rank order
  for (let j = 0; j < cols; j++) {
    const base = j * k;
    for (let size = k; size > 0; size--) {
      out[base + size - 1] = hi[base];
      hv[base] = hv[base + size - 1];
      hi[base] = hi[base + size - 1];
      sift(base, 0, size - 1);
    }
  }
  return out;
}

/** For each row of `m` (rows×cols), its k largest entries: indices and values, rows×k each. */
export function rowTopK(m: Matrix, k: number): { indices: Int32Array; values: Float32Array } {
  if (k > m.cols) throw new ArgumentError(`'k' must be <= the number of columns (${m.cols}) but got ${k}`);
  const indices = new Int32Array(m.rows * k);
  const values = new Float32Array(m.rows * k);
  for (let i = 0; i < m.rows; i++) {
    topKStrided(m.data, m.cols, k, indices, i * k, i * m.cols, 1);
    for (let r = 0; r < k; r++) values[i * k + r] = m.data[i * m.cols + indices[i * k + r]];
  }
  return { indices, values };
}
