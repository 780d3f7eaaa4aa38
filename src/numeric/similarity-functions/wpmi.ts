/** WPMI (paper Sec. 3.1, Appendix A.1): PMI over each neuron's top images, every image weighted 1. */
import { ArgumentError } from '../errors.js';
import { cliHint, type SimilarityDefinition } from './_define.js';
import { clipSimilarities } from './_math.js';
import { checkPmiOptions, pmiForRows, pmiScores } from './_pmi.js';

export interface WpmiOptions {
  /** Default 28. */
  topK: number;
  /** Default 2. */
  a: number;
  /** Default 0.6. */
  lambda: number;
  /** Default 1e-7. */
  minProb: number;
}

/** Each image's factor minProb + 1·Q. */
function factors(o: WpmiOptions): { p: Float64Array; c: Float64Array } {
  return { p: new Float64Array(o.topK).fill(1), c: new Float64Array(o.topK).fill(o.minProb) };
}

export const wpmi: SimilarityDefinition<WpmiOptions> = {
  description: "weighted PMI over each neuron's top images",
  defaults: { topK: 28, a: 2, lambda: 0.6, minProb: 1e-7 },
  check(o, nImages, name) {
    checkPmiOptions(name, o, nImages);
    if (o.minProb === 0) {
      throw new ArgumentError(
        `${name}: 'minProb' must be > 0 (log of a zero probability is -Infinity) but got 0${cliHint('minProb')}`,
      );
    }
  },
  reference(inp, o) {
    const { p, c } = factors(o);
    const P = clipSimilarities(inp.imageFeatures, inp.textFeatures);
    return pmiScores(P, inp.activations, o.topK, o.a, o.lambda, p, c);
  },
  kernel: (o) => ({ kind: 'pmi', topK: o.topK, a: o.a, lambda: o.lambda, ...factors(o) }),
  forRows: pmiForRows,
};
