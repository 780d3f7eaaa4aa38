/**
 * clip-dissect: label every neuron of a vision network with the concept that CLIP sees in its most
 * activating images (CLIP-Dissect, Oikarinen & Weng, ICLR 2023).
 *
 * The public API: the domain functions, the model factories and the types they take and return. Every
 * long-running function takes `(options, hooks)` with hooks `{ onProgress, onWarning, signal }` (RunHooks).
 * The pure math is under `clip-dissect/numeric`, `.npy` files under `clip-dissect/io`, image decoding and
 * preprocessing under `clip-dissect/data`. Files whose names start with `_` are internal;
 * test/api/public-api.test.ts pins this list.
 */

export { DEFAULT_MEMORY_BUDGET } from './compute/memory-budget.js';
export {
  computeSimilarity,
  type SimilarityResult,
  type SimilarityRunOptions,
} from './compute/similarity/index.js';
export {
  BUILTIN_CONCEPT_NAMES,
  type LoadConceptsOptions,
  loadConceptSet,
} from './data/builtin-concepts.js';
export { type ConceptSet, ConceptSetError, parseConcepts } from './data/concepts.js';
export type { RGBImage } from './data/decode.js';
export { LabelsFileError } from './data/labels-files.js';
export { CLIP_PREPROCESS, IMAGENET_PREPROCESS, type PreprocessConfig } from './data/preprocess.js';
export {
  BUILTIN_PROBE_DATASETS,
  openProbeDataset,
  type ProbeDataset,
  ProbeDatasetError,
  type ProbeImage,
} from './data/probe-dataset.js';
export { defaultCacheDir } from './io/cache-dir.js';
export { NpyFormatError } from './io/npy.js';
export type { ClipEncoder, EncodeTextOptions, TextEmbeddings } from './models/clip-encoder.js';
export {
  type ClipDtype,
  type ClipPreprocess,
  type ClipTowers,
  createOnnxClipEncoder,
  DEFAULT_CLIP_MODEL,
  type OnnxClipEncoder,
  type OnnxClipEncoderOptions,
} from './models/onnx-clip-encoder.js';
export {
  createOnnxSentenceEncoder,
  DEFAULT_SENTENCE_MODEL,
  type OnnxSentenceEncoder,
  type OnnxSentenceEncoderOptions,
  type SentenceDtype,
} from './models/onnx-sentence-encoder.js';
export {
  createOnnxTargetModel,
  type OnnxTargetModel,
  type OnnxTargetModelOptions,
  type TokenLayout,
} from './models/onnx-target-model.js';
export type {
  EncodeSentencesOptions,
  SentenceEmbeddings,
  SentenceEncoder,
} from './models/sentence-encoder.js';
export {
  resolveTargetSource,
  type TargetDtype,
  type TargetSource,
  type TargetSourceOptions,
} from './models/target-files.js';
export {
  type LayerInfo,
  type LayerKind,
  type LayerSelection,
  type PoolMode,
  type TargetModel,
  type TokenMode,
  topLevelBlocks,
} from './models/target-model.js';
export { ArgumentError, ClipDissectError, NonFiniteError, ShapeError } from './numeric/errors.js';
export { createMatrix, type Matrix } from './numeric/matrix.js';
export type {
  CosSimilarityCubedOptions,
  RankReorderOptions,
  SimilarityName,
  SimilarityOptionsMap,
  SoftWpmiOptions,
  WpmiOptions,
} from './numeric/similarity-options.js';
export type { SimilarityInputs } from './numeric/similarity-reference.js';
export type { LabelMetrics } from './numeric/trust-metrics.js';
export {
  type ActivationsResult,
  type ExtractActivationsOptions,
  extractActivations,
  type LayerActivations,
  type SkippedImage,
} from './pipeline/activations.js';
export type { CacheStats } from './pipeline/cache.js';
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
  evaluate,
  type MethodScores,
} from './pipeline/eval.js';
export {
  type RecoveryRow,
  runSanity,
  type SanityOptions,
  type SanityResult,
  type SanityTestRow,
} from './pipeline/sanity.js';
export { type MethodTrust, type ScoreOptions, type ScoreResult, scoreLabels } from './pipeline/score.js';
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
  type WeightEntry,
  type WeightsOptions,
  type WeightsResult,
  type WeightTextSpace,
} from './pipeline/weights.js';
export type { ProgressCallback, ProgressEvent, RunHooks } from './progress.js';
export { buildReport, type ReportOptions, type ReportResult } from './report/html-report.js';
export { descriptionsCsv, type LayerResult, neuronsJson } from './results/descriptions.js';
export {
  type ArgsLayer,
  type DescriptionRow,
  type DissectArgs,
  type NeuronRecord,
  type NeuronsJson,
  type NeuronsLayer,
  RESULTS_SCHEMA_VERSION,
  type ResultsArgs,
  readArgsJson,
  readDescriptionsCsv,
  readImagesTxt,
  readNeuronsJson,
  type SimilarityArgs,
} from './results/index.js';
export { type RuntimeChoice, type RuntimeInfo, selectRuntime } from './runtime/index.js';
export { VERSION } from './version.js';
