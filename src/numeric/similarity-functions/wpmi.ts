/** WPMI (paper Sec. 3.1, Appendix A.1): PMI over each neuron's top images, every image weighted 1. */
import { ArgumentError } from '../errors.js';
import { cliHint, type SimilarityDefinition } from './_define.js';
import { checkPmiOptions, pmiParts } from './_pmi.js';

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
  ...pmiParts(factors),
};
