import type { Matrix } from './matrix.js';

/** log(Σ exp(x_i)) over `n` values at `offset + i*stride`, computed stably in float64. -Infinity when n = 0. */
export function logSumExp(values: ArrayLike<number>, n = values.length, offset = 0, stride = 1): number {
  let max = Number.NEGATIVE_INFINITY;
  for (let i = 0; i < n; i++) {
    const v = values[offset + i * stride];
    if (v > max || Number.isNaN(v)) max = v;
  }
  if (Number.isNaN(max)) return Number.NaN;
  if (max === Number.NEGATIVE_INFINITY || max === Number.POSITIVE_INFINITY) return max;
  let sum = 0;
  for (let i = 0; i < n; i++) sum += Math.exp(values[offset + i * stride] - max);
  return max + Math.log(sum);
}

/** Row-wise softmax of `scale · m` (rows×cols), as a new matrix. float64 accumulation. */
export function softmaxRows(m: Matrix, scale = 1): Matrix {
  const { rows, cols, data } = m;
  const out = new Float32Array(rows * cols);
  const tmp = new Float64Array(cols);
  for (let i = 0; i < rows; i++) {
    const off = i * cols;
    let max = Number.NEGATIVE_INFINITY;
    for (let j = 0; j < cols; j++) {
      const v = scale * data[off + j];
      tmp[j] = v;
      if (v > max) max = v;
    }
    let sum = 0;
    for (let j = 0; j < cols; j++) {
      const e = Math.exp(tmp[j] - max);
      tmp[j] = e;
      sum += e;
    }
    for (let j = 0; j < cols; j++) out[off + j] = tmp[j] / sum;
  }
  return { rows, cols, data: out };
}

/** Each row scaled to unit L2 norm (a zero row stays zero), as a new matrix. */
export function normalizeRows(m: Matrix): Matrix {
  const { rows, cols, data } = m;
  const out = new Float32Array(rows * cols);
  for (let i = 0; i < rows; i++) {
    const off = i * cols;
    let ss = 0;
    for (let j = 0; j < cols; j++) ss += data[off + j] * data[off + j];
    const inv = ss > 0 ? 1 / Math.sqrt(ss) : 0;
    for (let j = 0; j < cols; j++) out[off + j] = data[off + j] * inv;
  }
  return { rows, cols, data: out };
}

/** Product a·bᵀ of a (n×d) and b (m×d), n×m, float64 accumulation. A reference kernel: O(n·m·d), slow. */
export function matmulTransB(a: Matrix, b: Matrix): Matrix {
  const n = a.rows;
  const m = b.rows;
  const d = a.cols;
  const out = new Float32Array(n * m);
  for (let i = 0; i < n; i++) {
    const ao = i * d;
    for (let j = 0; j < m; j++) {
      const bo = j * d;
      let s = 0;
      for (let t = 0; t < d; t++) s += a.data[ao + t] * b.data[bo + t];
      out[i * m + j] = s;
    }
  }
  return { rows: n, cols: m, data: out };
}

/** Index of the largest value (NaN never wins unless all are NaN; ties → lower index). */
export function argmax(values: ArrayLike<number>, n = values.length, offset = 0): number {
  let best = 0;
  let bestV = Number.NaN;
  for (let i = 0; i < n; i++) {
    const v = values[offset + i];
    if (Number.isNaN(v)) continue;
    if (Number.isNaN(bestV) || v > bestV) {
      best = i;
      bestV = v;
    }
  }
  return best;
}
