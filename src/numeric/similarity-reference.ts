/**
 * Plain TypeScript reference implementations of the five similarity functions, written directly from
 * the formulas of the paper's Appendix A.1 and the official code's semantics. They materialise every
 * matrix and accumulate in float64: slow (O(N·M·d) matmul in JS) but simple to check. The fast engine
 * (src/compute/) is tested against these.
 */
import { ShapeError } from './errors.js';
import { createMatrix, type Matrix } from './matrix.js';
import { mulberry32, randomPermutation } from './random.js';
import { logSumExp, matmulTransB, normalizeRows, softmaxRows } from './reductions.js';
import {
  type CosSimilarityCubedOptions,
  type RankReorderOptions,
  rankProbabilities,
  resolveSimilarityOptions,
  type SimilarityName,
  type SimilarityOptionsMap,
  type SoftWpmiOptions,
  type WpmiOptions,
} from './similarity-options.js';
import { columnTopK } from './topk.js';

export interface SimilarityInputs {
  /** CLIP image features, N×d (rows need not be normalised). */
  imageFeatures: Matrix;
  /** CLIP text features, M×d. */
  textFeatures: Matrix;
  /** Target activations of one layer, N×K. */
  activations: Matrix;
}

/** Checks that the three matrices fit together; returns N, M, d, K. */
export function checkInputShapes(inp: SimilarityInputs): { n: number; m: number; d: number; k: number } {
  const { imageFeatures: I, textFeatures: T, activations: A } = inp;
  if (I.cols !== T.cols) {
    throw new ShapeError(
      `image features have dimension ${I.cols} (${I.rows}×${I.cols}) but text features have ${T.cols} (${T.rows}×${T.cols}); both must come from the same CLIP model`,
    );
  }
  if (I.rows !== A.rows) {
    throw new ShapeError(
      `image features have ${I.rows} rows (${I.rows}×${I.cols}) but activations have ${A.rows} (${A.rows}×${A.cols}); both need one row per probe image, in the same order`,
    );
  }
  if (A.cols < 1) throw new ShapeError(`activations have no neurons (${A.rows}×${A.cols})`);
  if (T.rows < 1) throw new ShapeError(`text features have no concepts (${T.rows}×${T.cols})`);
  if (I.rows < 1) throw new ShapeError(`there are no probe images (${I.rows}×${I.cols})`);
  return { n: I.rows, m: T.rows, d: I.cols, k: A.cols };
}

/**
 * Neurons whose activation is the same on every probe image (e.g. dead ReLU units), 1 = dead.
 * Their scores are defined (not NaN) but meaningless; outputs flag them.
 */
export function deadNeurons(activations: Matrix): Uint8Array {
  const { rows, cols, data } = activations;
  const min = new Float32Array(cols).fill(Number.POSITIVE_INFINITY);
  const max = new Float32Array(cols).fill(Number.NEGATIVE_INFINITY);
  for (let i = 0; i < rows; i++) {
    const off = i * cols;
    for (let j = 0; j < cols; j++) {
      const v = data[off + j];
      if (v < min[j]) min[j] = v;
      if (v > max[j]) max[j] = v;
    }
  }
  const dead = new Uint8Array(cols);
  for (let j = 0; j < cols; j++) dead[j] = max[j] === min[j] || !(max[j] >= min[j]) ? 1 : 0;
  return dead;
}

/** P = normalise(I)·normalise(T)ᵀ, N×M. */
export function clipSimilarities(imageFeatures: Matrix, textFeatures: Matrix): Matrix {
  return matmulTransB(normalizeRows(imageFeatures), normalizeRows(textFeatures));
}

/** Shared by SoftWPMI and WPMI: S[k,m] = Σ_r log(c_r + p_r·Q[i_r,m]), then S − λ·prior. */
function pmiScores(
  P: Matrix,
  A: Matrix,
  topK: number,
  a: number,
  lambda: number,
  p: Float64Array,
  c: Float64Array,
) {
  const n = P.rows;
  const m = P.cols;
  const k = A.cols;
  void n;
  const Q = softmaxRows(P, a);
  const inds = columnTopK(A, topK);
  const S = new Float64Array(k * m);
  for (let j = 0; j < k; j++) {
    for (let r = 0; r < topK; r++) {
      const qoff = inds[j * topK + r] * m;
      const pr = p[r];
      const cr = c[r];
      for (let t = 0; t < m; t++) S[j * m + t] += Math.log(cr + pr * Q.data[qoff + t]);
    }
  }
  const logK = Math.log(k);
  const out = createMatrix(k, m);
  for (let t = 0; t < m; t++) {
    const prior = logSumExp(S, k, t, m) - logK;
    for (let j = 0; j < k; j++) out.data[j * m + t] = S[j * m + t] - lambda * prior;
  }
  return out;
}

function softWpmiReference(inp: SimilarityInputs, options?: Partial<SoftWpmiOptions>): Matrix {
  const { n } = checkInputShapes(inp);
  const o = resolveSimilarityOptions('soft_wpmi', options, n);
  const p = rankProbabilities(o);
  // 1 + p(Q − 1) + minProb = (1 − p + minProb) + p·Q
  const c = p.map((pr) => 1 - pr + o.minProb);
  return pmiScores(
    clipSimilarities(inp.imageFeatures, inp.textFeatures),
    inp.activations,
    o.topK,
    o.a,
    o.lambda,
    p,
    c,
  );
}

function wpmiReference(inp: SimilarityInputs, options?: Partial<WpmiOptions>): Matrix {
  const { n } = checkInputShapes(inp);
  const o = resolveSimilarityOptions('wpmi', options, n);
  const p = new Float64Array(o.topK).fill(1);
  const c = new Float64Array(o.topK).fill(o.minProb);
  return pmiScores(
    clipSimilarities(inp.imageFeatures, inp.textFeatures),
    inp.activations,
    o.topK,
    o.a,
    o.lambda,
    p,
    c,
  );
}

/** A per-neuron seed, so a neuron's baseline does not depend on which other neurons are scored. */
export function neuronSeed(seed: number, neuron: number): number {
  return (Math.imul(seed ^ 0x5bd1e995, 0x9e3779b1) ^ Math.imul(neuron + 1, 0x85ebca6b)) >>> 0;
}

/**
 * rank_reorder's per-neuron baseline: mean |v_asc − v_asc[perm_j]|^p over 5 seeded random permutations.
 * `vDesc` holds the neuron's top-n activations in descending order.
 */
export function rankReorderBaseline(vDesc: Float64Array, p: number, seed: number, neuron: number): number {
  const n = vDesc.length;
  const rand = mulberry32(neuronSeed(seed, neuron));
  let sum = 0;
  for (let rep = 0; rep < 5; rep++) {
    const perm = randomPermutation(n, rand);
    for (let i = 0; i < n; i++) sum += Math.abs(vDesc[n - 1 - i] - vDesc[n - 1 - perm[i]]) ** p;
  }
  return sum / (5 * n);
}

function rankReorderReference(inp: SimilarityInputs, options?: Partial<RankReorderOptions>): Matrix {
  const { n, m, k } = checkInputShapes(inp);
  const o = resolveSimilarityOptions('rank_reorder', options, n);
  const topN = Math.floor(n * o.topFraction);
  const P = clipSimilarities(inp.imageFeatures, inp.textFeatures);
  const A = inp.activations;
  const inds = columnTopK(A, topN);
  const out = createMatrix(k, m);
  const v = new Float64Array(topN);
  const c = new Float64Array(topN);
  const order = new Array<number>(topN);
  for (let j = 0; j < k; j++) {
    for (let r = 0; r < topN; r++) v[r] = A.data[inds[j * topN + r] * k + j];
    const baseline = rankReorderBaseline(v, o.p, o.seed, j);
    for (let t = 0; t < m; t++) {
      let mean = 0;
      for (let r = 0; r < topN; r++) {
        c[r] = P.data[inds[j * topN + r] * m + t];
        mean += c[r];
        order[r] = r;
      }
      mean /= topN;
      // descending by c, ties by position: the i-th largest c receives the i-th largest v
      order.sort((x, y) => c[y] - c[x] || x - y);
      let err = 0;
      for (let rank = 0; rank < topN; rank++) err += Math.abs(v[order[rank]] - v[rank]) ** o.p;
      err /= topN;
      // a dead neuron (all v equal) has err = 0 and baseline = 0: define its error as 0
      const e = err === 0 ? 0 : err / baseline / mean ** o.scaleP;
      out.data[j * m + t] = -e;
    }
  }
  return out;
}

/** Columns of `x` (rows×cols) scaled to unit L2 norm, the norm clipped below at `minNorm` (0 = no clip; zero columns stay zero). */
function normalizeColumns(x: Matrix, minNorm: number): Matrix {
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
function matmulTransA(x: Matrix, y: Matrix): Matrix {
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

function cosSimilarityReference(inp: SimilarityInputs): Matrix {
  checkInputShapes(inp);
  const P = clipSimilarities(inp.imageFeatures, inp.textFeatures);
  return matmulTransA(normalizeColumns(inp.activations, 0), normalizeColumns(P, 0));
}

function centerCube(x: Matrix): Matrix {
  const { rows, cols, data } = x;
  const mean = new Float64Array(cols);
  for (let i = 0; i < rows; i++) for (let j = 0; j < cols; j++) mean[j] += data[i * cols + j];
  for (let j = 0; j < cols; j++) mean[j] /= rows;
  const out = new Float32Array(rows * cols);
  for (let i = 0; i < rows; i++)
    for (let j = 0; j < cols; j++) out[i * cols + j] = (data[i * cols + j] - mean[j]) ** 3;
  return { rows, cols, data: out };
}

function cosSimilarityCubedReference(
  inp: SimilarityInputs,
  options?: Partial<CosSimilarityCubedOptions>,
): Matrix {
  const { n } = checkInputShapes(inp);
  const o = resolveSimilarityOptions('cos_similarity_cubed', options, n);
  const P = clipSimilarities(inp.imageFeatures, inp.textFeatures);
  return matmulTransA(
    normalizeColumns(centerCube(inp.activations), o.minNorm),
    normalizeColumns(centerCube(P), o.minNorm),
  );
}

/** Dispatch by name: the full K×M score matrix. */
export function similarityReference<F extends SimilarityName>(
  name: F,
  inp: SimilarityInputs,
  options?: Partial<SimilarityOptionsMap[F]>,
): Matrix {
  switch (name) {
    case 'soft_wpmi':
      return softWpmiReference(inp, options as Partial<SoftWpmiOptions>);
    case 'wpmi':
      return wpmiReference(inp, options as Partial<WpmiOptions>);
    case 'rank_reorder':
      return rankReorderReference(inp, options as Partial<RankReorderOptions>);
    case 'cos_similarity':
      resolveSimilarityOptions('cos_similarity', options as never, inp.imageFeatures.rows);
      return cosSimilarityReference(inp);
    default:
      return cosSimilarityCubedReference(inp, options as Partial<CosSimilarityCubedOptions>);
  }
}
