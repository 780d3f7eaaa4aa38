/**
 * `clip-dissect dissect`: the whole method in one call — concept set → CLIP text features; probe images → CLIP
 * image features and the target network's pooled activations of each layer; then the similarity function per
 * layer and the result files.
 *
 * How the work is laid out:
 * - Every probe image is decoded ONCE (PIL `convert('RGB')` pixels, see src/data/decode.ts) and both the
 *   target's input (its preprocessing) and CLIP's input (the sizes, filter, mean and std of the CLIP model's
 *   preprocessor_config.json, center-cropped as `clip.load` does unless `clipPreprocess` is 'hf') are derived
 *   from the same pixels (one tensor when both preprocessings are equal). Decoding and resizing of batch b+1
 *   run on worker threads (`workers`, src/pipeline/_preprocess-pool.ts) while onnxruntime runs batch b on the
 *   main thread, in runs of `runBatchSize` images (small runs keep the activations in cache). One worker
 *   prepares one image at a time, so preprocessing never takes more than one core. The first images of a
 *   never-computed probe set (up to EARLY_PREFETCH_BYTES of crops) are prepared while the sessions open and
 *   the concepts are encoded (session creation keeps one core busy and leaves the other idle), then one batch
 *   ahead, across chunk boundaries.
 * - Probe images are processed in chunks (`chunkSize`, default 256 images); each chunk's image features, each
 *   layer's activations and the list of images kept are cached separately (src/pipeline/cache.ts) under a key of
 *   the model file hashes (external data files included), layer, pooling, preprocessing, the probe manifest, the
 *   chunk index and size, dtype and the library version. Concepts are encoded in chunks (`textChunkSize`, default 2048 texts) cached by their
 *   texts. A killed or failed run therefore resumes at the first chunk it had not finished, and a rerun with the
 *   same inputs computes nothing but the similarity.
 * - Memory: N×K per layer (pooled activations), N×d image features, M×d text features and one batch of images.
 * - CLIP sessions are opened only when some chunk is not cached.
 */
import { stat } from 'node:fs/promises';
import { join, resolve } from 'node:path';
import { checkMemoryBudget, computeSimilarity, type SimilarityResult } from '../compute/similarity-engine.js';
import { BUILTIN_CONCEPT_SETS, loadConceptSet } from '../data/builtin-concepts.js';
import { type ConceptSet, duplicateWarnings } from '../data/concepts.js';
import { type PreprocessConfig, preprocessorConfigFromHF, preprocessShape } from '../data/preprocess.js';
import {
  checkOutputsOutsideProbe,
  openProbeDataset,
  type ProbeDataset,
  type ProbeImage,
} from '../data/probe-dataset.js';
import { writeFileAtomic } from '../io/atomic.js';
import { defaultCacheDir } from '../io/cache-dir.js';
import { checkWritableFolder, withFolderLock } from '../io/folders.js';
import { matrixToNpy, writeNpy } from '../io/npy.js';
import { resolveModelFiles } from '../models/_hub.js';
import { alignToRuns, checkRunBatchSize, runBatchFor } from '../models/_run-batch.js';
import type { ClipEncoder } from '../models/clip-encoder.js';
import {
  type ClipDtype,
  type ClipPreprocess,
  clipCropRounding,
  clipDtypeKey,
  clipModelFiles,
  createOnnxClipEncoder,
  DEFAULT_CLIP_MODEL,
  readModelJson,
} from '../models/onnx-clip-encoder.js';
import type { OnnxTargetModel } from '../models/onnx-target-model.js';
import { readId2Label, resolveTargetSource, type TargetDtype } from '../models/target-files.js';
import {
  type LayerInfo,
  type LayerSelection,
  POOL_MODES,
  type PoolMode,
  type TokenMode,
  topLevelBlocks,
} from '../models/target-model.js';
import { ArgumentError, ClipDissectError, formatChoices } from '../numeric/errors.js';
import { checkFinite, type Matrix } from '../numeric/matrix.js';
import {
  checkSimilarityName,
  resolveSimilarityOptions,
  type SimilarityName,
} from '../numeric/similarity-options.js';
import type { RunHooks } from '../progress.js';
import { descriptionsCsv, type LayerResult, neuronsJson } from '../report/descriptions.js';
import { checkThreads } from '../runtime/node.js';
import { VERSION } from '../version.js';
import {
  checkWorkers,
  defaultWorkers,
  earlyPrefetch,
  imagePixelLimit,
  Prefetcher,
  type PrepareOutcome,
  writeInput,
} from './_preprocess-pool.js';
import { openModel, resolvePreprocess, type SkippedImage } from './activations.js';
import { layerFileNames, runHeader } from './activations-files.js';
import { type CacheStats, cacheKey, FeatureCache, fileSha256s, modelSha256s, sha256Hex } from './cache.js';
import { addLayerTrust, type DissectTrustOptions, resolveTrustOptions, TRUST_MIN_IMAGES } from './trust.js';

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
  inputs: Record<string, unknown>;
}

const DEFAULT_BATCH = 64;
const DEFAULT_CHUNK = 256;
const DEFAULT_TEXT_CHUNK = 2048;
const BAD_IMAGE_CODES = new Set(['ERR_IMAGE', 'ERR_IMAGE_READ']);

function positiveInt(name: string, v: number | undefined): void {
  if (v !== undefined && (!Number.isInteger(v) || v < 1))
    throw new ArgumentError(`'${name}' must be a positive integer but got ${v}`);
}

function checkOptions(o: DissectOptions): void {
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

/**
 * The preprocessings a chunk needs, in slot order: the target's (when it runs, or when CLIP's is the same),
 * then CLIP's when it differs.
 */
function chunkConfigs(
  tPre: PreprocessConfig,
  cPre: PreprocessConfig | undefined,
  runTarget: boolean,
): PreprocessConfig[] {
  const same = cPre !== undefined && JSON.stringify(cPre) === JSON.stringify(tPre);
  const configs: PreprocessConfig[] = [];
  if (runTarget || same) configs.push(tPre);
  if (cPre !== undefined && !same) configs.push(cPre);
  return configs;
}

/**
 * Runs CLIP-Dissect end to end: labels every neuron of the chosen layers of `target` with a concept.
 * Errors: ArgumentError (bad options, unknown layers), ConceptSetError, ProbeDatasetError, ClipDissectError
 * 'ERR_OFFLINE' (a CLIP file missing from the cache in offline mode, named), 'ERR_IMAGE' (an unreadable image
 * without skipBadImages), and the model loaders' errors.
 */
export async function dissect(o: DissectOptions, hooks: DissectHooks = {}): Promise<DissectResult> {
  checkOptions(o);
  // cheap checks before anything is downloaded, opened or computed: the folders written (the target's files
  // come first in dissectIn, before CLIP's)
  if (o.out !== undefined) await checkWritableFolder(o.out, 'out', 'results folder');
  if (o.cacheDir !== undefined || o.cache !== false)
    await checkWritableFolder(o.cacheDir ?? defaultCacheDir(), 'cacheDir', 'cache');
  if (o.out === undefined) return dissectIn(o, hooks);
  // one run at a time per results folder: a second one fails at once, naming the first
  return withFolderLock(o.out, 'dissect', hooks.onWarning, () => dissectIn(o, hooks));
}

/** A topK larger than the usable images: the message says how to lower it. */
function explainTopK(e: unknown, rows: number): unknown {
  if (e instanceof ArgumentError && /must be <= nImages/.test(e.message))
    return new ArgumentError(
      `${e.message}: the probe set has only ${rows} usable images (lower 'topK', e.g. to ${Math.max(1, Math.floor(rows / 2))})`,
      { option: e.option, cause: e },
    );
  return e;
}

async function dissectIn(o: DissectOptions, hooks: DissectHooks): Promise<DissectResult> {
  const t0 = performance.now();
  const timings: Record<string, number> = {};
  const time = (stage: string, ms: number) => {
    timings[stage] = (timings[stage] ?? 0) + ms / 1000;
  };
  const warnings: string[] = [];
  const warn = (w: string) => {
    if (warnings.includes(w)) return;
    warnings.push(w);
    hooks.onWarning?.(w);
  };
  const progress = hooks.onProgress;
  const signal = hooks.signal;
  signal?.throwIfAborted();

  const similarity = checkSimilarityName(o.similarity ?? 'soft_wpmi');
  const pool = o.pool ?? 'avg';
  const token = o.token ?? 'cls';
  const device = o.device ?? 'cpu';
  const dtype = o.dtype ?? 'fp32';
  const clipPreprocess = o.clipPreprocess ?? 'openai';
  const template = o.template ?? '{}';
  const clipId = o.clip ?? DEFAULT_CLIP_MODEL;
  const conceptsName = o.concepts ?? DEFAULT_CONCEPTS;
  const probe = o.probe ?? DEFAULT_PROBE;
  const cacheDir = o.cacheDir ?? defaultCacheDir();
  await checkOutputsOutsideProbe(probe, [
    o.out === undefined ? undefined : { what: "the output folder ('out' / --out)", path: o.out },
    {
      what: `the cache folder ('cacheDir' / --cache-dir${o.cacheDir === undefined ? ', default' : ''})`,
      path: cacheDir,
    },
  ]);
  const chunkSize = o.chunkSize ?? DEFAULT_CHUNK;
  const textChunkSize = o.textChunkSize ?? DEFAULT_TEXT_CHUNK;
  const cache = new FeatureCache(cacheDir, {
    enabled: o.cache ?? true,
    fsync: o.cacheFsync,
    onWarning: warn,
  });

  // --- inputs that are cheap to check first: the target's and CLIP's files (offline errors name the missing
  // file), concepts
  let t = performance.now();
  const resolved = await resolveTargetSource(o.target, {
    cacheDir,
    offline: o.offline,
    revision: o.revision,
    dtype: o.targetDtype,
    onProgress: progress,
  });
  const pre = await resolvePreprocess(o.preprocess, resolved.preprocessorConfig);
  const classNames = resolved.config ? await readId2Label(resolved.config) : null;
  if (o.clip === undefined)
    hooks.onChoice?.({ option: 'clip', value: clipId, reason: 'ViT-B/16, as in the paper' });
  if (o.concepts === undefined)
    hooks.onChoice?.({
      option: 'concepts',
      value: conceptsName,
      reason: "the paper's 20,000 most common English words",
    });
  if (o.probe === undefined)
    hooks.onChoice?.({ option: 'probe', value: DEFAULT_PROBE, reason: 'the CIFAR-100 validation images' });
  const clipFiles = clipModelFiles(dtype);
  const { dir: clipDir, hubId } = await resolveModelFiles(clipId, clipFiles, {
    cacheDir,
    offline: o.offline,
    onProgress: progress,
  });
  const [configF, tokF, tokCfgF, preF, textF, visionF] = clipFiles.map((f) => join(clipDir, f));
  // hashed on a worker thread while this one opens the target; the towers with their external data files
  const clipHashesP = (async () => {
    const [config, tokenizer, tokenizerConfig, preprocessor] = await fileSha256s([
      configF,
      tokF,
      tokCfgF,
      preF,
    ]);
    const [text, vision] = await modelSha256s([textF, visionF]);
    return { config, tokenizer, tokenizerConfig, preprocessor, text, vision };
  })();
  clipHashesP.catch(() => undefined); // awaited below; no unhandled rejection meanwhile

  t = performance.now();
  const set: ConceptSet = await loadConceptSet(conceptsName, {
    cacheDir,
    offline: o.offline,
    onProgress: progress,
  });
  for (const w of duplicateWarnings(set)) warn(w);
  if (set.concepts.length === 0) throw new ArgumentError(`the concept set ${conceptsName} holds no concepts`);
  const texts = set.concepts.map((c) => template.replace('{}', c));
  const conceptsSha = sha256Hex(JSON.stringify(set.concepts));
  // args.json records a concept file by its absolute path (so that eval / compose work from any folder); a
  // built-in set by its name (loadConceptSet reads a file of that name first, as here)
  const conceptIsFile =
    !Object.hasOwn(BUILTIN_CONCEPT_SETS, conceptsName) ||
    (await stat(conceptsName).then(
      (st) => st.isFile(),
      () => false,
    ));
  const conceptSource = conceptIsFile ? resolve(conceptsName) : set.source;
  time('concepts', performance.now() - t);

  // CLIP opens one tower at a time: the text tower for the concepts, released before the vision tower opens
  // (its session then reuses the freed memory instead of faulting in fresh pages: 1.7 s instead of 3.5 s)
  let clip: ClipEncoder | null = null;
  let clipTowers: 'text' | 'vision' | null = null;
  let target: OnnxTargetModel | null = null;
  let prefetcher: Prefetcher | null = null;
  const openClip = async (towers: 'text' | 'vision'): Promise<ClipEncoder> => {
    if (clip && clipTowers === towers) return clip;
    if (clip) await (clip as ClipEncoder).release();
    clip = null;
    const tc = performance.now();
    clip = await createOnnxClipEncoder(clipDir, {
      dtype,
      device,
      threads: o.threads,
      runBatchSize: o.runBatchSize,
      cacheDir,
      offline: true,
      towers,
      clipPreprocess,
    });
    clipTowers = towers;
    time(towers === 'text' ? 'openClipText' : 'openClipVision', performance.now() - tc);
    return clip;
  };

  try {
    // --- the probe set
    t = performance.now();
    const [, cropH, cropW] = preprocessShape(pre.config);
    // after CLIP's files: one hashing thread at a time beside this one
    const targetShaP = clipHashesP.then(
      async () => (await modelSha256s([resolved.model]))[0],
      async () => (await modelSha256s([resolved.model]))[0],
    );
    targetShaP.catch(() => undefined);
    const dataset: ProbeDataset = await openProbeDataset(probe, {
      cacheDir,
      offline: o.offline,
      onProgress: progress,
    });
    for (const w of dataset.warnings) warn(w);
    const N = dataset.images.length;
    if (N === 0) throw new ArgumentError(`the probe set ${JSON.stringify(probe)} holds no images`);
    // trust figures need two halves of probe images: asked for, too few is an error now; by default, a warning
    let trustOn = o.trust !== false;
    const tooFewForTrust = (n: number) =>
      `the trust figures need at least ${TRUST_MIN_IMAGES} probe images (a fit and a held-out half) but the probe set has ${n}`;
    const skipTrust = (n: number) => {
      if (o.trust !== undefined) throw new ArgumentError(tooFewForTrust(n), { option: 'trust' });
      warn(`${tooFewForTrust(n)}: trust figures skipped (trust: false / --no-trust silences this)`);
      trustOn = false;
    };
    if (trustOn && N < TRUST_MIN_IMAGES) skipTrust(N);
    // the similarity's options (topK <= N …) before any feature is computed
    try {
      resolveSimilarityOptions(similarity, o.options as never, N);
    } catch (e) {
      throw explainTopK(e, N);
    }
    const manifestSha = sha256Hex(dataset.manifest());
    const tPre = pre.config;
    const base = { manifest: manifestSha, chunkSize, version: VERSION };
    const keptParts = (c: number) => ({ what: 'kept-images', ...base, chunk: c });
    const nWorkers = o.workers ?? defaultWorkers(device);
    const pf = new Prefetcher(dataset, nWorkers, imagePixelLimit(o.memoryBudget, nWorkers));
    prefetcher = pf;
    const nChunks = Math.ceil(N / chunkSize);
    // chunks never computed (no kept list) need everything: the target's and CLIP's inputs of every image
    const fresh: boolean[] = [];
    for (let c = 0; c < nChunks; c++) fresh.push(!(await cache.has(cacheKey(keptParts(c)), 'kept')));
    // CLIP's preprocessing, as its encoder will read it (the workers start before CLIP opens)
    const clipPre = preprocessorConfigFromHF(
      await readModelJson(preF),
      preF,
      clipCropRounding(clipPreprocess),
    );
    const allConfigs = chunkConfigs(tPre, clipPre, true);
    const bs = Math.min(alignToRuns(o.batchSize ?? DEFAULT_BATCH, runBatchFor(device, o.runBatchSize)), N);
    time('openProbe', performance.now() - t);
    // The images of the leading never-computed chunks are decoded and preprocessed on the worker threads from
    // now on, while this thread opens the models and encodes the concepts (opening a session keeps one core
    // busy and leaves the other idle), up to EARLY_PREFETCH_BYTES.
    if (fresh[0]) {
      let freshEnd = 0;
      while (freshEnd < nChunks && fresh[freshEnd]) freshEnd++;
      const perImage = allConfigs.reduce((a, c) => a + preprocessShape(c).reduce((x, y) => x * y, 1), 0);
      const early = earlyPrefetch(perImage, bs, nWorkers);
      await pf.use(allConfigs);
      pf.ahead(0, Math.min(freshEnd * chunkSize, early));
    }

    // --- the target model and its layers
    t = performance.now();
    target = await openModel(resolved.model, { ...o, device, token }, pre);
    let layerSelection = o.layers;
    if (layerSelection === undefined) {
      const blocks = topLevelBlocks(target.layers());
      if (blocks.length === 0)
        throw new ArgumentError(
          `target model ${resolved.model} has no module outputs to dissect by default; choose the layers (tensor names work too)`,
        );
      hooks.onChoice?.({
        option: 'layers',
        value: blocks.join(','),
        reason: "the network's top-level blocks",
      });
      layerSelection = blocks;
    }
    const infos: LayerInfo[] = await target.describeDissectable(layerSelection);
    const exporter: string = target.exporter;
    // folded BatchNorms matter only to the convs they were folded into (Optimum's Hugging Face exports fold
    // them all): the model-wide note only when a chosen layer is one of them
    const folded = infos.some((i) => i.warnings.some((w) => /folded the BatchNorm/.test(w)));
    for (const w of target.warnings) if (folded || !/BatchNorm/.test(w)) warn(w);
    for (const i of infos) for (const w of i.warnings) warn(`${i.name}: ${w}`);
    time('openTarget', performance.now() - t);
    t = performance.now();
    const targetSha = await targetShaP;
    const clipHashes = await clipHashesP;
    time('hashWait', performance.now() - t);

    // --- image features and activations, in cached chunks of probe images
    const tPer = 3 * cropH * cropW;
    const imageParts = (c: number) => ({
      what: 'clip-image-features',
      clip: { config: clipHashes.config, preprocessor: clipHashes.preprocessor, vision: clipHashes.vision },
      clipPreprocess,
      dtype: clipDtypeKey(dtype),
      device,
      ...base,
      chunk: c,
    });
    const layerParts = (info: LayerInfo, c: number) => ({
      what: 'activations',
      model: targetSha,
      layer: info.name,
      tensor: info.tensor,
      pool,
      token,
      channelsLast: o.channelsLast ?? false,
      preprocess: tPre,
      device,
      ...base,
      chunk: c,
    });
    const acts = infos.map((i) => new Float32Array(N * i.neurons));
    let imageFeatures = new Float32Array(0);
    let row = 0;
    const kept: ProbeImage[] = [];
    const skipped: SkippedImage[] = [];
    let chunksComputed = 0;

    /** Computes what a chunk lacks: the kept images, image features (if `needImages`), the given layers. */
    const computeChunk = async (
      c: number,
      needImages: boolean,
      needLayers: number[],
    ): Promise<{ kept: number[]; skipped: SkippedImage[]; image?: Matrix; layers: Map<number, Matrix> }> => {
      const start = c * chunkSize;
      const end = Math.min(N, start + chunkSize);
      const enc = needImages ? await openClip('vision') : null;
      const cPre = enc?.preprocess;
      const same = cPre !== undefined && JSON.stringify(cPre) === JSON.stringify(tPre);
      const cShape = enc?.imageShape;
      const cPer = cShape ? cShape[0] * cShape[1] * cShape[2] : 0;
      const runTarget = needLayers.length > 0;
      const names = needLayers.map((k) => infos[k].name);
      // the target's batch buffer; CLIP reads it too when both preprocessings are equal
      const tBatch = runTarget || (enc && same) ? new Float32Array(bs * tPer) : null;
      const cBatch = enc && !same ? new Float32Array(bs * cPer) : null;
      const keptIdx: number[] = [];
      const skip: SkippedImage[] = [];
      const imageRows: Float32Array[] = [];
      const layerRows: Float32Array[][] = needLayers.map(() => []);
      // one decode per image; the worker threads derive each input the chunk needs
      const configs = chunkConfigs(tPre, enc ? cPre : undefined, runTarget);
      const tSlot = tBatch ? 0 : -1;
      const cSlot = cBatch ? configs.length - 1 : -1;
      // images prepared ahead with these preprocessings are used; with others they are dropped
      await pf.use(configs);
      // the next never-computed chunk will need everything: its first batch is prepared during this one's last
      const aheadLimit = fresh[c + 1] && pf.uses(allConfigs) ? Math.min(N, end + bs) : end;
      const batchOf = (b: number) => {
        const out: Promise<PrepareOutcome>[] = [];
        for (let i = start + b * bs; i < Math.min(end, start + (b + 1) * bs); i++) out.push(pf.take(i));
        return out;
      };
      const nb = Math.ceil((end - start) / bs);
      let next: Promise<PrepareOutcome>[] | null = batchOf(0);
      // the target's session is built while the workers prepare the first batch
      if (runTarget) {
        const tt = performance.now();
        await (target as OnnxTargetModel).prepare(names, pool);
        time('targetSession', performance.now() - tt);
      }
      for (let b = 0; b < nb; b++) {
        signal?.throwIfAborted();
        const td = performance.now();
        const results = await Promise.all(next as Promise<PrepareOutcome>[]);
        time('imageWait', performance.now() - td);
        // the next batch goes to the workers before onnxruntime blocks this thread
        const batchEnd = Math.min(end, start + (b + 1) * bs);
        pf.ahead(batchEnd, Math.min(aheadLimit, batchEnd + bs));
        next = b + 1 < nb ? batchOf(b + 1) : null;
        let n = 0;
        for (let j = 0; j < results.length; j++) {
          const r = results[j];
          const idx = start + b * bs + j;
          if (!r.ok) {
            const e = r.error;
            const image = dataset.images[idx];
            if (e instanceof ClipDissectError && BAD_IMAGE_CODES.has(e.code)) {
              if (o.skipBadImages) {
                skip.push({ index: idx, source: image.source, message: e.message });
                continue;
              }
              throw new ClipDissectError(
                e.code,
                `${e.message} (probe image ${idx}; skipBadImages / --skip-bad-images leaves such images out)`,
                { cause: e },
              );
            }
            throw e;
          }
          let ms = r.ms;
          if (tBatch) ms += writeInput(r, tSlot, configs[tSlot], tBatch, n);
          if (cBatch) ms += writeInput(r, cSlot, configs[cSlot], cBatch, n);
          time('preprocess', ms);
          keptIdx.push(idx);
          n++;
        }
        if (n === 0) continue;
        if (runTarget && tBatch) {
          const ti = performance.now();
          const out = await (target as OnnxTargetModel).activations(
            n === bs ? tBatch : tBatch.subarray(0, n * tPer),
            n,
            names,
            pool,
          );
          time('targetInference', performance.now() - ti);
          needLayers.forEach((_, q) => {
            layerRows[q].push(new Float32Array((out.get(names[q]) as Matrix).data));
          });
        }
        if (enc) {
          let input: Float32Array;
          if (same && tBatch) input = n === bs ? tBatch : tBatch.subarray(0, n * tPer);
          else if (cBatch) input = n === bs ? cBatch : cBatch.subarray(0, n * cPer);
          else throw new Error('unreachable: no CLIP input buffer');
          const ti = performance.now();
          const emb = await enc.encodeImages(input, n);
          time('clipInference', performance.now() - ti);
          imageRows.push(new Float32Array(emb.data));
        }
      }
      const concat = (parts: Float32Array[], cols: number): Matrix => {
        const data = new Float32Array(keptIdx.length * cols);
        let off = 0;
        for (const p of parts) {
          data.set(p, off);
          off += p.length;
        }
        return { rows: keptIdx.length, cols, data };
      };
      const layers = new Map<number, Matrix>();
      needLayers.forEach((k, q) => {
        layers.set(k, concat(layerRows[q], infos[k].neurons));
      });
      return {
        kept: keptIdx,
        skipped: skip,
        image: enc ? concat(imageRows, enc.embedDim) : undefined,
        layers,
      };
    };

    // Otherwise chunk 0's missing parts are prepared while CLIP opens and the concepts are encoded.
    if (!fresh[0]) {
      const c = 0;
      const needImages0 = !(await cache.has(cacheKey(imageParts(c)), 'image'));
      const needLayers0: LayerInfo[] = [];
      for (const info of infos)
        if (!(await cache.has(cacheKey(layerParts(info, c)), 'activations'))) needLayers0.push(info);
      if (needImages0 || needLayers0.length > 0) {
        const cPre0 = needImages0 ? clipPre : undefined;
        await pf.use(chunkConfigs(tPre, cPre0, needLayers0.length > 0));
        pf.ahead(0, Math.min(N, chunkSize));
      }
    }

    // --- text features, in cached chunks of concepts
    t = performance.now();
    const nTextChunks = Math.ceil(texts.length / textChunkSize);
    let textComputed = 0;
    let d = -1;
    const textParts = (texts_: readonly string[]) => ({
      what: 'clip-text-features',
      clip: {
        config: clipHashes.config,
        tokenizer: clipHashes.tokenizer,
        tokenizerConfig: clipHashes.tokenizerConfig,
        text: clipHashes.text,
      },
      dtype: clipDtypeKey(dtype),
      // CUDA kernels round differently from the CPU ones: features of one device never serve the other
      device,
      template,
      texts: sha256Hex(JSON.stringify(texts_)),
      count: texts_.length,
      version: VERSION,
    });
    const textChunks: Matrix[] = [];
    const truncated: { count: number; first?: string; contextLength: number } = {
      count: 0,
      contextLength: 0,
    };
    progress?.({ stage: 'text features', done: 0, total: texts.length, unit: 'concepts' });
    for (let c = 0; c < nTextChunks; c++) {
      signal?.throwIfAborted();
      const chunk = texts.slice(c * textChunkSize, (c + 1) * textChunkSize);
      const parts = textParts(chunk);
      const m = await cache.getOrCompute(
        cacheKey(parts),
        'text',
        async () => {
          textComputed++;
          const enc = await openClip('text');
          // onnxruntime takes every core here: the image workers wait (they run while sessions open)
          pf.pause();
          let e: Awaited<ReturnType<ClipEncoder['encodeText']>>;
          try {
            e = await enc.encodeText(chunk);
          } finally {
            pf.resume();
          }
          // counted over the chunks: one warning for the run, after the last chunk
          truncated.count += e.truncated.length;
          if (e.truncated.length && truncated.first === undefined) truncated.first = chunk[e.truncated[0]];
          truncated.contextLength = enc.contextLength;
          return { rows: e.rows, cols: e.cols, data: e.data };
        },
        parts,
      );
      d = m.cols;
      textChunks.push(m);
      progress?.({
        stage: 'text features',
        done: Math.min(texts.length, (c + 1) * textChunkSize),
        total: texts.length,
        unit: 'concepts',
      });
    }
    if (truncated.count)
      warn(
        `${truncated.count} concept text${truncated.count === 1 ? ' was' : 's were'} longer than CLIP's ${truncated.contextLength} tokens and cut (first: ${JSON.stringify(truncated.first)})`,
      );
    const textFeatures: Matrix = { rows: texts.length, cols: d, data: new Float32Array(texts.length * d) };
    {
      let off = 0;
      for (const m of textChunks) {
        textFeatures.data.set(m.data, off);
        off += m.data.length;
      }
    }
    textChunks.length = 0;
    checkFinite(
      textFeatures,
      `CLIP text features computed by ${clipId}`,
      (r) => `concept ${JSON.stringify(texts[r])}`,
    );
    if (clipTowers === 'text') {
      await (clip as ClipEncoder | null)?.release();
      clip = null;
      clipTowers = null;
    }
    time('textFeatures', performance.now() - t);

    t = performance.now();
    progress?.({ stage: 'images', done: 0, total: N, unit: 'images' });
    for (let c = 0; c < nChunks; c++) {
      signal?.throwIfAborted();
      const start = c * chunkSize;
      const end = Math.min(N, start + chunkSize);
      const kKey = cacheKey(keptParts(c));
      const iKey = cacheKey(imageParts(c));
      const lKeys = infos.map((info) => cacheKey(layerParts(info, c)));
      const chunksComputedBefore = chunksComputed;
      const keptM = await cache.get(kKey, 'kept');
      let imageM = keptM ? await cache.get(iKey, 'image') : undefined;
      const layerM: (Matrix | undefined)[] = [];
      for (let k = 0; k < infos.length; k++)
        layerM.push(keptM ? await cache.get(lKeys[k], 'activations') : undefined);
      let keptList: number[];
      if (keptM && imageM && layerM.every((m) => m !== undefined)) {
        keptList = Array.from(keptM.data);
      } else {
        chunksComputed++;
        let needImages = !imageM;
        let needLayers = infos.map((_, k) => k).filter((k) => layerM[k] === undefined);
        let r = await computeChunk(c, needImages, needLayers);
        let keptStored = keptM !== undefined;
        if (keptM && (keptM.rows !== r.kept.length || r.kept.some((v, i) => keptM.data[i] !== v))) {
          keptStored = false;
          // the images readable now are not those of the cached entries: recompute the whole chunk
          needImages = true;
          needLayers = infos.map((_, k) => k);
          r = await computeChunk(c, needImages, needLayers);
        }
        keptList = r.kept;
        skipped.push(...r.skipped);
        const tw = performance.now();
        const keptMatrix: Matrix = { rows: r.kept.length, cols: 1, data: Float32Array.from(r.kept) };
        // the data entries first, the kept list last: a chunk counts as done only when all of it is stored
        if (r.image) {
          imageM = r.image;
          await cache.put(iKey, 'image', r.image, imageParts(c));
        }
        for (const [k, m] of r.layers) {
          layerM[k] = m;
          await cache.put(lKeys[k], 'activations', m, layerParts(infos[k], c));
        }
        if (!keptStored) await cache.put(kKey, 'kept', keptMatrix, keptParts(c));
        time('cacheWrite', performance.now() - tw);
      }
      if (keptM && chunksComputedBefore === chunksComputed && keptList.length < end - start) {
        // a chunk read from the cache: its missing indices are the skipped images
        const have = new Set(keptList);
        for (let i = start; i < end; i++)
          if (!have.has(i)) {
            if (!o.skipBadImages)
              throw new ClipDissectError(
                'ERR_IMAGE',
                `probe image ${i} (${dataset.images[i].source}) could not be read in an earlier run (cached); pass skipBadImages / --skip-bad-images or fix the file`,
              );
            if (!skipped.some((s) => s.index === i))
              skipped.push({
                index: i,
                source: dataset.images[i].source,
                message: `${dataset.images[i].source}: unreadable (cached)`,
              });
          }
      }
      const n = keptList.length;
      const im = imageM as Matrix;
      if (imageFeatures.length === 0 && im.cols > 0) imageFeatures = new Float32Array(N * im.cols);
      imageFeatures.set(im.data, row * im.cols);
      infos.forEach((info, k) => {
        acts[k].set((layerM[k] as Matrix).data, row * info.neurons);
      });
      for (const i of keptList) kept.push(dataset.images[i]);
      row += n;
      progress?.({ stage: 'images', done: end, total: N, unit: 'images' });
    }
    time('images', performance.now() - t);
    skipped.sort((a, b) => a.index - b.index);
    if (row === 0)
      throw new ClipDissectError('ERR_IMAGE', `every one of the ${N} probe images was skipped as unreadable`);
    if (imageFeatures.length / N !== d)
      throw new ClipDissectError(
        'ERR_MODEL_CONFIG',
        `CLIP image features have ${imageFeatures.length / N} columns but text features ${d}`,
      );
    // release the workers and the models before the similarity engine takes the memory
    await pf.release();
    await target.release();
    target = null;
    if (clip) {
      await (clip as ClipEncoder).release();
      clip = null;
    }

    const I: Matrix = { rows: row, cols: d, data: imageFeatures.subarray(0, row * d) };
    const imageOf = (r: number) => `probe image ${kept[r].source}`;
    checkFinite(I, `CLIP image features computed by ${clipId}`, imageOf);
    const activations = new Map<string, Matrix>();
    infos.forEach((info, k) => {
      const A = { rows: row, cols: info.neurons, data: acts[k].subarray(0, row * info.neurons) };
      checkFinite(A, `activations of layer '${info.name}' computed by ${o.target}`, imageOf);
      activations.set(info.name, A);
    });

    // --- similarity per layer
    t = performance.now();
    const layers: LayerResult[] = [];
    for (const info of infos) {
      signal?.throwIfAborted();
      const stage = `similarity ${info.name}`;
      let result: SimilarityResult;
      try {
        result = await computeSimilarity(
          similarity,
          { imageFeatures: I, textFeatures, activations: activations.get(info.name) as Matrix },
          {
            options: o.options as never,
            top: o.top,
            topImages: o.topImages,
            memoryBudget: o.memoryBudget,
            threads: o.threads,
          },
          { onProgress: progress ? (e) => progress({ ...e, stage }) : undefined, signal },
        );
      } catch (e) {
        throw explainTopK(e, row);
      }
      layers.push({ layer: info.name, result, concepts: set.concepts });
    }
    time('similarity', performance.now() - t);
    // skipped unreadable images can leave fewer than the scan found
    if (trustOn && I.rows < TRUST_MIN_IMAGES) skipTrust(I.rows);
    if (trustOn) {
      t = performance.now();
      await addLayerTrust(
        layers,
        { imageFeatures: I, textFeatures, activations },
        similarity,
        {
          ...(o.trust === true || o.trust === undefined ? {} : o.trust),
          memoryBudget: o.memoryBudget,
          threads: o.threads,
        },
        { onProgress: progress, signal },
      );
      time('trust', performance.now() - t);
    }

    const inputs = {
      target: {
        given: o.target,
        hubId: resolved.hubId ?? null,
        revision: resolved.revision ?? null,
        dtype: o.targetDtype ?? 'fp32',
        model: resolved.model,
        sha256: targetSha,
        exporter,
        preprocessing: { source: pre.source, ...pre.config },
        // the ground truth of eval: unit i of the classifier = class i
        classNames: classNames ? { source: `${resolved.config} (id2label)`, names: classNames } : null,
      },
      clip: {
        given: clipId,
        hubId: hubId ?? null,
        dir: clipDir,
        dtype,
        sha256: clipHashes,
        preprocess: clipPreprocess,
        preprocessing: { source: preF, ...clipPre },
      },
      concepts: {
        source: conceptSource,
        given: conceptsName,
        concepts: set.concepts.length,
        duplicatesDropped: set.duplicates.length,
        template,
        sha256: conceptsSha,
      },
      probe: {
        given: probe,
        sources: dataset.sources,
        images: N,
        rows: row,
        manifestSha256: manifestSha,
        skipped: skipped.length,
      },
    };

    const result: DissectResult = {
      layers,
      images: kept,
      skipped,
      timings,
      warnings,
      cache: { ...cache.stats, dir: cache.dir, enabled: cache.enabled },
      chunks: {
        text: { computed: textComputed, total: nTextChunks },
        images: { computed: chunksComputed, total: nChunks },
      },
      imageFeatures: I,
      textFeatures,
      activations,
      inputs,
    };

    if (o.out !== undefined) {
      t = performance.now();
      result.files = await writeResults(o, result, {
        similarity,
        pool,
        token,
        chunkSize,
        textChunkSize,
        infos,
      });
      time('write', performance.now() - t);
    }
    timings.total = (performance.now() - t0) / 1000;
    for (const k of Object.keys(timings)) timings[k] = Math.round(timings[k] * 1000) / 1000;
    return result;
  } finally {
    await (prefetcher as Prefetcher | null)?.release();
    await (target as OnnxTargetModel | null)?.release();
    await (clip as ClipEncoder | null)?.release();
  }
}

async function writeResults(
  o: DissectOptions,
  r: DissectResult,
  meta: {
    similarity: SimilarityName;
    pool: PoolMode;
    token: TokenMode;
    chunkSize: number;
    textChunkSize: number;
    infos: LayerInfo[];
  },
): Promise<string[]> {
  const out = o.out as string;
  const files: string[] = [];
  const write = async (name: string, data: string | Uint8Array) => {
    await writeFileAtomic(join(out, name), data);
    files.push(join(out, name));
  };
  await write('descriptions.csv', descriptionsCsv(r.layers));
  await write('neurons.json', neuronsJson(r.layers, { version: VERSION, similarity: meta.similarity }));
  // reserved names first, so that a layer called 'image_features' gets image_features_2.npy
  const names = layerFileNames(['image_features', 'text_features', ...meta.infos.map((i) => i.name)]);
  for (const info of meta.infos) {
    const f = names.get(info.name) as string;
    await writeNpy(join(out, f), matrixToNpy(r.activations.get(info.name) as Matrix));
    files.push(join(out, f));
  }
  await writeNpy(join(out, 'image_features.npy'), matrixToNpy(r.imageFeatures));
  files.push(join(out, 'image_features.npy'));
  await writeNpy(join(out, 'text_features.npy'), matrixToNpy(r.textFeatures));
  files.push(join(out, 'text_features.npy'));
  await write('images.txt', r.images.map((im) => `${im.source}\n`).join(''));
  const first = r.layers[0]?.result;
  const runBatch = runBatchFor(o.device, o.runBatchSize);
  const args = {
    ...runHeader('dissect'),
    // the folder dissect ran in: relative paths given to it (probe, target) are relative to it
    cwd: process.cwd(),
    similarity: meta.similarity,
    options: first?.options ?? {},
    top: first?.top ?? null,
    pool: meta.pool,
    token: meta.token,
    channelsLast: o.channelsLast ?? false,
    batchSize: o.batchSize ?? DEFAULT_BATCH,
    runBatchSize: Number.isFinite(runBatch) ? runBatch : null, // no limit on CUDA
    chunkSize: meta.chunkSize,
    textChunkSize: meta.textChunkSize,
    device: o.device ?? 'cpu',
    threads: o.threads ?? null,
    skipBadImages: o.skipBadImages ?? false,
    inputs: r.inputs,
    layers: meta.infos.map((i) => ({
      name: i.name,
      file: names.get(i.name),
      tensor: i.tensor,
      kind: i.kind,
      neurons: i.neurons,
      outputShape: i.shape,
    })),
    files: {
      imageFeatures: { file: 'image_features.npy', shape: [r.imageFeatures.rows, r.imageFeatures.cols] },
      textFeatures: { file: 'text_features.npy', shape: [r.textFeatures.rows, r.textFeatures.cols] },
      images: 'images.txt',
    },
    skipped: r.skipped,
    cache: r.cache,
    chunks: r.chunks,
    warnings: r.warnings,
    timings: r.timings,
  };
  await write('args.json', `${JSON.stringify(args, null, 2)}\n`);
  return files;
}
