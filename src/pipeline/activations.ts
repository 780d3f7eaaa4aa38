/**
 * Running the target network over a probe set: the pooled activations of chosen layers, one row per probe
 * image and one column per neuron (what the official CLIP-Dissect's `utils.save_target_activations` saves).
 *
 * How the work is laid out (2 vCPUs and a GPU alike):
 * - onnxruntime pools every requested layer inside the graph (see OnnxTargetModel), so only K numbers per image
 *   and layer come back; the N×K outputs are allocated once, up front.
 * - Images are decoded (sharp) and preprocessed (the Pillow-exact resize, center crop and normalisation of
 *   src/data/preprocess.ts, which is synchronous JavaScript) in a small pool of worker threads, one image per
 *   job, one job at a time per worker. The first images are handed to the workers while onnxruntime builds its
 *   session, then the jobs of batch b+1 before batch b goes into onnxruntime, whose `run` blocks the main
 *   thread for the whole batch: by the time it returns, the next batch is (mostly) ready.
 *   With `workers: 0` the main thread does it instead, and only sharp's decoding (libuv threads) overlaps the
 *   inference.
 * - Bad images (corrupt, truncated, unreadable) stop the run with an error naming the file, or, with
 *   `skipBadImages`, are left out of the outputs and listed in `skipped`; rows stay in probe order.
 */
import { checkMemoryBudget } from '../compute/similarity/index.js';
import { IMAGENET_PREPROCESS, type PreprocessConfig, preprocessShape } from '../data/preprocess.js';
import {
  openProbeDataset,
  type ProbeDataset,
  type ProbeImage,
  type ProbeSource,
} from '../data/probe-dataset.js';
import { alignToRuns, checkRunBatchSize, runBatchFor } from '../models/_run-batch.js';
import { createOnnxTargetModel, type OnnxTargetModel } from '../models/onnx-target-model.js';
import { resolveTargetSource, type TargetDtype } from '../models/target-files.js';
import {
  type LayerInfo,
  type LayerSelection,
  POOL_MODES,
  type PoolMode,
  TOKEN_MODES,
  type TokenMode,
} from '../models/target-model.js';
import { ArgumentError, ClipDissectError, formatChoices } from '../numeric/errors.js';
import type { Matrix } from '../numeric/matrix.js';
import type { RunHooks } from '../progress.js';
import { checkDeviceOption, checkThreads } from '../runtime/index.js';
import {
  checkWorkers,
  defaultWorkers,
  earlyPrefetch,
  imagePixelLimit,
  Prefetcher,
  writeInput,
} from './_preprocess-pool.js';
import { runProbeBatches, type SkippedImage } from './_probe-batches.js';
import { loadPreprocessConfig } from './preprocess-config.js';

export type { SkippedImage } from './_probe-batches.js';

export interface ExtractActivationsOptions {
  /** An `.onnx` file, or a folder holding `model.onnx` (or `onnx/model.onnx`) and, optionally, a Hugging Face
   * `preprocessor_config.json` that then gives the preprocessing. */
  target: string;
  /** Layers, named as in PyTorch (`layer4`, `features.43`) or by ONNX tensor name; see OnnxTargetModel. */
  layers: LayerSelection;
  /** The probe set: one or more sources (folders, CIFAR files, built-in names), see openProbeDataset. */
  probe: string | readonly string[];
  /** How 4-D activations become one number per channel. Default 'avg'. */
  pool?: PoolMode;
  /** Images decoded and preprocessed per step (then run in `runBatchSize` pieces; rounded down to a multiple of
   * it). Default 64. */
  batchSize?: number;
  /**
   * Images per onnxruntime run: each batch is split into runs this big. Default 8 on 'cpu' (bigger runs are
   * slower there), the whole batch on 'cuda'.
   */
  runBatchSize?: number;
  device?: 'cpu' | 'cuda';
  /** onnxruntime intra-op threads; default: all cores. */
  threads?: number;
  /**
   * The preprocessing: a PreprocessConfig, or the path of a JSON file holding one (`{"resize": 256, "crop": 224,
   * …}`) or a Hugging Face `preprocessor_config.json`. Default: the target folder's `preprocessor_config.json`,
   * else torchvision's ImageNet transform (Resize 256 bilinear, CenterCrop 224, ImageNet mean/std).
   */
  preprocess?: PreprocessConfig | string;
  /** 4-D activations (and a channels-last image input) are NHWC. */
  channelsLast?: boolean;
  /** How transformer token outputs become one vector: the class token ('cls', default) or the token mean. */
  token?: TokenMode;
  /** Leave out images that cannot be decoded (listed in `skipped`) instead of failing. Default false. */
  skipBadImages?: boolean;
  /**
   * Worker threads that decode and preprocess images while onnxruntime runs. Default: 1 on 'cpu' (onnxruntime
   * keeps the cores busy; one worker hides the preprocessing behind it), `cores - 1` (at least 1) on 'cuda'.
   * 0: the main thread preprocesses between batches.
   */
  workers?: number;
  /**
   * Bound, in bytes, on the images being decoded at once (one per worker): larger images are refused, or
   * skipped with `skipBadImages` (see decodeImageRGB's `maxPixels`). Default 768 MiB.
   */
  memoryBudget?: number;
  /** Cache of built-in probe sets (default ~/.cache/clip-dissect). */
  cacheDir?: string;
  /** Never download a built-in probe set or a hub target's files. */
  offline?: boolean;
  /** A hub target's revision (branch, tag or commit; default 'main'). */
  revision?: string;
  /** Which weights of a hub target or transformers.js folder (default 'fp32': onnx/model.onnx). */
  targetDtype?: TargetDtype;
}

/** One requested layer's activations. */
export interface LayerActivations {
  name: string;
  /** K, the number of columns. */
  neurons: number;
  /** N×K float32, one row per image of `images`, in probe order. */
  matrix: Matrix;
  /** The ONNX tensor read, its kind ('spatial', 'tokens', 'vector') and per-image shape. */
  tensor: string;
  kind: LayerInfo['kind'];
  shape: readonly (number | string)[];
}

export interface ActivationsResult {
  layers: LayerActivations[];
  /** The images of the rows, in order (the probe order without the skipped images). */
  images: ProbeImage[];
  skipped: SkippedImage[];
  /** Model, layer and probe-set findings for the user (folded BatchNorms, ignored files …), deduplicated. */
  warnings: string[];
  /** Seconds: `openProbe`, `openModel`, `inference` (waiting for onnxruntime), `waitForImages` (waiting for
   * preprocessing that inference did not hide), `preprocess` (the resize, crop and normalisation, synchronous JavaScript, summed over images; decoding
   * is not included),
   * `total`. */
  timings: Record<string, number>;
  pool: PoolMode;
  batchSize: number;
  workers: number;
  /** The preprocessing used, and where it came from ('default (torchvision ImageNet)', a file path, 'options'). */
  preprocess: { config: PreprocessConfig; source: string };
  model: {
    path: string;
    exporter: string;
    inputShape: readonly [number, number, number];
    device: 'cpu' | 'cuda';
    threads?: number;
  };
  probe: { sources: ProbeSource[]; images: number };
}

const DEFAULT_BATCH = 64;

function checkOptions(o: ExtractActivationsOptions): void {
  if (typeof o !== 'object' || o === null)
    throw new ArgumentError(`extractActivations: 'options' must be an object but got ${String(o)}`);
  if (typeof o.target !== 'string' || o.target === '')
    throw new ArgumentError(
      `'target' must be the path of an .onnx file or a model folder but got ${JSON.stringify(o.target)}`,
    );
  if (o.pool !== undefined && !POOL_MODES.includes(o.pool))
    throw new ArgumentError(`'pool' must be ${formatChoices(POOL_MODES)} but got '${String(o.pool)}'`);
  if (o.token !== undefined && !TOKEN_MODES.includes(o.token))
    throw new ArgumentError(`'token' must be ${formatChoices(TOKEN_MODES)} but got '${String(o.token)}'`);
  checkDeviceOption(o.device);
  if (o.batchSize !== undefined && (!Number.isInteger(o.batchSize) || o.batchSize < 1))
    throw new ArgumentError(`'batchSize' must be a positive integer but got ${o.batchSize}`);
  checkRunBatchSize(o.runBatchSize);
  checkWorkers(o.workers);
  checkThreads(o.threads);
  checkMemoryBudget(o.memoryBudget);
  if (o.layers === undefined)
    throw new ArgumentError(`'layers' is required: a comma-separated string, a list of names or a predicate`);
  if (o.probe === undefined)
    throw new ArgumentError(`'probe' is required: a folder, CIFAR file or built-in name`);
}

/** The preprocessing of a run and a description of where it came from. */
export async function resolvePreprocess(
  option: PreprocessConfig | string | undefined,
  folderConfig: string | undefined,
): Promise<{ config: PreprocessConfig; source: string }> {
  if (typeof option === 'string') return { config: await loadPreprocessConfig(option), source: option };
  if (option !== undefined) {
    try {
      preprocessShape(option);
    } catch (e) {
      if (e instanceof ArgumentError) throw new ArgumentError(e.message.replace(/^cfg/, "'preprocess'"));
      throw e;
    }
    return { config: option, source: 'options' };
  }
  if (folderConfig) return { config: await loadPreprocessConfig(folderConfig), source: folderConfig };
  return {
    config: IMAGENET_PREPROCESS,
    source: 'default (torchvision ImageNet: Resize 256 bilinear, CenterCrop 224)',
  };
}

function describePreprocess(p: { config: PreprocessConfig; source: string }): string {
  const c = p.config;
  const crop = typeof c.crop === 'number' ? `${c.crop}×${c.crop}` : `${c.crop[0]}×${c.crop[1]}`;
  const what =
    p.source === 'options'
      ? "the 'preprocess' option"
      : p.source.startsWith('default')
        ? `the ${p.source.replace(/^default/, 'default preprocessing')}`
        : `the preprocessing in ${p.source}`;
  return `${what} crops to ${crop}`;
}

/**
 * Opens the model at the preprocessing's crop size; a mismatch with a fixed input size names both (and the
 * --preprocess flag, not the model's 'imageSize' option). Internal: shared with dissect.
 */
export async function openModel(
  path: string,
  o: Pick<ExtractActivationsOptions, 'device' | 'threads' | 'runBatchSize' | 'channelsLast' | 'token'>,
  pre: { config: PreprocessConfig; source: string },
): Promise<OnnxTargetModel> {
  const [, cropH, cropW] = preprocessShape(pre.config);
  const base = {
    device: o.device,
    threads: o.threads,
    runBatchSize: o.runBatchSize,
    channelsLast: o.channelsLast,
    token: o.token,
  };
  let model: OnnxTargetModel;
  try {
    model = await createOnnxTargetModel(path, { ...base, imageSize: [cropH, cropW] });
  } catch (e) {
    if (!(e instanceof ArgumentError && /'imageSize'.*does not match/.test(e.message))) throw e;
    // a fixed input of another size: open it as it is to tell the user which
    const m = await createOnnxTargetModel(path, base);
    const [, h, w] = m.inputShape;
    await m.release();
    throw new ArgumentError(
      `target model '${path}' takes ${h}×${w} images but ${describePreprocess(pre)}; give a preprocessing whose crop is ${h}×${w} (--preprocess FILE, or the 'preprocess' option)`,
    );
  }
  if (model.inputShape[0] !== 3) {
    const c = model.inputShape[0];
    await model.release();
    throw new ArgumentError(
      `target model '${path}' takes images of ${c} channel${c === 1 ? '' : 's'} but probe images are RGB (3 channels)`,
    );
  }
  return model;
}

/**
 * Runs the target model over the probe set and returns the pooled activations of the chosen layers.
 * Errors: ArgumentError for bad options, unknown layers (listing the closest names) and a preprocessing whose
 * crop does not fit the model; ProbeDatasetError for a bad probe set; ClipDissectError 'ERR_IMAGE' /
 * 'ERR_IMAGE_READ' for an image that cannot be decoded (its path first; see `skipBadImages`).
 */
export async function extractActivations(
  o: ExtractActivationsOptions,
  hooks: RunHooks = {},
): Promise<ActivationsResult> {
  checkOptions(o);
  const t0 = performance.now();
  const secs = (ms: number) => Math.round(ms) / 1000;
  hooks.signal?.throwIfAborted();
  const pool = o.pool ?? 'avg';
  const device = o.device ?? 'cpu';
  const target = await resolveTargetSource(o.target, {
    cacheDir: o.cacheDir,
    offline: o.offline,
    revision: o.revision,
    dtype: o.targetDtype,
    onProgress: hooks.onProgress,
    signal: hooks.signal,
  });
  const pre = await resolvePreprocess(o.preprocess, target.preprocessorConfig);

  const nWorkers = o.workers ?? defaultWorkers(device);
  const [, h, w] = preprocessShape(pre.config);
  const per = 3 * h * w;
  let inferenceMs = 0;

  // the model and its layers are checked before the probe set is scanned
  // (a mistyped layer fails fast)
  let prefetcher: Prefetcher | null = null;
  let model: OnnxTargetModel | null = null;
  try {
    model = await openModel(target.model, o, pre);
    const infos = await model.describeDissectable(o.layers);
    const names = infos.map((i) => i.name);
    const tModel = performance.now();
    hooks.signal?.throwIfAborted();

    const dataset: ProbeDataset = await openProbeDataset(
      o.probe,
      { cacheDir: o.cacheDir, offline: o.offline },
      { onProgress: hooks.onProgress, signal: hooks.signal },
    );
    const N = dataset.images.length;
    if (N === 0) throw new ArgumentError(`the probe set ${JSON.stringify(o.probe)} holds no images`);
    const tProbe = performance.now();
    const bs = Math.min(alignToRuns(o.batchSize ?? DEFAULT_BATCH, runBatchFor(o.device, o.runBatchSize)), N);

    const pf = new Prefetcher(dataset, nWorkers, imagePixelLimit(o.memoryBudget, nWorkers));
    prefetcher = pf;
    await pf.use([pre.config]);
    // onnxruntime's session is built (on one core) while the workers prepare the first images
    pf.ahead(0, earlyPrefetch(per, bs, nWorkers));
    const outputs = infos.map((info) => new Float32Array(N * info.neurons));
    const batch = new Float32Array(bs * per);
    const kept: ProbeImage[] = [];
    const ms: Record<string, number> = {};
    const m = model;
    let row = 0;
    const skipped = await runProbeBatches({
      dataset,
      prefetcher: pf,
      start: 0,
      end: N,
      batchSize: bs,
      skipBadImages: o.skipBadImages ?? false,
      signal: hooks.signal,
      timingKeys: { wait: 'waitForImages', preprocess: 'preprocess' },
      time: (key, t) => {
        ms[key] = (ms[key] ?? 0) + t;
      },
      beforeFirst: async () => {
        await m.prepare(names, pool);
        hooks.onProgress?.({ stage: 'activations', done: 0, total: N, unit: 'images' });
      },
      write: (r, n) => writeInput(r, 0, pre.config, batch, n),
      run: async (rows) => {
        const n = rows.length;
        const ti = performance.now();
        const acts = await m.activations(n === bs ? batch : batch.subarray(0, n * per), n, names, pool);
        inferenceMs += performance.now() - ti;
        infos.forEach((info, k) => {
          outputs[k].set((acts.get(info.name) as Matrix).data, row * info.neurons);
        });
        for (const i of rows) kept.push(dataset.images[i]);
        row += n;
      },
      onBatch: (done) => hooks.onProgress?.({ stage: 'activations', done, total: N, unit: 'images' }),
    });

    if (row === 0)
      throw new ClipDissectError(
        'ERR_IMAGE',
        `every one of the ${N} probe images was skipped as unreadable (first: ${skipped[0]?.message ?? '?'})`,
      );
    const warnings = [
      ...dataset.warnings,
      ...model.warnings,
      ...infos.flatMap((i) => i.warnings.map((w) => `${i.name}: ${w}`)),
    ];
    const t1 = performance.now();
    return {
      layers: infos.map((info, k) => ({
        name: info.name,
        neurons: info.neurons,
        matrix: {
          rows: row,
          cols: info.neurons,
          data: row === N ? outputs[k] : outputs[k].subarray(0, row * info.neurons),
        },
        tensor: info.tensor,
        kind: info.kind,
        shape: info.shape,
      })),
      images: kept,
      skipped,
      warnings: [...new Set(warnings)],
      timings: {
        openModel: secs(tModel - t0),
        openProbe: secs(tProbe - tModel),
        inference: secs(inferenceMs),
        waitForImages: secs(ms.waitForImages ?? 0),
        preprocess: secs(ms.preprocess ?? 0),
        total: secs(t1 - t0),
      },
      pool,
      batchSize: bs,
      workers: nWorkers,
      preprocess: pre,
      model: {
        path: target.model,
        exporter: model.exporter,
        inputShape: model.inputShape,
        device,
        ...(o.threads !== undefined ? { threads: o.threads } : {}),
      },
      probe: { sources: dataset.sources, images: N },
    };
  } finally {
    await (prefetcher as Prefetcher | null)?.release();
    await model?.release();
  }
}
