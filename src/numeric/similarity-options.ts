import { ArgumentError, formatChoices } from './errors.js';

/** The five similarity functions of CLIP-Dissect (paper Sec. 3.1 and Appendix A.1). */
export const SIMILARITY_NAMES = [
  'soft_wpmi',
  'wpmi',
  'rank_reorder',
  'cos_similarity',
  'cos_similarity_cubed',
] as const;
export type SimilarityName = (typeof SIMILARITY_NAMES)[number];

/** SoftWPMI (the paper's default). */
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

/** WPMI. */
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

/** Rank reorder. */
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

/** Cosine similarity (no options). */
export type CosSimilarityOptions = Record<string, never>;

/** Cosine similarity of cubed, centred vectors. */
export interface CosSimilarityCubedOptions {
  /** Lower clip of each column norm. Default 1e-3. */
  minNorm: number;
}

export interface SimilarityOptionsMap {
  soft_wpmi: SoftWpmiOptions;
  wpmi: WpmiOptions;
  rank_reorder: RankReorderOptions;
  cos_similarity: CosSimilarityOptions;
  cos_similarity_cubed: CosSimilarityCubedOptions;
}

export const SIMILARITY_DEFAULTS: { readonly [F in SimilarityName]: Readonly<SimilarityOptionsMap[F]> } = {
  soft_wpmi: { topK: 100, a: 10, lambda: 1, minProb: 1e-7, pStart: 0.998, pEnd: 0.97 },
  wpmi: { topK: 28, a: 2, lambda: 0.6, minProb: 1e-7 },
  rank_reorder: { topFraction: 0.05, p: 3, scaleP: 0.5, seed: 0 },
  cos_similarity: {},
  cos_similarity_cubed: { minNorm: 1e-3 },
};

/** Throws unless `name` is one of the five functions. */
export function checkSimilarityName(name: string): SimilarityName {
  if ((SIMILARITY_NAMES as readonly string[]).includes(name)) return name as SimilarityName;
  throw new ArgumentError(`'similarity' must be ${formatChoices(SIMILARITY_NAMES)} but got '${name}'`);
}

/** Where a CLI user sets the option: every hyperparameter is a `--param KEY=VALUE` flag. */
const cliHint = (key: string) => ` (CLI: --param ${key}=…)`;

function checkNumber(fn: string, key: string, v: unknown, ok: (x: number) => boolean, what: string): void {
  if (typeof v !== 'number' || !Number.isFinite(v) || !ok(v)) {
    throw new ArgumentError(`${fn}: '${key}' must be ${what} but got ${String(v)}${cliHint(key)}`, {
      option: key,
    });
  }
}

/**
 * Defaults spread first, then the caller's options; unknown keys and out-of-range values are errors.
 * `nImages` is the number of probe images, used to check topK / topFraction.
 */
export function resolveSimilarityOptions<F extends SimilarityName>(
  name: F,
  options: Partial<SimilarityOptionsMap[F]> | undefined,
  nImages: number,
): SimilarityOptionsMap[F] {
  const defaults = SIMILARITY_DEFAULTS[name] as SimilarityOptionsMap[F];
  const known = Object.keys(defaults);
  for (const key of Object.keys(options ?? {})) {
    if (!known.includes(key)) {
      const valid = known.length ? `valid options are ${formatChoices(known)}` : 'it takes no options';
      throw new ArgumentError(`${name}: unknown option '${key}'; ${valid}`);
    }
  }
  const o = { ...defaults, ...(options ?? {}) } as Record<string, number>;
  const int = (x: number) => Number.isInteger(x);
  switch (name) {
    case 'soft_wpmi':
    case 'wpmi':
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
      if (name === 'soft_wpmi') {
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
      } else if (o.minProb === 0) {
        throw new ArgumentError(
          `${name}: 'minProb' must be > 0 (log of a zero probability is -Infinity) but got 0${cliHint('minProb')}`,
        );
      }
      break;
    case 'rank_reorder': {
      checkNumber(name, 'topFraction', o.topFraction, (x) => x > 0 && x <= 1, 'in (0, 1]');
      const topN = Math.floor(nImages * o.topFraction);
      if (topN < 1) {
        throw new ArgumentError(
          `${name}: 'topFraction' × nImages must select at least one image but floor(${nImages} × ${o.topFraction}) = ${topN}`,
        );
      }
      checkNumber(name, 'p', o.p, (x) => x > 0, 'a positive number');
      checkNumber(name, 'scaleP', o.scaleP, () => true, 'a finite number');
      checkNumber(name, 'seed', o.seed, (x) => int(x) && x >= 0, 'a non-negative integer');
      break;
    }
    case 'cos_similarity_cubed':
      checkNumber(name, 'minNorm', o.minNorm, (x) => x > 0, 'a positive number');
      break;
  }
  return o as unknown as SimilarityOptionsMap[F];
}

/** The rank probabilities of SoftWPMI: p_r = pStart − (r/topK)·(pStart − pEnd), r = 0..topK−1. */
export function rankProbabilities(o: Pick<SoftWpmiOptions, 'topK' | 'pStart' | 'pEnd'>): Float64Array {
  const p = new Float64Array(o.topK);
  for (let r = 0; r < o.topK; r++) p[r] = o.pStart - (r / o.topK) * (o.pStart - o.pEnd);
  return p;
}
