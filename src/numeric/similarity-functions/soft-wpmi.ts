/** SoftWPMI, the paper's default (Sec. 3.1, Appendix A.1). */
import { ArgumentError } from '../errors.js';
import { checkNumber, cliHint, type SimilarityDefinition } from './_define.js';
import { checkPmiOptions, pmiParts } from './_pmi.js';

export interface SoftWpmiOptions {
  /** Images per neuron that enter the soft example set. Default 100. */
  topK: number;
  /** Softmax temperature multiplier on CLIP similarities. Default 10. */
  a: number;
  /** Weight of the prior term. Default 1. */
  lambda: number;
  /** Added inside every log. Default 1e-7. */
  minProb: number;
  /** p(x ∈ B_k) of the most activating image. Default 0.998. */
  pStart: number;
  /** p(x ∈ B_k) reached at rank topK (linear in rank). Default 0.97. */
  pEnd: number;
}

/** The rank probabilities of SoftWPMI: p_r = pStart − (r/topK)·(pStart − pEnd), r = 0..topK−1. */
export function rankProbabilities(o: Pick<SoftWpmiOptions, 'topK' | 'pStart' | 'pEnd'>): Float64Array {
  const p = new Float64Array(o.topK);
  for (let r = 0; r < o.topK; r++) p[r] = o.pStart - (r / o.topK) * (o.pStart - o.pEnd);
  return p;
}

/** Each rank's factor c_r + p_r·Q: 1 + p(Q − 1) + minProb = (1 − p + minProb) + p·Q. */
function factors(o: SoftWpmiOptions): { p: Float64Array; c: Float64Array } {
  const p = rankProbabilities(o);
  return { p, c: p.map((pr) => 1 - pr + o.minProb) };
}

export const softWpmi: SimilarityDefinition<SoftWpmiOptions> = {
  description: "soft weighted PMI over each neuron's top images (the paper's default)",
  defaults: { topK: 100, a: 10, lambda: 1, minProb: 1e-7, pStart: 0.998, pEnd: 0.97 },
  check(o, nImages, name) {
    checkPmiOptions(name, o, nImages);
    checkNumber(name, 'pStart', o.pStart, (x) => x > 0 && x <= 1, 'a probability in (0, 1]');
    checkNumber(name, 'pEnd', o.pEnd, (x) => x > 0 && x <= 1, 'a probability in (0, 1]');
    // the paper (Appendix A.1): p(x ∈ B_k) decreases linearly from the most activating image to rank topK
    if (o.pEnd > o.pStart) {
      throw new ArgumentError(
        `${name}: 'pEnd' must be <= 'pStart' (${o.pStart}) but got ${o.pEnd}: p(x ∈ B_k) decreases from pStart (the most activating image) to pEnd (rank topK)${cliHint('pEnd')}`,
      );
    }
    if (o.minProb === 0 && Math.max(o.pStart, o.pEnd) === 1) {
      throw new ArgumentError(
        `${name}: 'minProb' must be > 0 when a rank probability reaches 1 (pStart ${o.pStart}, pEnd ${o.pEnd}): log(0) is -Infinity${cliHint('minProb')}`,
      );
    }
  },
  ...pmiParts(factors),
};
