/**
 * dissect's options, hooks and result, their defaults and checks, and what every stage of the run gets from the
 * orchestrator (src/pipeline/dissect.ts): timings, warnings, progress and the stop signal.
 */
import { checkMemoryBudget } from '../../compute/similarity/index.js';
import type { PreprocessConfig } from '../../data/preprocess.js';
import type { ProbeImage } from '../../data/probe-dataset.js';
import { checkRunBatchSize } from '../../models/_run-batch.js';
import { type ClipDtype, type ClipPreprocess, clipCropRounding } from '../../models/onnx-clip-encoder.js';
import type { TargetDtype } from '../../models/target-files.js';
import { type LayerSelection, POOL_MODES, type PoolMode, type TokenMode } from '../../models/target-model.js';
import { ArgumentError, formatChoices } from '../../numeric/errors.js';
import type { Matrix } from '../../numeric/matrix.js';
import type { SimilarityName } from '../../numeric/similarity-options.js';
import type { ProgressEvent, RunHooks } from '../../progress.js';
import type { LayerResult } from '../../results/descriptions.js';
import type { DissectInputs as ArgsInputs } from '../../results/schema.js';
import { checkThreads } from '../../runtime/index.js';
import { checkWorkers } from '../_preprocess-pool.js';
import type { SkippedImage } from '../_probe-batches.js';
import type { CacheStats } from '../cache.js';
import { type DissectTrustOptions, resolveTrustOptions } from '../trust.js';

export interface DissectOptions {
  /**
   * The target network: an `.onnx` file, a folder holding model.onnx (and preprocessor_config.json,
   * config.json), or a Hugging Face model id in the transformers.js layout (`Xenova/resnet-50`), downloaded once
   * into `cacheDir`.
   */
  target: string;
  /** A hub target's revision: branch, tag or commit (default 'main'). */
  revision?: string;
  /** Which weights of a hub target or transformers.js folder (default 'fp32', onnx/model.onnx). */
  targetDtype?: TargetDtype;
  /**
   * Layers, named as in PyTorch (`conv1,layer4`) or by ONNX tensor name. Default: the network's top-level
   * blocks (topLevelBlocks: conv1, layer1…layer4 of a torchvision ResNet; the encoder stages of a Hugging Face
   * one), reported through `onChoice`.
   */
  layers?: LayerSelection;
  /** The probe set: folders, CIFAR files or built-in names (see openProbeDataset). Default 'cifar100_val'. */
  probe?: string | readonly string[];
  /** A concept file (one a line) or a built-in set name ('20k', '10k', '3k', 'broden', 'imagenet'). Default '20k'. */
  concepts?: string;
  /** The CLIP model: a hub id or a folder in the transformers.js layout. Default 'Xenova/clip-vit-base-patch16'. */
  clip?: string;
  /** CLIP weights: 'fp32' (default), 'fp16', 'q8'. */
  dtype?: ClipDtype;
  /**
   * CLIP's image preprocessing: 'openai' (default) crops as OpenAI's `clip.load` (torchvision's CenterCrop, as
   * the official CLIP-Dissect code), 'hf' as transformers' CLIPImageProcessor (odd overhangs rounded down).
   * Sizes, filter, mean and std come from the CLIP folder's preprocessor_config.json either way.
   */
  clipPreprocess?: ClipPreprocess;
  /** The text each concept is embedded as: `template.replace('{}', concept)`. Default '{}' (the concept). */
  template?: string;
  similarity?: SimilarityName;
  /** Hyperparameters of the similarity function (e.g. `{ topK: 50 }`). */
  options?: Record<string, number>;
  /** Concepts kept per neuron in neurons.json. Default 5. */
  top?: number;
  /** Most activating images recorded per neuron. Default 10. */
  topImages?: number;
  pool?: PoolMode;
  token?: TokenMode;
  channelsLast?: boolean;
  /** The target's preprocessing (a config or a JSON file); default: the target folder's, else torchvision
   * ImageNet. */
  preprocess?: PreprocessConfig | string;
  /**
   * Images decoded and preprocessed per step (then run in `runBatchSize` pieces), rounded down to a multiple of
   * `runBatchSize` (50 → 48 in runs of 8) so that the runs keep one shape. Default 64.
   */
  batchSize?: number;
  /**
   * Images per onnxruntime run: each batch is split into runs this big. Default 8 on 'cpu' (bigger runs are
   * slower there), the whole batch on 'cuda'.
   */
  runBatchSize?: number;
  /** Probe images per cache chunk. Default 256. */
  chunkSize?: number;
  /** Concepts per text cache chunk. Default 2048. */
  textChunkSize?: number;
  device?: 'cpu' | 'cuda';
  threads?: number;
  /**
   * Bound, in bytes, on the similarity engine's buffers, and on the probe images being decoded at once (one per
   * worker; larger images are refused, or skipped with `skipBadImages`). Default 768 MiB.
   */
  memoryBudget?: number;
  /**
   * Worker threads that decode and preprocess images while onnxruntime runs. Default: 1 on 'cpu', `cores - 1`
   * (at least 1) on 'cuda'. 0: the main thread resizes between batches.
   */
  workers?: number;
  /** Leave out images that cannot be decoded instead of failing. */
  skipBadImages?: boolean;
  /** Models, concept sets, probe sets and features (`<cacheDir>/features`). Default ~/.cache/clip-dissect. */
  cacheDir?: string;
  /** false: do not read or write the feature cache. Default true. */
  cache?: boolean;
  /** fdatasync cache files (default true). */
  cacheFsync?: boolean;
  /** Never download (CLIP model, built-in concept or probe sets must be cached). */
  offline?: boolean;
  /**
   * Which labels to trust (src/pipeline/trust.ts): stability, significance, simulation and the five metrics
   * per neuron, in neurons.json. false skips them; an object sets B, R, seed, fractions, conceptLabels.
   * Default true.
   */
  trust?: boolean | DissectTrustOptions;
  /** Output folder; when absent nothing is written. */
  out?: string;
}

/** An input that dissect chose because it was not given (the CLI prints one line each). */
export interface DissectChoice {
  /** The option: 'layers', 'probe', 'concepts' or 'clip'. */
  option: 'layers' | 'probe' | 'concepts' | 'clip';
  value: string;
  /** Why this one, e.g. "the network's top-level blocks". */
  reason: string;
}

/** The paper's defaults of the one-command job. */
export const DEFAULT_PROBE = 'cifar100_val';
export const DEFAULT_CONCEPTS = '20k';

/** RunHooks (the signal stops the run between batches; cached chunks stay), and the defaults chosen. */
export interface DissectHooks extends RunHooks {
  /** Each default chosen for a missing option, when it is chosen (before the work it decides). */
  onChoice?: (choice: DissectChoice) => void;
}

export interface DissectResult {
  layers: LayerResult[];
  /** The images of the rows, in order (probe order without skipped images). */
  images: ProbeImage[];
  skipped: SkippedImage[];
  /** Files written (when `out` was given). */
  files?: string[];
  /** Seconds by stage: concepts, textFeatures (openClipText inside), openProbe, openTarget, openClipVision,
   * targetSession, preprocess,
   * targetInference, clipInference, similarity, write, total. */
  timings: Record<string, number>;
  warnings: string[];
  /** Feature-cache counters of this run. */
  cache: CacheStats & { dir: string; enabled: boolean };
  /** Chunks computed (not read from the cache) and in all. */
  chunks: {
    text: { computed: number; total: number };
    images: { computed: number; total: number };
  };
  imageFeatures: Matrix;
  textFeatures: Matrix;
  activations: Map<string, Matrix>;
  /** Hashes and sources for args.json. */
  inputs: ArgsInputs;
}

export const DEFAULT_BATCH = 64;
export const DEFAULT_CHUNK = 256;
export const DEFAULT_TEXT_CHUNK = 2048;

function positiveInt(name: string, v: number | undefined): void {
  if (v !== undefined && (!Number.isInteger(v) || v < 1))
    throw new ArgumentError(`'${name}' must be a positive integer but got ${v}`);
}

export function checkOptions(o: DissectOptions): void {
  if (typeof o !== 'object' || o === null)
    throw new ArgumentError(`dissect: 'options' must be an object but got ${String(o)}`);
  if (typeof o.target !== 'string' || o.target === '')
    throw new ArgumentError(`'target' is required but got ${JSON.stringify(o.target)}`);
  if (o.concepts !== undefined && (typeof o.concepts !== 'string' || o.concepts === ''))
    throw new ArgumentError(
      `'concepts' must be a concept file or a built-in set name but got ${JSON.stringify(o.concepts)}`,
    );
  if (o.pool !== undefined && !POOL_MODES.includes(o.pool))
    throw new ArgumentError(`'pool' must be ${formatChoices(POOL_MODES)} but got '${String(o.pool)}'`);
  if (o.device !== undefined && o.device !== 'cpu' && o.device !== 'cuda')
    throw new ArgumentError(`'device' must be 'cpu' or 'cuda' but got '${String(o.device)}'`);
  if (o.template !== undefined && (typeof o.template !== 'string' || !o.template.includes('{}')))
    throw new ArgumentError(
      `'template' must contain {} (where the concept goes), e.g. 'a photo of {}', but got ${JSON.stringify(o.template)}`,
    );
  clipCropRounding(o.clipPreprocess);
  positiveInt('batchSize', o.batchSize);
  checkRunBatchSize(o.runBatchSize);
  checkWorkers(o.workers);
  checkThreads(o.threads);
  checkMemoryBudget(o.memoryBudget);
  positiveInt('chunkSize', o.chunkSize);
  positiveInt('textChunkSize', o.textChunkSize);
  if (o.trust !== undefined && typeof o.trust !== 'boolean') resolveTrustOptions(o.trust);
}

/** What every stage gets from the orchestrator. */
export interface StageContext {
  /** Adds milliseconds to a timing (seconds in DissectResult.timings). */
  time: (stage: string, ms: number) => void;
  /** A warning for the user, once per run. */
  warn: (warning: string) => void;
  progress?: (event: ProgressEvent) => void;
  signal?: AbortSignal;
}
