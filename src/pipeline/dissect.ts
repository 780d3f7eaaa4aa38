/**
 * `clip-dissect dissect`: the whole method in one call — concept set → CLIP text features; probe images → CLIP
 * image features and the target network's pooled activations of each layer; then the similarity function per
 * layer and the result files.
 *
 * This file orchestrates the stages of src/pipeline/dissect/, each with typed inputs and results: inputs.ts
 * (the target's and CLIP's files, the concept set, the model hashes), text-features.ts, image-chunks.ts,
 * similarity.ts, trust.ts and outputs.ts (the result files).
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
import type { PreprocessConfig } from '../data/preprocess.js';
import { checkOutputsOutsideProbe, openProbeDataset, type ProbeDataset } from '../data/probe-dataset.js';
import { defaultCacheDir } from '../io/cache-dir.js';
import { checkWritableFolder, withFolderLock } from '../io/folders.js';
import type { OnnxTargetModel } from '../models/onnx-target-model.js';
import { type LayerInfo, topLevelBlocks } from '../models/target-model.js';
import { ArgumentError } from '../numeric/errors.js';
import { checkSimilarityName, resolveSimilarityOptions } from '../numeric/similarity-options.js';
import { defaultWorkers, imagePixelLimit, Prefetcher } from './_preprocess-pool.js';
import { openModel } from './activations.js';
import { FeatureCache } from './cache.js';
import {
  chunkParts,
  imageChunks,
  planImageChunks,
  prefetchFirstChunk,
  prefetchFreshChunks,
} from './dissect/image-chunks.js';
import { resolveDissectInputs } from './dissect/inputs.js';
import {
  checkOptions,
  DEFAULT_BATCH,
  DEFAULT_CHUNK,
  DEFAULT_PROBE,
  DEFAULT_TEXT_CHUNK,
  type DissectHooks,
  type DissectOptions,
  type DissectResult,
  type StageContext,
} from './dissect/options.js';
import { inputsRecord, writeResults } from './dissect/outputs.js';
import { explainTopK, layerSimilarities } from './dissect/similarity.js';
import { textFeatures } from './dissect/text-features.js';
import { layerTrust, trustWanted } from './dissect/trust.js';

export {
  DEFAULT_CONCEPTS,
  DEFAULT_PROBE,
  type DissectChoice,
  type DissectHooks,
  type DissectOptions,
  type DissectResult,
} from './dissect/options.js';

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

/**
 * Opens the target and describes its chosen layers (by default its top-level blocks, told to onChoice); the
 * model is released when the layers are refused.
 */
async function openTarget(
  o: DissectOptions,
  path: string,
  pre: { config: PreprocessConfig; source: string },
  hooks: DissectHooks,
  ctx: StageContext,
): Promise<{ target: OnnxTargetModel; infos: LayerInfo[] }> {
  const t = performance.now();
  const target = await openModel(path, { ...o, device: o.device ?? 'cpu', token: o.token ?? 'cls' }, pre);
  try {
    let layerSelection = o.layers;
    if (layerSelection === undefined) {
      const blocks = topLevelBlocks(target.layers());
      if (blocks.length === 0)
        throw new ArgumentError(
          `target model ${path} has no module outputs to dissect by default; choose the layers (tensor names work too)`,
        );
      hooks.onChoice?.({
        option: 'layers',
        value: blocks.join(','),
        reason: "the network's top-level blocks",
      });
      layerSelection = blocks;
    }
    const infos: LayerInfo[] = await target.describeDissectable(layerSelection);
    // folded BatchNorms matter only to the convs they were folded into (Optimum's Hugging Face exports fold
    // them all): the model-wide note only when a chosen layer is one of them
    const folded = infos.some((i) => i.warnings.some((w) => /folded the BatchNorm/.test(w)));
    for (const w of target.warnings) if (folded || !/BatchNorm/.test(w)) ctx.warn(w);
    for (const i of infos) for (const w of i.warnings) ctx.warn(`${i.name}: ${w}`);
    ctx.time('openTarget', performance.now() - t);
    return { target, infos };
  } catch (e) {
    await target.release();
    throw e;
  }
}

async function dissectIn(o: DissectOptions, hooks: DissectHooks): Promise<DissectResult> {
  const t0 = performance.now();
  const timings: Record<string, number> = {};
  const warnings: string[] = [];
  const ctx: StageContext = {
    time: (stage, ms) => {
      timings[stage] = (timings[stage] ?? 0) + ms / 1000;
    },
    warn: (w) => {
      if (warnings.includes(w)) return;
      warnings.push(w);
      hooks.onWarning?.(w);
    },
    progress: hooks.onProgress,
    signal: hooks.signal,
  };
  ctx.signal?.throwIfAborted();

  const similarity = checkSimilarityName(o.similarity ?? 'soft_wpmi');
  const pool = o.pool ?? 'avg';
  const token = o.token ?? 'cls';
  const device = o.device ?? 'cpu';
  const clipPreprocess = o.clipPreprocess ?? 'openai';
  const template = o.template ?? '{}';
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
    onWarning: ctx.warn,
  });

  const inp = await resolveDissectInputs(o, cacheDir, ctx, hooks.onChoice);
  const clipTower = {
    dir: inp.clip.dir,
    dtype: inp.clip.dtype,
    device,
    threads: o.threads,
    runBatchSize: o.runBatchSize,
    cacheDir,
    clipPreprocess,
  };

  let target: OnnxTargetModel | null = null;
  let prefetcher: Prefetcher | null = null;
  try {
    // --- the probe set
    let t = performance.now();
    const dataset: ProbeDataset = await openProbeDataset(
      probe,
      { cacheDir, offline: o.offline },
      { onProgress: ctx.progress, signal: ctx.signal },
    );
    for (const w of dataset.warnings) ctx.warn(w);
    const N = dataset.images.length;
    if (N === 0) throw new ArgumentError(`the probe set ${JSON.stringify(probe)} holds no images`);
    // trust figures need two halves of probe images: asked for, too few is an error now; by default, a warning
    let trustOn = trustWanted(o.trust, N, ctx);
    // the similarity's options (topK <= N …) before any feature is computed
    try {
      resolveSimilarityOptions(similarity, o.options as never, N);
    } catch (e) {
      throw explainTopK(e, N);
    }
    const nWorkers = o.workers ?? defaultWorkers(device);
    const pf = new Prefetcher(dataset, nWorkers, imagePixelLimit(o.memoryBudget, nWorkers));
    prefetcher = pf;
    const plan = await planImageChunks({
      dataset,
      cache,
      chunkSize,
      batchSize: o.batchSize ?? DEFAULT_BATCH,
      device,
      runBatchSize: o.runBatchSize,
      targetPre: inp.pre.config,
      clipPreprocessorFile: inp.clip.preprocessorFile,
      clipPreprocess,
    });
    ctx.time('openProbe', performance.now() - t);
    await prefetchFreshChunks(plan, pf, nWorkers);

    // --- the target model and its layers
    const opened = await openTarget(o, inp.target.model, inp.pre, hooks, ctx);
    const model = opened.target;
    target = model;
    const { infos } = opened;
    const exporter = model.exporter;
    t = performance.now();
    const targetSha = await inp.targetSha;
    const clipHashes = await inp.clip.hashes;
    ctx.time('hashWait', performance.now() - t);
    const parts = chunkParts(plan, {
      clipHashes,
      clipPreprocess,
      dtype: inp.clip.dtype,
      device,
      targetSha,
      pool,
      token,
      channelsLast: o.channelsLast ?? false,
    });
    // chunk 0's missing parts are prepared while CLIP opens and the concepts are encoded
    await prefetchFirstChunk(plan, parts, infos, cache, pf);

    // --- text features, in cached chunks of concepts
    const text = await textFeatures(
      {
        texts: inp.concepts.texts,
        template,
        textChunkSize,
        clip: { ...clipTower, id: inp.clip.id, hashes: clipHashes },
        cache,
        pause: pf,
      },
      ctx,
    );

    // --- image features and activations, in cached chunks of probe images
    const images = await imageChunks(
      {
        plan,
        parts,
        infos,
        target: model,
        pool,
        clip: { ...clipTower, id: inp.clip.id },
        targetName: o.target,
        cache,
        prefetcher: pf,
        skipBadImages: o.skipBadImages ?? false,
      },
      ctx,
    );
    // release the workers and the target before the similarity engine takes the memory
    await pf.release();
    await model.release();
    target = null;

    const I = images.imageFeatures;
    const layers = await layerSimilarities(
      {
        similarity,
        imageFeatures: I,
        textFeatures: text.features,
        activations: images.activations,
        infos,
        concepts: inp.concepts.set.concepts,
        options: o.options,
        top: o.top,
        topImages: o.topImages,
        memoryBudget: o.memoryBudget,
        threads: o.threads,
      },
      ctx,
    );
    // skipped unreadable images can leave fewer than the scan found
    if (trustOn) trustOn = trustWanted(o.trust, I.rows, ctx);
    if (trustOn)
      await layerTrust(
        {
          layers,
          features: { imageFeatures: I, textFeatures: text.features, activations: images.activations },
          similarity,
          trust: o.trust === false ? undefined : o.trust,
          memoryBudget: o.memoryBudget,
          threads: o.threads,
        },
        ctx,
      );

    const result: DissectResult = {
      layers,
      images: images.images,
      skipped: images.skipped,
      timings,
      warnings,
      cache: { ...cache.stats, dir: cache.dir, enabled: cache.enabled },
      chunks: { text: text.chunks, images: images.chunks },
      imageFeatures: I,
      textFeatures: text.features,
      activations: images.activations,
      inputs: inputsRecord(o, inp, {
        targetSha,
        exporter,
        clipHashes,
        clipPreprocess,
        clipPre: plan.clipPre,
        template,
        probe,
        dataset,
        manifestSha: plan.manifest,
        rows: I.rows,
        skipped: images.skipped.length,
      }),
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
      ctx.time('write', performance.now() - t);
    }
    timings.total = (performance.now() - t0) / 1000;
    for (const k of Object.keys(timings)) timings[k] = Math.round(timings[k] * 1000) / 1000;
    return result;
  } finally {
    await (prefetcher as Prefetcher | null)?.release();
    await (target as OnnxTargetModel | null)?.release();
  }
}
