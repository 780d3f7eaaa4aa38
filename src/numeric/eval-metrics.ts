/**
 * Metrics of the final-layer evaluation (paper Sec. 4.2, Tables 1–3), as the reference notebooks compute them
 * (experiments/table1.ipynb and table3.ipynb of the official repository):
 *
 * - cosine between a predicted label's and the ground truth's text embeddings, per unit, then the mean;
 * - rank of the correct concept in a neuron's similarity row (1 = best), its mean and "median";
 * - top-k accuracy (the correct concept among the k best);
 * - ROC-AUC of the winning score as a predictor of top-1 correctness.
 *
 * Ties and NaN: a row is ordered by score descending, equal scores by concept index ascending (a stable sort,
 * so that the concept ranked first is the argmax the labels come from), NaN below every number (as topK does).
 * Pure math on Float32Array; no I/O.
 */
import { ArgumentError, ShapeError } from './errors.js';
import type { Matrix } from './matrix.js';
import { before } from './topk.js';

/**
 * The 1-based rank of entry `target` among `n` scores at `offset + j` (descending; ties by lower index; NaN
 * last): 1 + the number of entries ordered before it.
 */
export function rankOf(scores: ArrayLike<number>, target: number, n = scores.length, offset = 0): number {
  if (!(Number.isInteger(target) && target >= 0 && target < n))
    throw new ArgumentError(`'target' must be an integer in [0, ${n}) but got ${target}`);
  const t = scores[offset + target];
  let rank = 1;
  for (let j = 0; j < n; j++) if (j !== target && before(scores[offset + j], j, t, target)) rank++;
  return rank;
}

/**
 * Per row i of `scores` (K×M, neurons × concepts), the rank of concept `targets[i]`; a negative target gives
 * rank 0 (no correct concept). Int32Array of K.
 */
export function targetRanks(scores: Matrix, targets: ArrayLike<number>): Int32Array {
  if (targets.length !== scores.rows)
    throw new ShapeError(
      `targets has ${targets.length} entries but the score matrix has ${scores.rows} rows (one target per row)`,
    );
  const out = new Int32Array(scores.rows);
  for (let i = 0; i < scores.rows; i++) {
    const t = targets[i];
    if (t < 0) continue;
    if (!(Number.isInteger(t) && t < scores.cols))
      throw new ArgumentError(`targets[${i}] must be an integer in [0, ${scores.cols}) but got ${t}`);
    out[i] = rankOf(scores.data, t, scores.cols, i * scores.cols);
  }
  return out;
}

/** Fraction of ranks r with 1 <= r <= k (ranks of 0, "no target", count as wrong). */
export function topKAccuracy(ranks: ArrayLike<number>, k: number): number {
  if (!(Number.isInteger(k) && k >= 1))
    throw new ArgumentError(`'k' must be a positive integer but got ${k}`);
  if (ranks.length === 0) throw new ArgumentError('top-k accuracy of no ranks');
  let c = 0;
  for (let i = 0; i < ranks.length; i++) if (ranks[i] >= 1 && ranks[i] <= k) c++;
  return c / ranks.length;
}

/** Arithmetic mean in float64. NaN for no values. */
export function mean(values: ArrayLike<number>): number {
  if (values.length === 0) return Number.NaN;
  let s = 0;
  for (let i = 0; i < values.length; i++) s += values[i];
  return s / values.length;
}

/**
 * The reference notebook's median: `sorted(values)[n // 2]` — the middle value for odd n, the UPPER of the two
 * middle values for even n (with 1000 neurons, the 501st smallest rank). NaN for no values.
 */
export function upperMedian(values: ArrayLike<number>): number {
  if (values.length === 0) return Number.NaN;
  const s = Float64Array.from(values).sort();
  return s[Math.floor(s.length / 2)];
}

/**
 * ROC-AUC of `scores` as a predictor of `positive` (1/true = positive): the probability that a random
 * positive scores higher than a random negative, ties counted 1/2 (Mann–Whitney U / (P·N)); equal to
 * sklearn's roc_auc_score. NaN scores are lowest. Returns NaN when either class is empty (sklearn raises).
 */
export function rocAuc(scores: ArrayLike<number>, positive: ArrayLike<number | boolean>): number {
  const n = scores.length;
  if (positive.length !== n)
    throw new ShapeError(`rocAuc: ${n} scores but ${positive.length} labels; one label per score`);
  const idx = Array.from({ length: n }, (_, i) => i);
  const key = (i: number) => (Number.isNaN(scores[i]) ? Number.NEGATIVE_INFINITY : scores[i]);
  idx.sort((a, b) => (key(a) < key(b) ? -1 : key(a) > key(b) ? 1 : 0));
  // midranks (1-based) over groups of equal keys
  let rankSumPos = 0;
  let nPos = 0;
  for (let g = 0; g < n; ) {
    let e = g;
    while (e + 1 < n && key(idx[e + 1]) === key(idx[g])) e++;
    const mid = (g + 1 + e + 1) / 2;
    for (let q = g; q <= e; q++)
      if (positive[idx[q]]) {
        rankSumPos += mid;
        nPos++;
      }
    g = e + 1;
  }
  const nNeg = n - nPos;
  if (nPos === 0 || nNeg === 0) return Number.NaN;
  return (rankSumPos - (nPos * (nPos + 1)) / 2) / (nPos * nNeg);
}

/**
 * Cosine of row i of `a` with row i of `b` (both R×d), each row L2-normalised first (as the reference divides
 * embeddings by their norms): Float64Array of R. A zero row gives NaN.
 */
export function rowCosines(a: Matrix, b: Matrix): Float64Array {
  if (a.rows !== b.rows || a.cols !== b.cols)
    throw new ShapeError(
      `rowCosines: the matrices must have one shape but are ${a.rows}×${a.cols} and ${b.rows}×${b.cols}`,
    );
  const d = a.cols;
  const out = new Float64Array(a.rows);
  for (let i = 0; i < a.rows; i++) {
    let dot = 0;
    let na = 0;
    let nb = 0;
    for (let j = 0; j < d; j++) {
      const x = a.data[i * d + j];
      const y = b.data[i * d + j];
      dot += x * y;
      na += x * x;
      nb += y * y;
    }
    out[i] = na > 0 && nb > 0 ? dot / Math.sqrt(na * nb) : Number.NaN;
  }
  return out;
}
