/**
 * clip-dissect: label every neuron of a vision network with the concept that CLIP sees in its most
 * activating images (CLIP-Dissect, Oikarinen & Weng, ICLR 2023).
 *
 * The public API. Files whose names start with `_` are internal.
 */

export {
  computeSimilarity,
  type SimilarityResult,
  type SimilarityRunOptions,
} from './compute/similarity-engine.js';
export {
  BUILTIN_CONCEPT_NAMES,
  BUILTIN_CONCEPT_SETS,
  defaultCacheDir,
  type LoadConceptsOptions,
  loadConceptSet,
} from './data/builtin-concepts.js';
export { type ConceptSet, ConceptSetError, parseConcepts } from './data/concepts.js';
export { decodeImageRGB, type RGBImage, supportedImageFormats } from './data/decode.js';
export {
  LABELS_LAYOUTS_HELP,
  LabelsFileError,
  type LabelsLayout,
  type MethodLabels,
  parseClassNames,
  parseCsv,
  parseMethodLabels,
  readClassNames,
  readMethodLabels,
} from './data/labels-files.js';
export {
  CLIP_PREPROCESS,
  IMAGENET_PREPROCESS,
  type PreprocessConfig,
  preprocessImage,
  preprocessorConfigFromHF,
  preprocessShape,
  resizedSize,
} from './data/preprocess.js';
export {
  BUILTIN_PROBE_DATASETS,
  openProbeDataset,
  type ProbeDataset,
  ProbeDatasetError,
  type ProbeImage,
} from './data/probe-dataset.js';
export { assertRGBImage, RESAMPLE_FILTERS, type ResampleFilter, resizeRGB } from './data/resize.js';
export { writeFileAtomic } from './io/atomic.js';
export {
  encodeNpy,
  matrixToNpy,
  type NpyArray,
  type NpyDType,
  NpyFormatError,
  npyToMatrix,
  parseNpy,
  readNpy,
  writeNpy,
} from './io/npy.js';
export type { ClipEncoder, EncodeTextOptions, TextEmbeddings } from './models/clip-encoder.js';
export {
  CLIP_DTYPES,
  CLIP_PREPROCESS_CHOICES,
  type ClipDtype,
  type ClipPreprocess,
  type ClipTowers,
  createOnnxClipEncoder,
  DEFAULT_CLIP_MODEL,
  OnnxClipEncoder,
  type OnnxClipEncoderOptions,
} from './models/onnx-clip-encoder.js';
export {
  createOnnxSentenceEncoder,
  DEFAULT_SENTENCE_MAX_LENGTH,
  DEFAULT_SENTENCE_MODEL,
  OnnxSentenceEncoder,
  type OnnxSentenceEncoderOptions,
  type SentenceDtype,
} from './models/onnx-sentence-encoder.js';
export {
  createOnnxTargetModel,
  OnnxTargetModel,
  type OnnxTargetModelOptions,
  type TokenLayout,
} from './models/onnx-target-model.js';
export type {
  EncodeSentencesOptions,
  SentenceEmbeddings,
  SentenceEncoder,
} from './models/sentence-encoder.js';
export {
  readId2Label,
  resolveTargetSource,
  TARGET_DTYPES,
  type TargetDtype,
  type TargetSource,
  type TargetSourceOptions,
} from './models/target-files.js';
export {
  type LayerInfo,
  type LayerKind,
  type LayerSelection,
  POOL_MODES,
  type PoolMode,
  resolveLayers,
  type TargetModel,
  TOKEN_MODES,
  type TokenMode,
  topLevelBlocks,
} from './models/target-model.js';
export { ArgumentError, ClipDissectError, NonFiniteError, ShapeError } from './numeric/errors.js';
export {
  mean,
  rankOf,
  rocAuc,
  rowCosines,
  targetRanks,
  topKAccuracy,
  upperMedian,
} from './numeric/eval-metrics.js';
export { createMatrix, type Matrix, transpose } from './numeric/matrix.js';
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
} from './numeric/similarity-options.js';
export {
  clipSimilarities,
  deadNeurons,
  type SimilarityInputs,
  similarityReference,
} from './numeric/similarity-reference.js';
export {
  incompleteBeta,
  incompleteBetaLog,
  logGamma,
  type PearsonResult,
  pearson,
  pearsonPValue,
} from './numeric/stats.js';
export { columnTopK, topK } from './numeric/topk.js';
export {
  averagePrecision,
  correlation,
  cosine,
  f1,
  iou,
  ksUniform,
  type LabelMetrics,
  labelMetrics,
  METRIC_NAMES,
  topFractionMask,
} from './numeric/trust-metrics.js';
export {
  type ActivationsResult,
  type ExtractActivationsOptions,
  extractActivations,
  type LayerActivations,
  type SkippedImage,
} from './pipeline/activations.js';
export {
  type ActivationsFilesOptions,
  type ActivationsFilesResult,
  runActivationsFiles,
} from './pipeline/activations-files.js';
export {
  type CacheStats,
  cacheKey,
  canonicalJson,
  FeatureCache,
  type FeatureCacheOptions,
  fileSha256,
  modelSha256s,
} from './pipeline/cache.js';
export {
  CACHE_KINDS,
  type CacheEntry,
  type CacheKind,
  type CleanOptions,
  type CleanResult,
  type CleanSelection,
  cleanCache,
  scanCache,
  type VerifyOptions,
  type VerifyResult,
  type VerifyStatus,
  verifyCache,
} from './pipeline/cache-admin.js';
export {
  type ComposeCandidate,
  type ComposeOptions,
  type ComposeResult,
  type ComposeUnit,
  composeCandidates,
  composeConcepts,
} from './pipeline/compose.js';
export {
  DEFAULT_CONCEPTS,
  DEFAULT_PROBE,
  type DissectChoice,
  type DissectHooks,
  type DissectOptions,
  type DissectResult,
  dissect,
} from './pipeline/dissect.js';
export {
  type AccuracyScores,
  type EvalOptions,
  type EvalResult,
  evalJson,
  evaluate,
  type MethodScores,
} from './pipeline/eval.js';
export { loadPreprocessConfig } from './pipeline/preprocess-config.js';
export {
  type RecoveryRow,
  runSanity,
  type SanityOptions,
  type SanityResult,
  type SanityTestRow,
  type SyntheticNeuron,
  sanityFromFeatures,
  syntheticActivations,
} from './pipeline/sanity.js';
export { type MethodTrust, type ScoreOptions, type ScoreResult, scoreLabels } from './pipeline/score.js';
export {
  runSimilarityFiles,
  type SimilarityFilesOptions,
  type SimilarityFilesResult,
} from './pipeline/similarity-files.js';
export {
  computeLayerTrust,
  type DissectTrustOptions,
  type LayerTrust,
  type LayerTrustSummary,
  type NeuronTrust,
  TRUST_DEFAULTS,
  type TrustBadge,
  type TrustInputs,
  type TrustOptions,
} from './pipeline/trust.js';
export {
  analyseWeights,
  type TextEmbedder,
  topKGrid,
  WEIGHT_TEXT_SPACES,
  type WeightEntry,
  type WeightsOptions,
  type WeightsResult,
  type WeightTextSpace,
} from './pipeline/weights.js';
export type { ProgressCallback, ProgressEvent, RunHooks } from './progress.js';
export { descriptionsCsv, type LayerResult, neuronsJson } from './report/descriptions.js';
export { buildReport, REPORT_BANDS, type ReportOptions, type ReportResult } from './report/html-report.js';
export { VERSION } from './version.js';
