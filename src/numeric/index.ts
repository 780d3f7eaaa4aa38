/**
 * `clip-dissect/numeric`: the pure math users may want on its own (no I/O, no onnxruntime): the plain-loop
 * reference of every similarity function, CLIP image-text similarities, top-k, the Pearson test and the label
 * and evaluation metrics.
 */

export { ArgumentError, ClipDissectError, NonFiniteError, ShapeError } from './errors.js';
export {
  mean,
  rankOf,
  rocAuc,
  rowCosines,
  targetRanks,
  topKAccuracy,
  upperMedian,
} from './eval-metrics.js';
export { createMatrix, type Matrix, transpose } from './matrix.js';
export {
  type CosSimilarityCubedOptions,
  type RankReorderOptions,
  resolveSimilarityOptions,
  SIMILARITY_DEFAULTS,
  SIMILARITY_NAMES,
  type SimilarityName,
  type SimilarityOptionsMap,
  type SoftWpmiOptions,
  type WpmiOptions,
} from './similarity-options.js';
export {
  clipSimilarities,
  deadNeurons,
  type SimilarityInputs,
  similarityReference,
} from './similarity-reference.js';
export { type PearsonResult, pearson, pearsonPValue } from './stats.js';
export { columnTopK, topK } from './topk.js';
export {
  averagePrecision,
  correlation,
  cosine,
  f1,
  iou,
  type LabelMetrics,
  labelMetrics,
  METRIC_NAMES,
} from './trust-metrics.js';
