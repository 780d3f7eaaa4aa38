/**
 * Statistics for the weight analysis (paper Sec. 5): Pearson's correlation with its two-sided p-value, the
 * regularized incomplete beta function that p-value needs, and log Γ. Everything in float64.
 *
 * The p-value is scipy.stats.pearsonr's: under independence r follows Beta(n/2 − 1, n/2 − 1) on [−1, 1], so
 * p = 2·P(R ≥ |r|) = I_{1−r²}((n−2)/2, 1/2), the same number as the t-test with n − 2 degrees of freedom
 * (t = r·√((n−2)/(1−r²))). It is also returned as log10(p), which stays finite where p itself underflows to 0
 * (the paper's 2 million weights give p < 1e-300).
 */
import { ArgumentError } from './errors.js';

const LANCZOS = [
  0.99999999999980993, 676.5203681218851, -1259.1392167224028, 771.32342877765313, -176.61502916214059,
  12.507343278686905, -0.13857109526572012, 9.9843695780195716e-6, 1.5056327351493116e-7,
];

/** ln Γ(x) for x > 0 (Lanczos, g = 7, n = 9: about 15 significant digits). */
export function logGamma(x: number): number {
  if (!(x > 0)) throw new ArgumentError(`logGamma: x must be > 0 but got ${x}`);
  if (x < 0.5) return Math.log(Math.PI / Math.sin(Math.PI * x)) - logGamma(1 - x);
  const z = x - 1;
  let s = LANCZOS[0];
  for (let i = 1; i < 9; i++) s += LANCZOS[i] / (z + i);
  const t = z + 7.5;
  return 0.5 * Math.log(2 * Math.PI) + (z + 0.5) * Math.log(t) - t + Math.log(s);
}

/** ln B(a, b). */
function logBeta(a: number, b: number): number {
  return logGamma(a) + logGamma(b) - logGamma(a + b);
}

/** The continued fraction of I_x(a, b) (modified Lentz), valid for x < (a + 1)/(a + b + 2). */
function betaContinuedFraction(x: number, a: number, b: number): number {
  const TINY = 1e-300;
  const EPS = 1e-15;
  const qab = a + b;
  const qap = a + 1;
  const qam = a - 1;
  let c = 1;
  let d = 1 - (qab * x) / qap;
  if (Math.abs(d) < TINY) d = TINY;
  d = 1 / d;
  let h = d;
  // converges in O(√max(a, b)) steps
  const maxIter = 10000 + 20 * Math.ceil(Math.sqrt(Math.max(a, b)));
  for (let m = 1; m <= maxIter; m++) {
    const m2 = 2 * m;
    let aa = (m * (b - m) * x) / ((qam + m2) * (a + m2));
    d = 1 + aa * d;
    if (Math.abs(d) < TINY) d = TINY;
    c = 1 + aa / c;
    if (Math.abs(c) < TINY) c = TINY;
    d = 1 / d;
    h *= d * c;
    aa = (-(a + m) * (qab + m) * x) / ((a + m2) * (qap + m2));
    d = 1 + aa * d;
    if (Math.abs(d) < TINY) d = TINY;
    c = 1 + aa / c;
    if (Math.abs(c) < TINY) c = TINY;
    d = 1 / d;
    const del = d * c;
    h *= del;
    if (Math.abs(del - 1) < EPS) return h;
  }
  return h;
}

/**
 * The regularized incomplete beta function I_x(a, b) = B(x; a, b) / B(a, b), for a, b > 0 and 0 ≤ x ≤ 1, and
 * its natural log (finite even where the value underflows).
 */
export function incompleteBetaLog(x: number, a: number, b: number): { value: number; log: number } {
  if (!(a > 0) || !(b > 0))
    throw new ArgumentError(`incompleteBeta: a and b must be > 0 but got a = ${a}, b = ${b}`);
  if (!(x >= 0 && x <= 1)) throw new ArgumentError(`incompleteBeta: x must be in [0, 1] but got ${x}`);
  if (x === 0) return { value: 0, log: Number.NEGATIVE_INFINITY };
  if (x === 1) return { value: 1, log: 0 };
  // ln of x^a (1−x)^b / B(a, b)
  const front = a * Math.log(x) + b * Math.log1p(-x) - logBeta(a, b);
  if (x < (a + 1) / (a + b + 2)) {
    const log = front + Math.log(betaContinuedFraction(x, a, b) / a);
    return { value: Math.exp(log), log };
  }
  // symmetry: I_x(a, b) = 1 − I_{1−x}(b, a)
  const q = Math.exp(front + Math.log(betaContinuedFraction(1 - x, b, a) / b));
  const value = 1 - q;
  return { value, log: Math.log1p(-q) };
}

/** I_x(a, b), the regularized incomplete beta function. */
export function incompleteBeta(x: number, a: number, b: number): number {
  return incompleteBetaLog(x, a, b).value;
}

export interface PearsonResult {
  /** Pearson's r; NaN when either input is constant. */
  r: number;
  /** Two-sided p-value of r under independence (scipy.stats.pearsonr); may underflow to 0. */
  p: number;
  /** log10(p): finite where p underflows; -Infinity when |r| = 1. */
  log10p: number;
  /** Number of pairs. */
  n: number;
}

/** Two-sided p-value of a Pearson r over n pairs, and its log10. */
export function pearsonPValue(r: number, n: number): { p: number; log10p: number } {
  if (!Number.isInteger(n) || n < 2) throw new ArgumentError(`pearsonPValue: n must be >= 2 but got ${n}`);
  if (Number.isNaN(r)) return { p: Number.NaN, log10p: Number.NaN };
  if (n === 2) return { p: 1, log10p: 0 };
  const ar = Math.min(1, Math.abs(r));
  if (ar === 1) return { p: 0, log10p: Number.NEGATIVE_INFINITY };
  const { value, log } = incompleteBetaLog((1 - ar) * (1 + ar), (n - 2) / 2, 0.5);
  return { p: Math.min(1, value), log10p: Math.min(0, log / Math.LN10) };
}

/** Means of x[0..n) and y[0..n) and the centred sums Σdx², Σdy², Σdx·dy (two passes, float64). */
export function centredSums(x: ArrayLike<number>, y: ArrayLike<number>, n: number) {
  let mx = 0;
  let my = 0;
  for (let i = 0; i < n; i++) {
    mx += x[i];
    my += y[i];
  }
  mx /= n;
  my /= n;
  let sxx = 0;
  let syy = 0;
  let sxy = 0;
  for (let i = 0; i < n; i++) {
    const dx = x[i] - mx;
    const dy = y[i] - my;
    sxx += dx * dx;
    syy += dy * dy;
    sxy += dx * dy;
  }
  return { mx, my, sxx, syy, sxy };
}

/**
 * Pearson's correlation of x[0..n) and y[0..n) with its two-sided p-value, as scipy.stats.pearsonr computes
 * them (centred sums in float64, r clipped to [−1, 1]). `n` defaults to the inputs' length.
 */
export function pearson(x: ArrayLike<number>, y: ArrayLike<number>, n = x.length): PearsonResult {
  if (x.length < n || y.length < n)
    throw new ArgumentError(
      `pearson: x and y must hold at least n = ${n} values but have ${x.length} and ${y.length}`,
    );
  if (n < 2) throw new ArgumentError(`pearson: at least 2 pairs are needed but got ${n}`);
  const { sxx, syy, sxy } = centredSums(x, y, n);
  if (sxx === 0 || syy === 0 || !Number.isFinite(sxx + syy + sxy))
    return { r: Number.NaN, p: Number.NaN, log10p: Number.NaN, n };
  const r = Math.max(-1, Math.min(1, sxy / Math.sqrt(sxx * syy)));
  return { r, ...pearsonPValue(r, n), n };
}
