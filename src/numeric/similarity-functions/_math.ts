/** Plain float64 helpers of the reference implementations (materialised matrices, simple to check). Internal. */
import type { Matrix } from '../matrix.js';
import { matmulTransB, normalizeRows } from '../reductions.js';

/** P = normalise(I)·normalise(T)ᵀ, N×M. */
export function clipSimilarities(imageFeatures: Matrix, textFeatures: Matrix): Matrix {
  return matmulTransB(normalizeRows(imageFeatures), normalizeRows(textFeatures));
}

/** Columns of `x` (rows×cols) scaled to unit L2 norm, the norm clipped below at `minNorm` (0 = no clip; zero columns stay zero). */
export function normalizeColumns(x: Matrix, minNorm: number): Matrix {
  const { rows, cols, data } = x;
  const ss = new Float64Array(cols);
  for (let i = 0; i < rows; i++) for (let j = 0; j < cols; j++) ss[j] += data[i * cols + j] ** 2;
  const inv = new Float64Array(cols);
  for (let j = 0; j < cols; j++) {
    const norm = Math.max(Math.sqrt(ss[j]), minNorm);
    inv[j] = norm > 0 ? 1 / norm : 0;
  }
  const out = new Float32Array(rows * cols);
  for (let i = 0; i < rows; i++)
    for (let j = 0; j < cols; j++) out[i * cols + j] = data[i * cols + j] * inv[j];
  return { rows, cols, data: out };
}

/** xᵀ·y for x (n×k), y (n×m): k×m, float64 accumulation. */
export function matmulTransA(x: Matrix, y: Matrix): Matrix {
  const out = new Float64Array(x.cols * y.cols);
  for (let i = 0; i < x.rows; i++) {
    for (let a = 0; a < x.cols; a++) {
      const xv = x.data[i * x.cols + a];
      if (xv === 0) continue;
      for (let b = 0; b < y.cols; b++) out[a * y.cols + b] += xv * y.data[i * y.cols + b];
    }
  }
  return { rows: x.cols, cols: y.cols, data: Float32Array.from(out) };
}
