/** Cosine similarity of each neuron's activations and each concept's CLIP similarities over the probe images. */
import type { SimilarityDefinition } from './_define.js';
import { clipSimilarities, matmulTransA, normalizeColumns } from './_math.js';

/** Cosine similarity (no options). */
export type CosSimilarityOptions = Record<string, never>;

export const cosSimilarity: SimilarityDefinition<CosSimilarityOptions> = {
  description: 'cosine of the activations and the CLIP similarities over the probe images',
  defaults: {},
  check() {},
  reference(inp) {
    const P = clipSimilarities(inp.imageFeatures, inp.textFeatures);
    return matmulTransA(normalizeColumns(inp.activations, 0), normalizeColumns(P, 0));
  },
  kernel: () => ({ kind: 'cos' }),
};
