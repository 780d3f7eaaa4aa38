/**
 * The similarity functions' names, options and option checks. Each function is defined once, in
 * ./similarity-functions/ (its file and a line of that folder's registry); this module is their public face.
 */
import { ArgumentError, formatChoices } from './errors.js';
import {
  SIMILARITY_FUNCTIONS,
  type SimilarityName,
  type SimilarityOptionsMap,
  similarityDefinition,
} from './similarity-functions/index.js';

export type { CosSimilarityOptions } from './similarity-functions/cos-similarity.js';
export type { CosSimilarityCubedOptions } from './similarity-functions/cos-similarity-cubed.js';
export type { SimilarityName, SimilarityOptionsMap } from './similarity-functions/index.js';
export type { RankReorderOptions } from './similarity-functions/rank-reorder.js';
export { rankProbabilities, type SoftWpmiOptions } from './similarity-functions/soft-wpmi.js';
export type { WpmiOptions } from './similarity-functions/wpmi.js';

/** The five similarity functions of CLIP-Dissect (paper Sec. 3.1 and Appendix A.1). */
export const SIMILARITY_NAMES = Object.keys(SIMILARITY_FUNCTIONS) as readonly SimilarityName[];

/** The function used when none is named: SoftWPMI, the paper's default. */
export const DEFAULT_SIMILARITY: SimilarityName = 'soft_wpmi';

export const SIMILARITY_DEFAULTS: { readonly [F in SimilarityName]: Readonly<SimilarityOptionsMap[F]> } =
  Object.fromEntries(SIMILARITY_NAMES.map((f) => [f, similarityDefinition(f).defaults])) as never;

/** One line per function: what it computes (the CLI's help and the docs). */
export const SIMILARITY_DESCRIPTIONS: { readonly [F in SimilarityName]: string } = Object.fromEntries(
  SIMILARITY_NAMES.map((f) => [f, similarityDefinition(f).description]),
) as never;

/** Throws unless `name` is one of the functions. */
export function checkSimilarityName(name: string): SimilarityName {
  if ((SIMILARITY_NAMES as readonly string[]).includes(name)) return name as SimilarityName;
  throw new ArgumentError(`'similarity' must be ${formatChoices(SIMILARITY_NAMES)} but got '${name}'`);
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
  const def = similarityDefinition(name);
  const known = Object.keys(def.defaults);
  for (const key of Object.keys(options ?? {})) {
    if (!known.includes(key)) {
      const valid = known.length ? `valid options are ${formatChoices(known)}` : 'it takes no options';
      throw new ArgumentError(`${name}: unknown option '${key}'; ${valid}`);
    }
  }
  const o = { ...def.defaults, ...(options ?? {}) } as SimilarityOptionsMap[F];
  def.check(o, nImages, name);
  return o;
}
