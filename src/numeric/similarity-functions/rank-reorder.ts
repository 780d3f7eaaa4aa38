/** Rank reorder: how far each concept's order of a neuron's top images is from their order by activation. */
import { ArgumentError } from '../errors.js';
import { createMatrix } from '../matrix.js';
import { mulberry32, randomPermutation } from '../random.js';
import { columnTopK } from '../topk.js';
import { checkNumber, type SimilarityDefinition } from './_define.js';
import { clipSimilarities } from './_math.js';

export interface RankReorderOptions {
  /** Fraction of the probe images (the most activating ones) used per neuron: topN = floor(N·topFraction). Default 0.05. */
  topFraction: number;
  /** Exponent of the error. Default 3. */
  p: number;
  /** Exponent of the mean-similarity scaling. Default 0.5. */
  scaleP: number;
  /** Seed of the 5 random permutations of the per-neuron baseline. Default 0. */
  seed: number;
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

export const rankReorder: SimilarityDefinition<RankReorderOptions> = {
  description: "order of each neuron's top images by CLIP similarity against their order by activation",
  defaults: { topFraction: 0.05, p: 3, scaleP: 0.5, seed: 0 },
  check(o, nImages, name) {
    checkNumber(name, 'topFraction', o.topFraction, (x) => x > 0 && x <= 1, 'in (0, 1]');
    const topN = Math.floor(nImages * o.topFraction);
    if (topN < 1) {
      throw new ArgumentError(
        `${name}: 'topFraction' × nImages must select at least one image but floor(${nImages} × ${o.topFraction}) = ${topN}`,
      );
    }
    checkNumber(name, 'p', o.p, (x) => x > 0, 'a positive number');
    checkNumber(name, 'scaleP', o.scaleP, () => true, 'a finite number');
    checkNumber(name, 'seed', o.seed, (x) => Number.isInteger(x) && x >= 0, 'a non-negative integer');
  },
  reference(inp, o) {
    const n = inp.imageFeatures.rows;
    const m = inp.textFeatures.rows;
    const A = inp.activations;
    const k = A.cols;
    const topN = Math.floor(n * o.topFraction);
    const P = clipSimilarities(inp.imageFeatures, inp.textFeatures);
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
  },
  // scales by itself, but keeps at least one image
  forRows: (o, rows) => (Math.floor(rows * o.topFraction) < 1 ? { ...o, topFraction: 1 / rows } : o),
  forSmallProbe: (o, nImages) =>
    Math.floor(nImages * o.topFraction) < 1 ? { ...o, topFraction: 1 / nImages } : o,
  kernel: (o) => ({
    kind: 'rank_reorder',
    topFraction: o.topFraction,
    p: o.p,
    scaleP: o.scaleP,
    seed: o.seed,
  }),
};
