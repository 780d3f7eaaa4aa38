/** What SoftWPMI and WPMI share: the option checks and the reference math. Internal. */
import { ArgumentError } from '../errors.js';
import { createMatrix, type Matrix } from '../matrix.js';
import { logSumExp, softmaxRows } from '../reductions.js';
import { columnTopK } from '../topk.js';
import { checkNumber, type SimilarityDefinition } from './_define.js';
import { clipSimilarities } from './_math.js';

/** The options both functions take. */
export interface PmiOptions {
  topK: number;
  a: number;
  lambda: number;
  minProb: number;
}

/**
 * The reference, the engine kernel and the subset scaling of a function on the pmi kernel, given how its
 * options make the rank factors p and c.
 */
export function pmiParts<O extends PmiOptions>(
  factors: (o: O) => { p: Float64Array; c: Float64Array },
): Pick<SimilarityDefinition<O>, 'reference' | 'kernel' | 'forRows' | 'forSmallProbe'> {
  return {
    reference(inp, o) {
      const { p, c } = factors(o);
      const P = clipSimilarities(inp.imageFeatures, inp.textFeatures);
      return pmiScores(P, inp.activations, o.topK, o.a, o.lambda, p, c);
    },
    kernel: (o) => ({ kind: 'pmi', topK: o.topK, a: o.a, lambda: o.lambda, ...factors(o) }),
    forRows: pmiForRows,
    forSmallProbe: (o, nImages) => ({ ...o, topK: Math.min(o.topK, Math.max(1, Math.floor(nImages / 2))) }),
  };
}

/** Checks topK (<= nImages), a, lambda and minProb. */
/** topK scaled with the number of images (at least 1, at most `rows`). */
export function pmiForRows<O extends { topK: number }>(o: O, rows: number, nImages: number): O {
  if (rows === nImages) return o;
  return { ...o, topK: Math.max(1, Math.min(rows, Math.round((o.topK * rows) / nImages))) };
}

export function checkPmiOptions(name: string, o: PmiOptions, nImages: number): void {
  const int = (x: number) => Number.isInteger(x);
  checkNumber(name, 'topK', o.topK, (x) => int(x) && x >= 1, 'a positive integer');
  if (o.topK > nImages) {
    throw new ArgumentError(`${name}: 'topK' must be <= nImages (${nImages}) but got ${o.topK}`, {
      option: 'topK',
    });
  }
  // a is the softmax temperature: 0 makes p(t|x) uniform (every concept ties), a negative one inverts it
  checkNumber(name, 'a', o.a, (x) => x > 0, 'a positive number (the softmax temperature)');
  // lambda weighs the prior that is subtracted (paper eq. 2-3); a negative one rewards common concepts
  checkNumber(name, 'lambda', o.lambda, (x) => x >= 0, '>= 0 (the weight of the subtracted prior)');
  checkNumber(name, 'minProb', o.minProb, (x) => x >= 0 && x < 1, 'in [0, 1)');
}

/** S[k,m] = Σ_r log(c_r + p_r·Q[i_r,m]) with Q = softmax(a·P), then S − λ·prior. */
export function pmiScores(
  P: Matrix,
  A: Matrix,
  topK: number,
  a: number,
  lambda: number,
  p: Float64Array,
  c: Float64Array,
): Matrix {
  const m = P.cols;
  const k = A.cols;
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
