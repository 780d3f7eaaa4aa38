/**
 * Kernels of the per-label trust figures (src/pipeline/trust.ts): the five scoring metrics that pass the
 * missing-label and extra-label sanity tests of Oikarinen et al., "Evaluating Neuron Explanations" (ICML 2025)
 * — Pearson correlation, cosine, AUPRC, F1, IoU — between a neuron's activations and a label's presence in
 * each image; the top-fraction binarisation they need; resampling and permutation-test helpers; and the
 * one-sample Kolmogorov–Smirnov test against U(0, 1) the tests use on p-values. Pure math, float64.
 *
 * Semantics (checked against scikit-learn / numpy by scripts/make_trust_golden.py):
 * - averagePrecision = sklearn.metrics.average_precision_score(presence, scores): thresholds at each distinct
 *   score (tied scores enter together), AP = Σ_n (R_n − R_{n−1})·P_n; NaN when no image has the label.
 * - f1 = sklearn f1_score, iou = sklearn jaccard_score (binary); both 0 when the denominator is 0, as
 *   scikit-learn's default zero_division gives.
 * - correlation = numpy.corrcoef (NaN when either input is constant); cosine = x·y / (‖x‖‖y‖) (NaN for a zero
 *   vector).
 */
import { ArgumentError, ShapeError } from './errors.js';
import type { Matrix } from './matrix.js';
import { randomPermutation } from './random.js';
import { centredSums, pearson } from './stats.js';
import { topK } from './topk.js';

function checkSameLength(what: string, a: ArrayLike<unknown>, b: ArrayLike<unknown>): number {
  if (a.length !== b.length)
    throw new ShapeError(`${what}: the two inputs must have one length but have ${a.length} and ${b.length}`);
  return a.length;
}

/** Pearson correlation of x and y (numpy.corrcoef(x, y)[0, 1]); NaN when either is constant. */
export function correlation(x: ArrayLike<number>, y: ArrayLike<number>): number {
  const n = checkSameLength('correlation', x, y);
  return n < 2 ? Number.NaN : pearson(x, y, n).r;
}

/** Cosine of x and y (uncentred); NaN when either is all zero. */
export function cosine(x: ArrayLike<number>, y: ArrayLike<number>): number {
  const n = checkSameLength('cosine', x, y);
  let dot = 0;
  let nx = 0;
  let ny = 0;
  for (let i = 0; i < n; i++) {
    dot += x[i] * y[i];
    nx += x[i] * x[i];
    ny += y[i] * y[i];
  }
  return nx > 0 && ny > 0 ? dot / Math.sqrt(nx * ny) : Number.NaN;
}

/**
 * Area under the precision-recall curve of `scores` as a predictor of `presence` (non-zero = present), as
 * sklearn's average_precision_score. NaN when nothing is present.
 */
export function averagePrecision(presence: ArrayLike<number>, scores: ArrayLike<number>): number {
  const n = checkSameLength('averagePrecision', presence, scores);
  let positives = 0;
  for (let i = 0; i < n; i++) if (presence[i]) positives++;
  if (positives === 0) return Number.NaN;
  const order = Array.from({ length: n }, (_, i) => i).sort((a, b) => scores[b] - scores[a] || a - b);
  let tp = 0;
  let fp = 0;
  let prevRecall = 0;
  let ap = 0;
  for (let g = 0; g < n; ) {
    let e = g;
    while (e < n && scores[order[e]] === scores[order[g]]) {
      if (presence[order[e]]) tp++;
      else fp++;
      e++;
    }
    const recall = tp / positives;
    ap += (recall - prevRecall) * (tp / (tp + fp));
    prevRecall = recall;
    g = e;
  }
  return ap;
}

/** Counts of a binary confusion matrix (non-zero = positive). */
function confusion(truth: ArrayLike<number>, predicted: ArrayLike<number>, what: string) {
  const n = checkSameLength(what, truth, predicted);
  let tp = 0;
  let fp = 0;
  let fn = 0;
  for (let i = 0; i < n; i++) {
    const t = truth[i] !== 0;
    const p = predicted[i] !== 0;
    if (t && p) tp++;
    else if (p) fp++;
    else if (t) fn++;
  }
  return { tp, fp, fn };
}

/** F1 of binary predictions against binary truth (sklearn f1_score); 0 when both are all negative. */
export function f1(truth: ArrayLike<number>, predicted: ArrayLike<number>): number {
  const { tp, fp, fn } = confusion(truth, predicted, 'f1');
  const den = 2 * tp + fp + fn;
  return den === 0 ? 0 : (2 * tp) / den;
}

/** Intersection over union of two binary vectors (sklearn jaccard_score); 0 when both are all negative. */
export function iou(truth: ArrayLike<number>, predicted: ArrayLike<number>): number {
  const { tp, fp, fn } = confusion(truth, predicted, 'iou');
  const den = tp + fp + fn;
  return den === 0 ? 0 : tp / den;
}

/** max(1, ceil(fraction·n)): how many of n images a top fraction selects. */
export function topCount(n: number, fraction: number): number {
  if (!(fraction > 0 && fraction <= 1))
    throw new ArgumentError(`the top fraction must be in (0, 1] but got ${fraction}`);
  return Math.min(n, Math.max(1, Math.ceil(fraction * n - 1e-9)));
}

/**
 * 1 for the ceil(fraction·n) largest values (at least one; ties by lower index, NaN last), 0 elsewhere: the
 * binarisation of activations for F1 / IoU and of CLIP similarities for pseudo-labels.
 */
export function topFractionMask(values: ArrayLike<number>, fraction: number): Uint8Array {
  const n = values.length;
  const out = new Uint8Array(n);
  if (n === 0) return out;
  for (const i of topK(Float32Array.from(values), topCount(n, fraction))) out[i] = 1;
  return out;
}

/** The five sanity-checked metrics of one (activations, presence) pair. */
export interface LabelMetrics {
  correlation: number;
  cosine: number;
  auprc: number;
  f1: number;
  iou: number;
}

export const METRIC_NAMES = ['correlation', 'cosine', 'auprc', 'f1', 'iou'] as const;

/**
 * The five metrics between a neuron's activations and a label's binary presence; F1 and IoU compare the
 * presence with the activations binarised by topFractionMask(activations, activeFraction).
 */
export function labelMetrics(
  activations: ArrayLike<number>,
  presence: ArrayLike<number>,
  activeFraction: number,
): LabelMetrics {
  const active = topFractionMask(activations, activeFraction);
  return {
    correlation: correlation(activations, presence),
    cosine: cosine(activations, presence),
    auprc: averagePrecision(presence, activations),
    f1: f1(presence, active),
    iou: iou(presence, active),
  };
}

/** n indices drawn uniformly with replacement from 0..n-1 (a bootstrap resample), sorted ascending. */
export function bootstrapIndices(n: number, rand: () => number): Int32Array {
  const out = new Int32Array(n);
  for (let i = 0; i < n; i++) out[i] = Math.floor(rand() * n);
  return out.sort();
}

/** A random split of 0..n-1 into a fit half (floor(n/2) indices) and a held-out half, each ascending. */
export function splitHalves(n: number, rand: () => number): { fit: Int32Array; held: Int32Array } {
  const p = randomPermutation(n, rand);
  const h = Math.floor(n / 2);
  return { fit: p.slice(0, h).sort(), held: p.slice(h).sort() };
}

/** Least-squares line y ≈ intercept + slope·x; slope 0 when x is constant. */
export function linearFit(x: ArrayLike<number>, y: ArrayLike<number>): { intercept: number; slope: number } {
  const n = checkSameLength('linearFit', x, y);
  if (n === 0) throw new ArgumentError('linearFit: no points');
  const { mx, my, sxx, sxy } = centredSums(x, y, n);
  const slope = sxx > 0 ? sxy / sxx : 0;
  return { intercept: my - slope * mx, slope };
}

/** Mean and standard deviation (population, ddof = 0) of finite values; NaN for none. */
export function meanStd(values: ArrayLike<number>): { mean: number; std: number } {
  let s = 0;
  let c = 0;
  for (let i = 0; i < values.length; i++)
    if (Number.isFinite(values[i])) {
      s += values[i];
      c++;
    }
  if (c === 0) return { mean: Number.NaN, std: Number.NaN };
  const mean = s / c;
  let ss = 0;
  for (let i = 0; i < values.length; i++) if (Number.isFinite(values[i])) ss += (values[i] - mean) ** 2;
  return { mean, std: Math.sqrt(ss / c) };
}

/**
 * Permutation p-value of `observed` against a pooled null (`sortedNull` ascending, finite values):
 * (1 + #{null ≥ observed}) / (1 + size). NaN for a non-finite observation.
 */
export function pooledPValue(observed: number, sortedNull: Float64Array): number {
  if (!Number.isFinite(observed)) return Number.NaN;
  let lo = 0;
  let hi = sortedNull.length;
  while (lo < hi) {
    const mid = (lo + hi) >>> 1;
    if (sortedNull[mid] < observed) lo = mid + 1;
    else hi = mid;
  }
  return (1 + sortedNull.length - lo) / (1 + sortedNull.length);
}

/**
 * One-sample Kolmogorov–Smirnov test of `values` against U(0, 1): the statistic D and its asymptotic
 * p-value (Kolmogorov's distribution with Stephens' small-sample correction).
 */
export function ksUniform(values: ArrayLike<number>): { d: number; p: number } {
  const n = values.length;
  if (n === 0) throw new ArgumentError('ksUniform: no values');
  const u = Float64Array.from(values).sort();
  let d = 0;
  for (let i = 0; i < n; i++) d = Math.max(d, (i + 1) / n - u[i], u[i] - i / n);
  const sn = Math.sqrt(n);
  const lambda = (sn + 0.12 + 0.11 / sn) * d;
  let p = 0;
  for (let k = 1; k <= 100; k++) p += 2 * (k % 2 ? 1 : -1) * Math.exp(-2 * k * k * lambda * lambda);
  return { d, p: Math.max(0, Math.min(1, lambda < 0.3 ? 1 : p)) };
}

/**
 * x_i = In_i · Tn_c for every row i of `In` (N×d) with row c of `Tn` (M×d): the CLIP cosine of each image and
 * concept c when both matrices hold unit rows (reductions.normalizeRows).
 */
export function similarityColumn(In: Matrix, Tn: Matrix, c: number): Float64Array {
  const d = In.cols;
  if (Tn.cols !== d) throw new ShapeError(`image features have ${d} columns but text features ${Tn.cols}`);
  const x = new Float64Array(In.rows);
  const t = Tn.data.subarray(c * d, (c + 1) * d);
  const a = In.data;
  const d4 = d & ~3;
  for (let i = 0; i < In.rows; i++) {
    // four partial sums, so that the additions do not wait on each other
    let s0 = 0;
    let s1 = 0;
    let s2 = 0;
    let s3 = 0;
    const off = i * d;
    let j = 0;
    for (; j < d4; j += 4) {
      s0 += a[off + j] * t[j];
      s1 += a[off + j + 1] * t[j + 1];
      s2 += a[off + j + 2] * t[j + 2];
      s3 += a[off + j + 3] * t[j + 3];
    }
    for (; j < d; j++) s0 += a[off + j] * t[j];
    x[i] = s0 + s1 + s2 + s3;
  }
  return x;
}
