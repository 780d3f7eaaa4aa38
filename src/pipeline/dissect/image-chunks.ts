/**
 * dissect's image stage: CLIP's image features and the target's pooled activations of every probe image, in
 * chunks of `chunkSize` images. Each chunk's image features, each layer's activations and the list of images
 * kept are cached separately (src/pipeline/cache.ts), so a killed or failed run resumes at the first chunk it
 * had not finished. Every image is decoded once; the worker threads derive the target's and CLIP's inputs from
 * the same pixels (one tensor when both preprocessings are equal) while onnxruntime runs the batch before.
 *
 * - planImageChunks: which chunks were never computed, the batch size, the preprocessings;
 * - prefetchFreshChunks / prefetchFirstChunk: images prepared while the sessions open and the concepts are
 *   encoded;
 * - imageChunks: the chunks themselves, read from the cache or computed.
 */
import { type PreprocessConfig, preprocessorConfigFromHF, preprocessShape } from '../../data/preprocess.js';
import type { ProbeDataset, ProbeImage } from '../../data/probe-dataset.js';
import { sha256Hex } from '../../io/sha256.js';
import { alignToRuns, runBatchFor } from '../../models/_run-batch.js';
import type { ClipEncoder } from '../../models/clip-encoder.js';
import {
  type ClipDtype,
  type ClipPreprocess,
  clipCropRounding,
  clipDtypeKey,
  readModelJson,
} from '../../models/onnx-clip-encoder.js';
import type { OnnxTargetModel } from '../../models/onnx-target-model.js';
import type { LayerInfo, PoolMode, TokenMode } from '../../models/target-model.js';
import { ClipDissectError } from '../../numeric/errors.js';
import { checkFinite, type Matrix } from '../../numeric/matrix.js';
import { VERSION } from '../../version.js';
import { earlyPrefetch, type Prefetcher, writeInput } from '../_preprocess-pool.js';
import { runProbeBatches, type SkippedImage } from '../_probe-batches.js';
import { cacheKey, type FeatureCache } from '../cache.js';
import { type ClipTowerOptions, openClipTower } from './clip-tower.js';
import type { ClipHashes } from './inputs.js';
import type { StageContext } from './options.js';

/**
 * The preprocessings a chunk needs, in slot order: the target's (when it runs, or when CLIP's is the same),
 * then CLIP's when it differs.
 */
export function chunkConfigs(
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

/** How the probe images are laid out in chunks and batches, and what the cache already holds. */
export interface ImagePlan {
  dataset: ProbeDataset;
  /** Probe images. */
  N: number;
  chunkSize: number;
  nChunks: number;
  /** Images per batch (a multiple of the run batch, at most N). */
  batchSize: number;
  /** Per chunk: never computed (no kept list cached), so every input of every image is needed. */
  fresh: boolean[];
  targetPre: PreprocessConfig;
  /** CLIP's preprocessing, as its encoder will read it (the workers start before CLIP opens). */
  clipPre: PreprocessConfig;
  /** Every preprocessing of a fresh chunk (chunkConfigs with the target run). */
  allConfigs: PreprocessConfig[];
  /** SHA-256 of the probe manifest (part of every chunk's cache key). */
  manifest: string;
}

export interface ImagePlanInput {
  dataset: ProbeDataset;
  cache: FeatureCache;
  chunkSize: number;
  /** Requested batch size (aligned to the run batch here). */
  batchSize: number;
  device: 'cpu' | 'cuda';
  runBatchSize?: number;
  targetPre: PreprocessConfig;
  /** CLIP's preprocessor_config.json and how its crop rounds. */
  clipPreprocessorFile: string;
  clipPreprocess: ClipPreprocess;
}

/** Scans the cache for chunks never computed and reads CLIP's preprocessing. */
export async function planImageChunks(i: ImagePlanInput): Promise<ImagePlan> {
  const N = i.dataset.images.length;
  const manifest = sha256Hex(i.dataset.manifest());
  const nChunks = Math.ceil(N / i.chunkSize);
  const plan = { dataset: i.dataset, N, chunkSize: i.chunkSize, nChunks, manifest };
  const fresh: boolean[] = [];
  for (let c = 0; c < nChunks; c++) fresh.push(!(await i.cache.has(cacheKey(keptParts(plan, c)), 'kept')));
  const clipPre = preprocessorConfigFromHF(
    await readModelJson(i.clipPreprocessorFile),
    i.clipPreprocessorFile,
    clipCropRounding(i.clipPreprocess),
  );
  const allConfigs = chunkConfigs(i.targetPre, clipPre, true);
  const batchSize = Math.min(alignToRuns(i.batchSize, runBatchFor(i.device, i.runBatchSize)), N);
  return { ...plan, batchSize, fresh, targetPre: i.targetPre, clipPre, allConfigs };
}

/**
 * The images of the leading never-computed chunks are decoded and preprocessed on the worker threads from now
 * on, while the main thread opens the models and encodes the concepts (opening a session keeps one core busy
 * and leaves the other idle), up to EARLY_PREFETCH_BYTES.
 */
export async function prefetchFreshChunks(plan: ImagePlan, pf: Prefetcher, workers: number): Promise<void> {
  if (!plan.fresh[0]) return;
  let freshEnd = 0;
  while (freshEnd < plan.nChunks && plan.fresh[freshEnd]) freshEnd++;
  const perImage = plan.allConfigs.reduce((a, c) => a + preprocessShape(c).reduce((x, y) => x * y, 1), 0);
  const early = earlyPrefetch(perImage, plan.batchSize, workers);
  await pf.use(plan.allConfigs);
  pf.ahead(0, Math.min(freshEnd * plan.chunkSize, early));
}

function keptParts(plan: Pick<ImagePlan, 'manifest' | 'chunkSize'>, c: number) {
  return {
    what: 'kept-images',
    manifest: plan.manifest,
    chunkSize: plan.chunkSize,
    version: VERSION,
    chunk: c,
  };
}

/** What the cache keys of a chunk's image features and activations depend on besides the probe set. */
export interface ChunkKeyInputs {
  clipHashes: ClipHashes;
  clipPreprocess: ClipPreprocess;
  dtype: ClipDtype;
  device: 'cpu' | 'cuda';
  targetSha: string;
  pool: PoolMode;
  token: TokenMode;
  channelsLast: boolean;
}

/** The parts of a chunk's cache keys (cacheKey hashes them; the cache stores them beside each entry). */
export interface ChunkParts {
  kept(c: number): Record<string, unknown>;
  image(c: number): Record<string, unknown>;
  layer(info: LayerInfo, c: number): Record<string, unknown>;
}

export function chunkParts(plan: ImagePlan, k: ChunkKeyInputs): ChunkParts {
  const base = { manifest: plan.manifest, chunkSize: plan.chunkSize, version: VERSION };
  return {
    kept: (c) => keptParts(plan, c),
    image: (c) => ({
      what: 'clip-image-features',
      clip: {
        config: k.clipHashes.config,
        preprocessor: k.clipHashes.preprocessor,
        vision: k.clipHashes.vision,
      },
      clipPreprocess: k.clipPreprocess,
      dtype: clipDtypeKey(k.dtype),
      device: k.device,
      ...base,
      chunk: c,
    }),
    layer: (info, c) => ({
      what: 'activations',
      model: k.targetSha,
      layer: info.name,
      tensor: info.tensor,
      pool: k.pool,
      token: k.token,
      channelsLast: k.channelsLast,
      preprocess: plan.targetPre,
      device: k.device,
      ...base,
      chunk: c,
    }),
  };
}

/**
 * When chunk 0 was computed before but lacks some parts (a new layer, another CLIP), its images are prepared
 * with the preprocessings those parts need while CLIP opens and the concepts are encoded.
 */
export async function prefetchFirstChunk(
  plan: ImagePlan,
  parts: ChunkParts,
  infos: readonly LayerInfo[],
  cache: FeatureCache,
  pf: Prefetcher,
): Promise<void> {
  if (plan.fresh[0]) return;
  const needImages0 = !(await cache.has(cacheKey(parts.image(0)), 'image'));
  const needLayers0: LayerInfo[] = [];
  for (const info of infos)
    if (!(await cache.has(cacheKey(parts.layer(info, 0)), 'activations'))) needLayers0.push(info);
  if (needImages0 || needLayers0.length > 0) {
    const cPre0 = needImages0 ? plan.clipPre : undefined;
    await pf.use(chunkConfigs(plan.targetPre, cPre0, needLayers0.length > 0));
    pf.ahead(0, Math.min(plan.N, plan.chunkSize));
  }
}

export interface ImageChunksInput {
  plan: ImagePlan;
  parts: ChunkParts;
  infos: readonly LayerInfo[];
  /** The target, opened at the target preprocessing's crop; released by the caller. */
  target: OnnxTargetModel;
  pool: PoolMode;
  /** Opened (vision tower) when some chunk lacks its image features; released by this stage. */
  clip: ClipTowerOptions & { id: string };
  /** For error messages: how the target was given. */
  targetName: string;
  cache: FeatureCache;
  prefetcher: Prefetcher;
  skipBadImages: boolean;
}

export interface ImageChunks {
  /** rows×d, one row per kept image. */
  imageFeatures: Matrix;
  /** rows×K per layer name, in the order of `infos`. */
  activations: Map<string, Matrix>;
  /** The images of the rows, in probe order. */
  images: ProbeImage[];
  /** Sorted by index. */
  skipped: SkippedImage[];
  chunks: { computed: number; total: number };
}

interface ComputedChunk {
  kept: number[];
  skipped: SkippedImage[];
  image?: Matrix;
  layers: Map<number, Matrix>;
}

/** The vision tower, opened on first use. */
interface VisionTower {
  get(): Promise<ClipEncoder>;
}

/** Computes what chunk `c` lacks: the kept images, image features (if `needImages`), the given layers. */
async function computeChunk(
  i: ImageChunksInput,
  vision: VisionTower,
  c: number,
  needImages: boolean,
  needLayers: number[],
  ctx: StageContext,
): Promise<ComputedChunk> {
  const { plan, infos, target, pool, prefetcher: pf } = i;
  const { N, chunkSize, batchSize: bs, targetPre: tPre } = plan;
  const start = c * chunkSize;
  const end = Math.min(N, start + chunkSize);
  const [, cropH, cropW] = preprocessShape(tPre);
  const tPer = 3 * cropH * cropW;
  const enc = needImages ? await vision.get() : null;
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
  const imageRows: Float32Array[] = [];
  const layerRows: Float32Array[][] = needLayers.map(() => []);
  // one decode per image; the worker threads derive each input the chunk needs
  const configs = chunkConfigs(tPre, enc ? cPre : undefined, runTarget);
  const tSlot = tBatch ? 0 : -1;
  const cSlot = cBatch ? configs.length - 1 : -1;
  // images prepared ahead with these preprocessings are used; with others they are dropped
  await pf.use(configs);
  // the next never-computed chunk will need everything: its first batch is prepared during this one's last
  const aheadLimit = plan.fresh[c + 1] && pf.uses(plan.allConfigs) ? Math.min(N, end + bs) : end;
  const skipped = await runProbeBatches({
    dataset: plan.dataset,
    prefetcher: pf,
    start,
    end,
    batchSize: bs,
    skipBadImages: i.skipBadImages,
    aheadLimit,
    signal: ctx.signal,
    timingKeys: { wait: 'imageWait', preprocess: 'preprocess' },
    time: ctx.time,
    // the target's session is built while the workers prepare the first batch
    beforeFirst: runTarget
      ? async () => {
          const tt = performance.now();
          await target.prepare(names, pool);
          ctx.time('targetSession', performance.now() - tt);
        }
      : undefined,
    write: (r, n) => {
      let ms = 0;
      if (tBatch) ms += writeInput(r, tSlot, configs[tSlot], tBatch, n);
      if (cBatch) ms += writeInput(r, cSlot, configs[cSlot], cBatch, n);
      return ms;
    },
    run: async (rows) => {
      const n = rows.length;
      keptIdx.push(...rows);
      if (runTarget && tBatch) {
        const ti = performance.now();
        const out = await target.activations(
          n === bs ? tBatch : tBatch.subarray(0, n * tPer),
          n,
          names,
          pool,
        );
        ctx.time('targetInference', performance.now() - ti);
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
        ctx.time('clipInference', performance.now() - ti);
        imageRows.push(new Float32Array(emb.data));
      }
    },
  });
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
  return { kept: keptIdx, skipped, image: enc ? concat(imageRows, enc.embedDim) : undefined, layers };
}

/**
 * Reads every chunk from the cache or computes what it lacks, and assembles the rows of the kept images.
 * Errors: ClipDissectError 'ERR_IMAGE' (an unreadable image without skipBadImages, also one found unreadable
 * by an earlier run; every image skipped), non-finite features or activations (naming the image), the models'
 * errors, the signal's reason.
 */
export async function imageChunks(i: ImageChunksInput, ctx: StageContext): Promise<ImageChunks> {
  const { plan, parts, infos, cache } = i;
  const { N, chunkSize, nChunks, dataset } = plan;
  const t = performance.now();
  let clip: ClipEncoder | null = null;
  const vision: VisionTower = {
    get: async () => {
      clip ??= await openClipTower(i.clip, 'vision', ctx);
      return clip;
    },
  };
  try {
    const acts = infos.map((info) => new Float32Array(N * info.neurons));
    let imageFeatures = new Float32Array(0);
    let row = 0;
    let cols = 0;
    const kept: ProbeImage[] = [];
    const skipped: SkippedImage[] = [];
    let chunksComputed = 0;
    ctx.progress?.({ stage: 'images', done: 0, total: N, unit: 'images' });
    for (let c = 0; c < nChunks; c++) {
      ctx.signal?.throwIfAborted();
      const start = c * chunkSize;
      const end = Math.min(N, start + chunkSize);
      const kKey = cacheKey(parts.kept(c));
      const iKey = cacheKey(parts.image(c));
      const lKeys = infos.map((info) => cacheKey(parts.layer(info, c)));
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
        let r = await computeChunk(i, vision, c, needImages, needLayers, ctx);
        let keptStored = keptM !== undefined;
        if (keptM && (keptM.rows !== r.kept.length || r.kept.some((v, j) => keptM.data[j] !== v))) {
          keptStored = false;
          // the images readable now are not those of the cached entries: recompute the whole chunk
          needImages = true;
          needLayers = infos.map((_, k) => k);
          r = await computeChunk(i, vision, c, needImages, needLayers, ctx);
        }
        keptList = r.kept;
        skipped.push(...r.skipped);
        const tw = performance.now();
        const keptMatrix: Matrix = { rows: r.kept.length, cols: 1, data: Float32Array.from(r.kept) };
        // the data entries first, the kept list last: a chunk counts as done only when all of it is stored
        if (r.image) {
          imageM = r.image;
          await cache.put(iKey, 'image', r.image, parts.image(c));
        }
        for (const [k, m] of r.layers) {
          layerM[k] = m;
          await cache.put(lKeys[k], 'activations', m, parts.layer(infos[k], c));
        }
        if (!keptStored) await cache.put(kKey, 'kept', keptMatrix, parts.kept(c));
        ctx.time('cacheWrite', performance.now() - tw);
      }
      if (keptM && chunksComputedBefore === chunksComputed && keptList.length < end - start) {
        // a chunk read from the cache: its missing indices are the skipped images
        const have = new Set(keptList);
        for (let j = start; j < end; j++)
          if (!have.has(j)) {
            if (!i.skipBadImages)
              throw new ClipDissectError(
                'ERR_IMAGE',
                `probe image ${j} (${dataset.images[j].source}) could not be read in an earlier run (cached); pass skipBadImages / --skip-bad-images or fix the file`,
              );
            if (!skipped.some((s) => s.index === j))
              skipped.push({
                index: j,
                source: dataset.images[j].source,
                message: `${dataset.images[j].source}: unreadable (cached)`,
              });
          }
      }
      const im = imageM as Matrix;
      if (imageFeatures.length === 0 && im.cols > 0) {
        imageFeatures = new Float32Array(N * im.cols);
        cols = im.cols;
      }
      imageFeatures.set(im.data, row * im.cols);
      infos.forEach((info, k) => {
        acts[k].set((layerM[k] as Matrix).data, row * info.neurons);
      });
      for (const j of keptList) kept.push(dataset.images[j]);
      row += keptList.length;
      ctx.progress?.({ stage: 'images', done: end, total: N, unit: 'images' });
    }
    await (clip as ClipEncoder | null)?.release();
    clip = null;
    ctx.time('images', performance.now() - t);
    skipped.sort((a, b) => a.index - b.index);
    if (row === 0)
      throw new ClipDissectError('ERR_IMAGE', `every one of the ${N} probe images was skipped as unreadable`);

    const I: Matrix = { rows: row, cols, data: imageFeatures.subarray(0, row * cols) };
    const imageOf = (r: number) => `probe image ${kept[r].source}`;
    checkFinite(I, `CLIP image features computed by ${i.clip.id}`, imageOf);
    const activations = new Map<string, Matrix>();
    infos.forEach((info, k) => {
      const A = { rows: row, cols: info.neurons, data: acts[k].subarray(0, row * info.neurons) };
      checkFinite(A, `activations of layer '${info.name}' computed by ${i.targetName}`, imageOf);
      activations.set(info.name, A);
    });
    return {
      imageFeatures: I,
      activations,
      images: kept,
      skipped,
      chunks: { computed: chunksComputed, total: nChunks },
    };
  } finally {
    await (clip as ClipEncoder | null)?.release();
  }
}
