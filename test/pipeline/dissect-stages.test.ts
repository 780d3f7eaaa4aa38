/**
 * dissect's stages alone (src/pipeline/dissect/*): each called with typed inputs made here, its result checked
 * against the standalone paths (the CLIP encoder, extractActivations, computeSimilarity, the .npy reader).
 */
import assert from 'node:assert/strict';
import { readFileSync, writeFileSync } from 'node:fs';
import { readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { describe, it, test } from 'node:test';
import { computeSimilarity } from '../../src/compute/similarity/index.js';
import { decodeImageRGB } from '../../src/data/decode.js';
import { preprocessImage } from '../../src/data/preprocess.js';
import { openProbeDataset, type ProbeDataset } from '../../src/data/probe-dataset.js';
import { npyToMatrix, readNpy } from '../../src/io/npy.js';
import { createOnnxClipEncoder } from '../../src/models/onnx-clip-encoder.js';
import type { OnnxTargetModel } from '../../src/models/onnx-target-model.js';
import type { LayerInfo } from '../../src/models/target-model.js';
import { ArgumentError, ClipDissectError } from '../../src/numeric/errors.js';
import type { Matrix } from '../../src/numeric/matrix.js';
import { Prefetcher } from '../../src/pipeline/_preprocess-pool.js';
import { extractActivations, openModel, resolvePreprocess } from '../../src/pipeline/activations.js';
import { FeatureCache } from '../../src/pipeline/cache.js';
import {
  chunkParts,
  type ImageChunksInput,
  imageChunks,
  planImageChunks,
} from '../../src/pipeline/dissect/image-chunks.js';
import type { ClipHashes } from '../../src/pipeline/dissect/inputs.js';
import type { DissectResult, StageContext } from '../../src/pipeline/dissect/options.js';
import { writeResults } from '../../src/pipeline/dissect/outputs.js';
import { layerSimilarities } from '../../src/pipeline/dissect/similarity.js';
import { textFeatures } from '../../src/pipeline/dissect/text-features.js';
import { trustWanted } from '../../src/pipeline/dissect/trust.js';
import { tempDir } from '../helpers/cli.js';
import { NEEDS_SHARED, tinyClipForSuite } from '../models/clip-helpers.js';
import { FOLDED, PREPROCESS_JSON, probeFolder, RESULTS_CONCEPTS } from './helpers.js';

/** A stage context that records timings, warnings and progress stages. */
function context(): StageContext & {
  timings: Record<string, number>;
  warnings: string[];
  stages: Set<string>;
} {
  const timings: Record<string, number> = {};
  const warnings: string[] = [];
  const stages = new Set<string>();
  return {
    timings,
    warnings,
    stages,
    time: (k, ms) => {
      timings[k] = (timings[k] ?? 0) + ms;
    },
    warn: (w) => warnings.push(w),
    progress: (e) => stages.add(e.stage),
  };
}

/** A deterministic rows×cols matrix. */
function matrix(rows: number, cols: number, seed: number): Matrix {
  const data = new Float32Array(rows * cols);
  for (let i = 0; i < data.length; i++) data[i] = Math.fround(Math.sin(i * 12.9898 + seed) * 0.5);
  return { rows, cols, data };
}

describe('dissect stage: trust', () => {
  test('too few probe images: an error when trust was asked for, else a warning and no trust figures', () => {
    const ctx = context();
    assert.equal(trustWanted(undefined, 8, ctx), true);
    assert.equal(trustWanted(true, 100, ctx), true);
    assert.equal(trustWanted(false, 100, ctx), false);
    assert.equal(trustWanted(false, 2, ctx), false);
    assert.deepEqual(ctx.warnings, []);
    assert.equal(trustWanted(undefined, 7, ctx), false);
    assert.deepEqual(ctx.warnings, [
      'the trust figures need at least 8 probe images (a fit and a held-out half) but the probe set has 7: trust figures skipped (trust: false / --no-trust silences this)',
    ]);
    for (const trust of [true, { bootstraps: 5 }])
      assert.throws(
        () => trustWanted(trust, 3, ctx),
        (e: unknown) =>
          e instanceof ArgumentError &&
          e.option === 'trust' &&
          /need at least 8 probe images .* but the probe set has 3$/.test(e.message),
      );
  });
});

describe('dissect stage: similarity', () => {
  const I = matrix(12, 6, 1);
  const T = matrix(9, 6, 2);
  const activations = new Map([
    ['a', matrix(12, 4, 3)],
    ['b', matrix(12, 3, 4)],
  ]);
  const concepts = Array.from({ length: 9 }, (_, i) => `concept ${i}`);

  test("one result per layer, in the layers' order, equal to computeSimilarity's", async () => {
    const ctx = context();
    const layers = await layerSimilarities(
      {
        similarity: 'soft_wpmi',
        imageFeatures: I,
        textFeatures: T,
        activations,
        infos: [{ name: 'b' }, { name: 'a' }],
        concepts,
        options: { topK: 3 },
        threads: 1,
      },
      ctx,
    );
    assert.deepEqual(
      layers.map((l) => l.layer),
      ['b', 'a'],
    );
    for (const l of layers) {
      const want = await computeSimilarity(
        'soft_wpmi',
        { imageFeatures: I, textFeatures: T, activations: activations.get(l.layer) as Matrix },
        { options: { topK: 3 }, threads: 1 },
      );
      assert.deepEqual(Array.from(l.result.labels), Array.from(want.labels), l.layer);
      assert.deepEqual(Array.from(l.result.scores), Array.from(want.scores), l.layer);
      assert.equal(l.concepts, concepts);
    }
    assert.ok(ctx.stages.has('similarity a') && ctx.stages.has('similarity b'));
    assert.ok(ctx.timings.similarity >= 0);
  });

  test('refuses features of different widths, and says how to lower a topK above the usable images', async () => {
    const input = { similarity: 'soft_wpmi' as const, activations, infos: [{ name: 'a' }], concepts };
    await assert.rejects(
      layerSimilarities({ ...input, imageFeatures: I, textFeatures: matrix(9, 5, 2) }, context()),
      (e: unknown) =>
        e instanceof ClipDissectError &&
        e.code === 'ERR_MODEL_CONFIG' &&
        e.message === 'CLIP image features have 6 columns but text features 5',
    );
    await assert.rejects(
      layerSimilarities({ ...input, imageFeatures: I, textFeatures: T, options: { topK: 20 } }, context()),
      (e: unknown) =>
        e instanceof ArgumentError &&
        /must be <= nImages.*: the probe set has only 12 usable images \(lower 'topK', e\.g\. to 6\)$/.test(
          e.message,
        ),
    );
  });
});

describe('dissect stage: outputs', () => {
  test('writes every result file; a layer named like a reserved file gets another .npy name', async () => {
    const I = matrix(12, 6, 1);
    const T = matrix(4, 6, 2);
    const A = matrix(12, 3, 3);
    const concepts = ['dog', 'cat', 'a, "quoted" one', 'sky'];
    const infos: LayerInfo[] = [
      {
        name: 'image_features',
        tensor: '/x/Relu_output_0',
        kind: 'vector',
        neurons: 3,
        shape: [3],
        warnings: [],
      },
    ];
    const activations = new Map([['image_features', A]]);
    const layers = await layerSimilarities(
      {
        similarity: 'cos_similarity',
        imageFeatures: I,
        textFeatures: T,
        activations,
        infos,
        concepts,
        options: {},
      },
      context(),
    );
    const out = tempDir('clip-dissect-out-');
    const result: DissectResult = {
      layers,
      images: Array.from({ length: 12 }, (_, i) => ({ index: i, source: `/probe/${i}.png` })),
      skipped: [],
      timings: { total: 1 },
      warnings: ['a warning'],
      cache: { hits: 0, misses: 0, corrupted: 0, writes: 0, dir: '/c', enabled: false },
      chunks: { text: { computed: 1, total: 1 }, images: { computed: 1, total: 1 } },
      imageFeatures: I,
      textFeatures: T,
      activations,
      inputs: { probe: { given: '/probe' } } as unknown as DissectResult['inputs'],
    };
    const files = await writeResults({ target: 'model.onnx', out }, result, {
      similarity: 'cos_similarity',
      pool: 'avg',
      token: 'cls',
      chunkSize: 256,
      textChunkSize: 2048,
      infos,
    });
    assert.deepEqual(
      files.map((f) => f.slice(out.length + 1)),
      [
        'descriptions.csv',
        'neurons.json',
        'image_features_2.npy',
        'image_features.npy',
        'text_features.npy',
        'images.txt',
        'args.json',
      ],
    );
    const npy = async (f: string) => npyToMatrix(await readNpy(join(out, f)), f);
    assert.deepEqual(await npy('image_features_2.npy'), A);
    // args.json and neurons.json are written by the results contract's writers: versioned, first key
    for (const f of ['args.json', 'neurons.json']) {
      const keys = Object.keys(JSON.parse(await readFile(join(out, f), 'utf8')));
      assert.equal(keys[0], 'schemaVersion', f);
    }
    assert.deepEqual(await npy('image_features.npy'), I);
    assert.deepEqual(await npy('text_features.npy'), T);
    const csv = readFileSync(join(out, 'descriptions.csv'), 'utf8').trim().split('\n');
    assert.equal(csv.length, 4);
    assert.equal(readFileSync(join(out, 'images.txt'), 'utf8').split('\n')[11], '/probe/11.png');
    const args = JSON.parse(readFileSync(join(out, 'args.json'), 'utf8'));
    assert.equal(args.command, 'dissect');
    assert.deepEqual(args.layers[0].file, 'image_features_2.npy');
    assert.deepEqual(args.inputs, result.inputs);
    assert.deepEqual(args.files.imageFeatures, { file: 'image_features.npy', shape: [12, 6] });
    assert.deepEqual(args.warnings, ['a warning']);
  });
});

describe('dissect stages with models: text features, image chunks', { skip: NEEDS_SHARED }, () => {
  const clip = tinyClipForSuite();
  // the hashes only key the cache here: any fixed strings do
  const hashes: ClipHashes = {
    config: 'c',
    tokenizer: 't',
    tokenizerConfig: 'tc',
    preprocessor: 'p',
    text: 'tx',
    vision: 'v',
  };
  const tower = () => ({
    dir: clip.dir(),
    dtype: 'fp32' as const,
    device: 'cpu' as const,
    threads: 1,
    cacheDir: tempDir('clip-dissect-cache-'),
    clipPreprocess: 'openai' as const,
  });

  it("text features: the encoder's, chunk by chunk; a rerun reads them all from the cache", async () => {
    const cache = new FeatureCache(tempDir('clip-dissect-cache-'), { fsync: false });
    const texts = RESULTS_CONCEPTS.map((c) => `a photo of ${c}`);
    let paused = 0;
    let resumed = 0;
    const pause = { pause: () => paused++, resume: () => resumed++ };
    const input = {
      texts,
      template: 'a photo of {}',
      textChunkSize: 8,
      clip: { ...tower(), id: 'tiny', hashes },
      cache,
      pause,
    };
    const ctx = context();
    const r = await textFeatures(input, ctx);
    assert.deepEqual(r.chunks, { computed: 2, total: 2 });
    assert.deepEqual([paused, resumed], [2, 2], 'the image workers wait while each chunk is encoded');
    assert.ok(ctx.timings.openClipText > 0 && ctx.timings.textFeatures >= ctx.timings.openClipText);
    const enc = await createOnnxClipEncoder(clip.dir(), { threads: 1, towers: 'text' });
    try {
      const want = await enc.encodeText(texts);
      assert.deepEqual([r.features.rows, r.features.cols], [want.rows, want.cols]);
      for (let i = 0; i < want.data.length; i++)
        assert.ok(Math.abs(r.features.data[i] - want.data[i]) <= 1e-5 * (1 + Math.abs(want.data[i])), `${i}`);
    } finally {
      await enc.release();
    }
    const again = await textFeatures(input, context());
    assert.deepEqual(again.chunks, { computed: 0, total: 2 });
    assert.deepEqual(again.features, r.features);
    assert.equal(paused, 2, 'no encoder run for cached chunks');
    // another template: other cache entries
    const other = await textFeatures({ ...input, template: '{}', texts: RESULTS_CONCEPTS }, context());
    assert.deepEqual(other.chunks, { computed: 2, total: 2 });
  });

  /** The image stage's inputs over `probe`, with the target opened (release it). */
  async function imageInput(
    probe: string,
    cache: FeatureCache,
    skipBadImages: boolean,
  ): Promise<{ input: ImageChunksInput; dataset: ProbeDataset; target: OnnxTargetModel; pf: Prefetcher }> {
    const dataset = await openProbeDataset(probe);
    const pre = await resolvePreprocess(PREPROCESS_JSON, undefined);
    const plan = await planImageChunks({
      dataset,
      cache,
      chunkSize: 8,
      batchSize: 5,
      device: 'cpu',
      targetPre: pre.config,
      clipPreprocessorFile: join(clip.dir(), 'preprocessor_config.json'),
      clipPreprocess: 'openai',
    });
    const target = await openModel(FOLDED, { threads: 1 }, pre);
    const infos = await target.describeDissectable('conv1,layer4');
    const parts = chunkParts(plan, {
      clipHashes: hashes,
      clipPreprocess: 'openai',
      dtype: 'fp32',
      device: 'cpu',
      targetSha: 'target',
      pool: 'avg',
      token: 'cls',
      channelsLast: false,
    });
    const pf = new Prefetcher(dataset, 1);
    const input: ImageChunksInput = {
      plan,
      parts,
      infos,
      target,
      pool: 'avg',
      clip: { ...tower(), id: 'tiny' },
      targetName: FOLDED,
      cache,
      prefetcher: pf,
      skipBadImages,
    };
    return { input, dataset, target, pf };
  }

  async function runImages(probe: string, cache: FeatureCache, skipBadImages: boolean) {
    const { input, target, pf } = await imageInput(probe, cache, skipBadImages);
    try {
      return { plan: input.plan, result: await imageChunks(input, context()) };
    } finally {
      await pf.release();
      await target.release();
    }
  }

  it("image chunks: extractActivations' activations and the encoder's image features; cached on rerun", async () => {
    const probe = probeFolder();
    const cache = new FeatureCache(tempDir('clip-dissect-cache-'), { fsync: false });
    const { plan, result: r } = await runImages(probe, cache, false);
    assert.deepEqual([plan.N, plan.nChunks, plan.batchSize], [22, 3, 5]);
    assert.deepEqual(plan.fresh, [true, true, true]);
    assert.deepEqual(r.chunks, { computed: 3, total: 3 });
    assert.equal(r.images.length, 22);
    assert.deepEqual(r.skipped, []);
    const acts = await extractActivations({
      target: FOLDED,
      layers: 'conv1,layer4',
      probe,
      preprocess: PREPROCESS_JSON,
      threads: 1,
    });
    for (const l of acts.layers)
      assert.deepEqual((r.activations.get(l.name) as Matrix).data, l.matrix.data, l.name);
    assert.deepEqual(
      r.images.map((i) => i.source),
      acts.images.map((i) => i.source),
    );
    const enc = await createOnnxClipEncoder(clip.dir(), { threads: 1, towers: 'vision' });
    try {
      assert.deepEqual([r.imageFeatures.rows, r.imageFeatures.cols], [22, enc.embedDim]);
      const d = enc.embedDim;
      for (const row of [0, 7, 21]) {
        const e = await enc.encodeImages(
          preprocessImage(await decodeImageRGB(r.images[row].source), enc.preprocess),
          1,
        );
        const got = r.imageFeatures.data.subarray(row * d, (row + 1) * d);
        for (let j = 0; j < d; j++)
          assert.ok(Math.abs(e.data[j] - got[j]) <= 1e-5 * (1 + Math.abs(e.data[j])), `row ${row} col ${j}`);
      }
    } finally {
      await enc.release();
    }

    const again = await runImages(probe, cache, false);
    assert.deepEqual(again.plan.fresh, [false, false, false]);
    assert.deepEqual(again.result.chunks, { computed: 0, total: 3 });
    assert.deepEqual(again.result.imageFeatures, r.imageFeatures);
    assert.deepEqual(again.result.activations, r.activations);
  });

  it('image chunks: bad images skipped and remembered by the cache; refused when no longer skipped', async () => {
    const probe = probeFolder({ 'zz_bad.jpg': 'truncated.jpg' });
    const cache = new FeatureCache(tempDir('clip-dissect-cache-'), { fsync: false });
    const { result: r } = await runImages(probe, cache, true);
    assert.equal(r.images.length, 22);
    assert.deepEqual(
      r.skipped.map((s) => s.index),
      [22],
    );
    assert.equal(r.imageFeatures.rows, 22);
    const cached = await runImages(probe, cache, true);
    assert.deepEqual(cached.result.chunks, { computed: 0, total: 3 });
    assert.match(cached.result.skipped[0].message, /zz_bad\.jpg: unreadable \(cached\)$/);
    await assert.rejects(
      runImages(probe, cache, false),
      (e: unknown) =>
        e instanceof ClipDissectError &&
        e.code === 'ERR_IMAGE' &&
        /^probe image 22 \(.*zz_bad\.jpg\) could not be read in an earlier run \(cached\); pass skipBadImages/.test(
          e.message,
        ),
    );
  });

  it('image chunks: every image unreadable is an error', async () => {
    const probe = tempDir('clip-dissect-probe-');
    const bad = readFileSync(new URL('../../../test/fixtures/images/truncated.jpg', import.meta.url));
    for (const n of ['a.jpg', 'b.jpg']) writeFileSync(join(probe, n), bad);
    const cache = new FeatureCache(tempDir('clip-dissect-cache-'), { enabled: false });
    await assert.rejects(
      runImages(probe, cache, true),
      (e: unknown) =>
        e instanceof ClipDissectError &&
        e.message === 'every one of the 2 probe images was skipped as unreadable',
    );
  });
});
