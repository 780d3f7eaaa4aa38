/**
 * The registry of similarity functions: name → definition (./_define.ts). Adding a function is a file in this
 * folder and a line here; the names, defaults, option checks, reference, engine dispatch and CLI help follow.
 * Internal: similarity-options.ts and similarity-reference.ts re-export the public names.
 */
import type { OptionsOf, SimilarityDefinition } from './_define.js';
import { cosSimilarity } from './cos-similarity.js';
import { cosSimilarityCubed } from './cos-similarity-cubed.js';
import { rankReorder } from './rank-reorder.js';
import { softWpmi } from './soft-wpmi.js';
import { wpmi } from './wpmi.js';

/** Every similarity function, in the order help texts list them. */
export const SIMILARITY_FUNCTIONS = {
  soft_wpmi: softWpmi,
  wpmi,
  rank_reorder: rankReorder,
  cos_similarity: cosSimilarity,
  cos_similarity_cubed: cosSimilarityCubed,
} as const;

export type SimilarityName = keyof typeof SIMILARITY_FUNCTIONS;

/** Each function's options. */
export type SimilarityOptionsMap = { [F in SimilarityName]: OptionsOf<(typeof SIMILARITY_FUNCTIONS)[F]> };

/** A function's definition, typed by its name. */
export function similarityDefinition<F extends SimilarityName>(
  name: F,
): SimilarityDefinition<SimilarityOptionsMap[F]> {
  return SIMILARITY_FUNCTIONS[name] as unknown as SimilarityDefinition<SimilarityOptionsMap[F]>;
}

/**
 * A function's definition for code that handles any function by its name at run time (trust, sanity):
 * options as a record of numbers.
 */
export function anySimilarityDefinition(name: SimilarityName): SimilarityDefinition<Record<string, number>> {
  return SIMILARITY_FUNCTIONS[name] as unknown as SimilarityDefinition<Record<string, number>>;
}
