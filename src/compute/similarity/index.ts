/**
 * The fast similarity engine (see ./dispatch.ts). computeSimilarity and its types are public (src/index.ts); the
 * reuse helpers are for src/pipeline/trust.ts.
 */
export { checkMemoryBudget, DEFAULT_MEMORY_BUDGET } from '../memory-budget.js';
export { cosConceptNorms } from './_cos.js';
export type { SimilarityReuse } from './_kernels.js';
export { type PmiSoftmax, pmiSoftmaxRows } from './_pmi.js';
export { computeSimilarity, type SimilarityResult, type SimilarityRunOptions } from './dispatch.js';
