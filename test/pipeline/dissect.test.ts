import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { existsSync, readdirSync, readFileSync, statSync, writeFileSync } from 'node:fs';
import { availableParallelism, hostname } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { fileURLToPath } from 'node:url';
import { computeSimilarity } from '../../src/compute/similarity/index.js';
import { decodeImageRGB } from '../../src/data/decode.js';
import { preprocessImage } from '../../src/data/preprocess.js';
import { npyToMatrix, readNpy } from '../../src/io/npy.js';
import { createOnnxClipEncoder } from '../../src/models/onnx-clip-encoder.js';
import { ArgumentError, ClipDissectError } from '../../src/numeric/errors.js';
import type { Matrix } from '../../src/numeric/matrix.js';
import { extractActivations } from '../../src/pipeline/activations.js';
import { type DissectOptions, type DissectResult, dissect } from '../../src/pipeline/dissect.js';
import type { ProgressEvent } from '../../src/progress.js';
import { tempDir } from '../helpers/cli.js';
import { assembleModelDir, NEEDS_SHARED } from '../models/clip-helpers.js';
import { FOLDED, PREPROCESS_JSON, probeFolder } from './helpers.js';

export const CONCEPTS = [
  'dog',
  'cat',
  'bird',
  'car',
  'tree',
  'water',
  'sky',
  'grass',
  'road',
  'person',
  'red',
  'green',
  'blue',
  'stripes',
  'dots',
  'wood',
  'metal',
  'glass',
  'a very long concept about a small house',
  'cloud',
];

const npy = async (p: string): Promise<Matrix> => npyToMatrix(await readNpy(p), p);

/** All files under a folder, recursively. */
function walk(dir: string): string[] {
  if (!existsSync(dir)) return [];
  const out: string[] = [];
  for (const e of readdirSync(dir, { withFileTypes: true })) {
    const p = join(dir, e.name);
    if (e.isDirectory()) out.push(...walk(p));
    else out.push(p);
  }
  return out;
}

function sameLabels(a: DissectResult, b: DissectResult): void {
  assert.equal(a.layers.length, b.layers.length);
  for (let i = 0; i < a.layers.length; i++) {
    assert.deepEqual(Array.from(a.layers[i].result.labels), Array.from(b.layers[i].result.labels));
    assert.deepEqual(Array.from(a.layers[i].result.scores), Array.from(b.layers[i].result.scores));
  }
}

describe('dissect (tiny CLIP, resnet_small, 22 fixture images)', { skip: NEEDS_SHARED }, () => {
  let clipDir = '';
  let cleanup: () => Promise<void> = async () => undefined;
  const probe = probeFolder();
  const conceptsFile = join(tempDir('clip-dissect-concepts-'), 'concepts.txt');
  writeFileSync(conceptsFile, `${CONCEPTS.join('\n')}\n`);
  const base = (cacheDir: string, out?: string): DissectOptions => ({
    target: FOLDED,
    layers: 'conv1,layer4',
    probe,
    concepts: conceptsFile,
    clip: clipDir,
    preprocess: PREPROCESS_JSON,
    options: { topK: 5 },
    batchSize: 5,
    chunkSize: 8,
    textChunkSize: 8,
    threads: 1,
    cacheDir,
    cacheFsync: false,
    out,
  });

  before(async () => {
    const m = await assembleModelDir();
    clipDir = m.dir;
    cleanup = m.cleanup;
  });
  after(() => cleanup());

  let first: DissectResult;
  const cacheDir = tempDir('clip-dissect-cache-');
  const out = tempDir('clip-dissect-out-');

  it('runs end to end and writes every file; labels equal computeSimilarity on the saved .npy files', async () => {
    const events: ProgressEvent[] = [];
    first = await dissect(base(cacheDir, out), { onProgress: (e) => events.push(e) });
    assert.equal(first.images.length, 22);
    assert.deepEqual(first.chunks, { text: { computed: 3, total: 3 }, images: { computed: 3, total: 3 } });
    for (const f of [
      'descriptions.csv',
      'neurons.json',
      'conv1.npy',
      'layer4.npy',
      'image_features.npy',
      'text_features.npy',
      'images.txt',
      'args.json',
    ])
      assert.ok(existsSync(join(out, f)), f);
    const I = await npy(join(out, 'image_features.npy'));
    const T = await npy(join(out, 'text_features.npy'));
    assert.deepEqual([I.rows, I.cols], [22, 16]);
    assert.deepEqual([T.rows, T.cols], [CONCEPTS.length, 16]);
    const csv = readFileSync(join(out, 'descriptions.csv'), 'utf8').trim().split('\n');
    assert.equal(csv[0], 'layer,unit,description,similarity');
    let rowsExpected = 1;
    for (const l of first.layers) {
      const A = await npy(join(out, `${l.layer}.npy`));
      assert.equal(A.rows, 22);
      const r = await computeSimilarity(
        'soft_wpmi',
        { imageFeatures: I, textFeatures: T, activations: A },
        { options: { topK: 5 }, threads: 1 },
      );
      assert.deepEqual(Array.from(l.result.labels), Array.from(r.labels), l.layer);
      assert.deepEqual(Array.from(l.result.scores), Array.from(r.scores), l.layer);
      for (let k = 0; k < A.cols; k++)
        assert.ok(
          csv.includes(`${l.layer},${k},${CONCEPTS[r.labels[k]]}`) ||
            csv.some((x) => x.startsWith(`${l.layer},${k},`)),
        );
      rowsExpected += A.cols;
    }
    assert.equal(csv.length, rowsExpected, 'one CSV row per neuron of every layer');
    assert.deepEqual(
      first.layers.map((l) => [l.layer, l.result.nNeurons]),
      [
        ['conv1', 8],
        ['layer4', 64],
      ],
    );
    const images = readFileSync(join(out, 'images.txt'), 'utf8').trim().split('\n');
    assert.equal(images.length, 22);
    const args = JSON.parse(readFileSync(join(out, 'args.json'), 'utf8'));
    assert.equal(args.command, 'dissect');
    // the native runtimes' versions: the installed packages'
    const installed = (name: string) =>
      JSON.parse(readFileSync(new URL(`../../../node_modules/${name}/package.json`, import.meta.url), 'utf8'))
        .version;
    assert.equal(args.onnxruntime, installed('onnxruntime-node'));
    assert.equal(args.sharp, installed('sharp'));
    assert.match(args.libvips, /^\d+\.\d+\.\d+/);
    assert.match(args.inputs.target.sha256, /^[0-9a-f]{64}$/);
    assert.match(args.inputs.clip.sha256.vision, /^[0-9a-f]{64}$/);
    assert.match(args.inputs.concepts.sha256, /^[0-9a-f]{64}$/);
    assert.match(args.inputs.probe.manifestSha256, /^[0-9a-f]{64}$/);
    const stages = new Set(events.map((e) => e.stage));
    for (const s of ['text features', 'images', 'similarity conv1', 'similarity layer4'])
      assert.ok(stages.has(s), s);
  });

  it('derives the activations and the CLIP features from the same images as the standalone paths', async () => {
    const acts = await extractActivations({
      target: FOLDED,
      layers: 'conv1,layer4',
      probe,
      preprocess: PREPROCESS_JSON,
      workers: 0,
      threads: 1,
    });
    for (const l of acts.layers)
      assert.deepEqual(
        Array.from((first.activations.get(l.name) as Matrix).data),
        Array.from(l.matrix.data),
        l.name,
      );
    const clip = await createOnnxClipEncoder(clipDir, { threads: 1 });
    try {
      const img = await decodeImageRGB(first.images[3].source);
      const e = await clip.encodeImages(preprocessImage(img, clip.preprocess), 1);
      const row = first.imageFeatures.data.subarray(3 * 16, 4 * 16);
      for (let j = 0; j < 16; j++)
        assert.ok(Math.abs(e.data[j] - row[j]) <= 1e-5 * (1 + Math.abs(e.data[j])), `col ${j}`);
    } finally {
      await clip.release();
    }
  });

  it('the same features with the images prepared on the main thread (workers 0) or on 2 workers', async () => {
    // runs of 2 images instead of 8: onnxruntime may round differently, so compare within 1e-5
    const close = (got: Float32Array, want: Float32Array, what: string) => {
      assert.equal(got.length, want.length, what);
      for (let i = 0; i < want.length; i++)
        assert.ok(Math.abs(got[i] - want[i]) <= 1e-5 * (1 + Math.abs(want[i])), `${what}[${i}]`);
    };
    for (const workers of [0, 2]) {
      const r = await dissect({ ...base(cacheDir), cache: false, workers, runBatchSize: 2 });
      close(r.imageFeatures.data, first.imageFeatures.data, `image features, workers ${workers}`);
      for (const [name, m] of first.activations)
        close((r.activations.get(name) as Matrix).data, m.data, `${name}, workers ${workers}`);
    }
    await assert.rejects(
      dissect({ ...base(cacheDir), workers: -1 }),
      /'workers' must be an integer from 0 to \d+ .* but got -1/,
    );
    // bounds from the machine, checked before anything is opened
    const maxW = Math.min(64, Math.max(4, availableParallelism()));
    await assert.rejects(
      dissect({ ...base(cacheDir), workers: maxW + 1 }),
      (e: unknown) =>
        e instanceof ArgumentError &&
        e.option === 'workers' &&
        e.message.includes(`from 0 to ${maxW} (the cores of this machine, ${availableParallelism()}`),
    );
    await assert.rejects(
      dissect({ ...base(cacheDir), threads: 4 * availableParallelism() + 1 }),
      (e: unknown) =>
        e instanceof ArgumentError &&
        e.option === 'threads' &&
        e.message.includes(
          `from 1 to ${4 * availableParallelism()} (4 × the ${availableParallelism()} cores`,
        ),
    );
  });

  it('a rerun reads every feature from the cache and gives the same labels', async () => {
    const again = await dissect(base(cacheDir));
    assert.deepEqual(again.chunks, { text: { computed: 0, total: 3 }, images: { computed: 0, total: 3 } });
    assert.equal(again.cache.writes, 0);
    assert.equal(again.cache.misses, 0);
    assert.equal(again.cache.hits, 3 + 3 * 4); // text chunks + per image chunk: kept, image, 2 layers
    assert.equal(again.files, undefined);
    assert.equal(again.timings.clipInference, undefined, 'CLIP never ran');
    assert.equal(again.timings.targetInference, undefined, 'the target never ran');
    sameLabels(first, again);
  });

  it('a new layer computes only that layer (image features come from the cache)', async () => {
    const r = await dissect({ ...base(cacheDir), layers: 'conv1,layer4,layer2' });
    assert.equal(r.chunks.images.computed, 3);
    assert.equal(r.timings.clipInference, undefined, 'CLIP image features were cached');
    assert.equal(r.cache.writes, 3, 'one layer2 entry per chunk');
  });

  it('a run stopped after its first chunk resumes from the cached chunks', async () => {
    const dir = tempDir('clip-dissect-cache-');
    const ac = new AbortController();
    await assert.rejects(
      dissect(base(dir), {
        signal: ac.signal,
        onProgress: (e) => {
          if (e.stage === 'images' && e.done >= 8) ac.abort(new Error('killed'));
        },
      }),
      /killed/,
    );
    const resumed = await dissect(base(dir));
    assert.deepEqual(resumed.chunks, { text: { computed: 0, total: 3 }, images: { computed: 2, total: 3 } });
    sameLabels(first, resumed);
  });

  it('a failure in the middle (unreadable image in chunk 2) keeps chunk 1; the fixed rerun resumes', async () => {
    const dir = tempDir('clip-dissect-cache-');
    const p = probeFolder({ 'rgb444_zz_broken.jpg': 'truncated.jpg' }); // sorts last: chunk 3 (images 16..22)
    const opts = { ...base(dir), probe: p };
    await assert.rejects(
      dissect(opts),
      (e: unknown) => e instanceof ClipDissectError && e.code === 'ERR_IMAGE',
    );
    const r = await dissect({ ...opts, skipBadImages: true });
    assert.equal(r.chunks.images.computed, 1, 'chunks 1 and 2 were cached by the failed run');
    assert.equal(r.images.length, 22);
    assert.equal(r.skipped.length, 1);
    const again = await dissect({ ...opts, skipBadImages: true });
    assert.equal(again.chunks.images.computed, 0);
    assert.equal(again.skipped.length, 1, 'skipped images are known from the cached kept list');
    await assert.rejects(dissect(opts), /could not be read in an earlier run/);
  });

  it('a corrupted cache entry is detected, never used, and recomputed', async () => {
    const files = walk(join(cacheDir, 'features', 'activations')).filter((f) => f.endsWith('.npy'));
    assert.ok(files.length >= 6);
    // an entry this run reads (the layer2 entries of an earlier test are not read)
    const victim = files.find(
      (f) => JSON.parse(readFileSync(f.replace(/\.npy$/, '.json'), 'utf8')).parts.layer === 'layer4',
    ) as string;
    const bytes = readFileSync(victim);
    bytes[bytes.length - 3] ^= 0x40; // one flipped bit in the data
    writeFileSync(victim, bytes);
    const warnings: string[] = [];
    const r = await dissect(base(cacheDir), { onWarning: (w) => warnings.push(w) });
    assert.equal(r.cache.corrupted, 1);
    assert.equal(r.chunks.images.computed, 1);
    assert.ok(
      warnings.some((w) => w.includes(victim) && /corrupted/.test(w)),
      warnings.join('\n'),
    );
    sameLabels(first, r);
    const fixed = await dissect(base(cacheDir));
    assert.equal(fixed.cache.corrupted, 0);
    assert.equal(fixed.chunks.images.computed, 0);
    assert.ok(statSync(victim).size > 0);
  });

  it('offline with a hub id that is not cached names the missing file', async () => {
    const dir = tempDir('clip-dissect-cache-');
    await assert.rejects(
      dissect({ ...base(dir), clip: 'nobody/not-a-cached-clip', offline: true }),
      (e: unknown) =>
        e instanceof ClipDissectError &&
        e.code === 'ERR_OFFLINE' &&
        e.message.includes('config.json') &&
        e.message.includes('nobody/not-a-cached-clip'),
    );
  });

  it("crops CLIP's input as clip.load ('openai', default) or as transformers ('hf'): features, args.json, cache key", async () => {
    const dir = fileURLToPath(new URL('../../../test/fixtures/clip-preprocess/', import.meta.url));
    const golden: { images: { image: string; offset: { openai: number[]; hf: number[] } }[] } = JSON.parse(
      readFileSync(join(dir, 'expected.json'), 'utf8'),
    );
    const cd = tempDir('clip-dissect-cache-');
    const runs = new Map<string, { r: DissectResult; out: string }>();
    for (const choice of [undefined, 'hf'] as const) {
      const o = tempDir('clip-dissect-out-');
      const r = await dissect({ ...base(cd, o), probe: dir, layers: 'layer4', clipPreprocess: choice });
      runs.set(choice ?? 'openai', { r, out: o });
    }
    const openai = runs.get('openai') as { r: DissectResult; out: string };
    const hf = runs.get('hf') as { r: DissectResult; out: string };
    assert.equal(openai.r.images.length, golden.images.length);
    // other CLIP inputs, other image-feature cache entries; the target's activations are the cached ones
    assert.equal(hf.r.chunks.images.computed, hf.r.chunks.images.total);
    assert.ok(hf.r.timings.clipInference !== undefined, 'CLIP ran again');
    assert.equal(hf.r.timings.targetInference, undefined, 'the target did not');
    for (const [choice, { out: o }] of runs) {
      const args = JSON.parse(readFileSync(join(o, 'args.json'), 'utf8'));
      assert.equal(args.inputs.clip.preprocess, choice);
      assert.equal(args.inputs.clip.preprocessing.cropRounding, choice === 'hf' ? 'floor' : 'round');
      assert.equal(args.inputs.clip.preprocessing.resize, 224);
    }
    for (const [choice, { r }] of runs) {
      const enc = await createOnnxClipEncoder(clipDir, {
        threads: 1,
        towers: 'vision',
        clipPreprocess: choice as 'openai' | 'hf',
      });
      try {
        for (let i = 0; i < r.images.length; i++) {
          const img = await decodeImageRGB(r.images[i].source);
          const e = await enc.encodeImages(preprocessImage(img, enc.preprocess), 1);
          const row = r.imageFeatures.data.subarray(i * 16, (i + 1) * 16);
          for (let j = 0; j < 16; j++)
            assert.ok(
              Math.abs(e.data[j] - row[j]) <= 1e-5 * (1 + Math.abs(e.data[j])),
              `${choice} ${i} col ${j}`,
            );
        }
      } finally {
        await enc.release();
      }
    }
    // the two differ exactly on the images whose odd overhang the two roundings crop one pixel apart
    for (let i = 0; i < openai.r.images.length; i++) {
      const name = openai.r.images[i].source.split(/[\\/]/).pop();
      const g = golden.images.find((c) => c.image === name);
      assert.ok(g, name);
      const a = openai.r.imageFeatures.data.subarray(i * 16, (i + 1) * 16);
      const b = hf.r.imageFeatures.data.subarray(i * 16, (i + 1) * 16);
      const d = Math.max(...Array.from(a, (v, j) => Math.abs(v - b[j])));
      if (g.offset.openai.join() === g.offset.hf.join()) assert.equal(d, 0, `${name}: same crop`);
      else assert.ok(d > 1e-4, `${name}: crops one pixel apart but features differ by only ${d}`);
    }
    await assert.rejects(
      dissect({ ...base(cd), clipPreprocess: 'torchvision' as never }),
      /'clipPreprocess' must be 'openai' or 'hf' but got "torchvision"/,
    );
  });

  it('rejects bad options', async () => {
    await assert.rejects(dissect({ ...base(cacheDir), template: 'no placeholder' }), /must contain \{\}/);
    await assert.rejects(
      dissect({ ...base(cacheDir), chunkSize: 0 }),
      /'chunkSize' must be a positive integer/,
    );
    await assert.rejects(dissect({ ...base(cacheDir), layers: 'layer9' }), /unknown layer 'layer9'/);
    await assert.rejects(dissect({ ...base(cacheDir), options: {} }), /only 22 usable images/);
  });

  it('checks the cheap things first: a topK above the probe set, a missing target, a file as out or cache', async () => {
    // a fresh cache: nothing may be computed or written before the errors
    const dir = tempDir('clip-dissect-cache-');
    await assert.rejects(
      dissect({ ...base(dir), options: { topK: 23 } }),
      (e: unknown) =>
        e instanceof ArgumentError &&
        e.option === 'topK' &&
        /'topK' must be <= nImages \(22\) but got 23: .*lower 'topK', e\.g\. to 11/.test(e.message),
    );
    assert.deepEqual(walk(join(dir, 'features')), [], 'no feature computed before the topK check');
    // a hub id that is not cached would be downloaded: the missing target fails first
    const missing = join(dir, 'no-such-model.onnx');
    await assert.rejects(
      dissect({ ...base(dir), target: missing, clip: 'nobody/not-a-cached-clip', offline: true }),
      (e: unknown) =>
        e instanceof ClipDissectError && e.code !== 'ERR_OFFLINE' && e.message.includes(missing),
    );
    const file = join(dir, 'a-file');
    writeFileSync(file, 'x');
    await assert.rejects(
      dissect({ ...base(dir), out: file }),
      (e: unknown) =>
        e instanceof ArgumentError && e.option === 'out' && e.message.includes(`'out' ${file} is a file`),
    );
    await assert.rejects(
      dissect({ ...base(file) }),
      (e: unknown) => e instanceof ArgumentError && e.option === 'cacheDir' && e.message.includes(file),
    );
    await assert.rejects(
      dissect({ ...base('/proc/clip-dissect-cache') }),
      (e: unknown) =>
        e instanceof ArgumentError && /under \/proc, a kernel pseudo file system/.test(e.message),
    );
  });

  it('warns once per run about concepts longer than the context, with their total count', async () => {
    // 12 long concepts over the 3 text chunks of 8
    const long = Array.from({ length: 12 }, (_, i) => `${'very '.repeat(90)}long concept ${i}`);
    const file = join(tempDir('clip-dissect-concepts-'), 'long.txt');
    writeFileSync(file, [...CONCEPTS.slice(0, 10), ...long].join('\n'));
    const warnings: string[] = [];
    const r = await dissect({ ...base(cacheDir), concepts: file }, { onWarning: (w) => warnings.push(w) });
    assert.equal(r.chunks.text.total, 3);
    const cut = warnings.filter((w) => /longer than CLIP's/.test(w));
    assert.equal(cut.length, 1, warnings.join('\n'));
    assert.match(cut[0], /^12 concept texts were longer than CLIP's 77 tokens and cut \(first: "very very /);
  });

  it('refuses a results folder another live run holds; takes over the lock of a dead one', async () => {
    const out = tempDir('clip-dissect-out-');
    const lock = join(out, '.clip-dissect.lock');
    // pid 1 is alive on every system; another host's lock is never taken over
    writeFileSync(
      lock,
      JSON.stringify({ pid: 1, host: hostname(), started: '2026-01-01T00:00:00.000Z', command: 'dissect' }),
    );
    await assert.rejects(
      dissect(base(cacheDir, out)),
      (e: unknown) =>
        e instanceof ClipDissectError &&
        e.code === 'ERR_BUSY' &&
        e.message ===
          `results folder ${out} is in use by pid 1 (started 2026-01-01T00:00:00.000Z: dissect); wait for it or choose another --out`,
    );
    assert.ok(!existsSync(join(out, 'neurons.json')));
    // a pid that has exited: its lock is stale
    const dead = spawnSync(process.execPath, ['-e', '0']).pid as number;
    writeFileSync(
      lock,
      JSON.stringify({
        pid: dead,
        host: hostname(),
        started: '2026-01-01T00:00:00.000Z',
        command: 'dissect',
      }),
    );
    const warnings: string[] = [];
    const r = await dissect(base(cacheDir, out), { onWarning: (w) => warnings.push(w) });
    assert.ok(r.files?.length);
    assert.ok(
      warnings.some((w) => w.includes(`locked by pid ${dead}`) && w.includes('lock taken over')),
      warnings.join('\n'),
    );
    assert.ok(!existsSync(lock), 'the lock goes when the run ends');
    assert.deepEqual(
      readdirSync(out).filter((f) => f.startsWith('.')),
      [],
      'no temporary or lock file left',
    );
  });

  it('applies the template to every concept (other text features, other cache entries)', async () => {
    const r = await dissect({ ...base(cacheDir), template: 'a photo of {}' });
    assert.equal(r.chunks.text.computed, 3);
    assert.equal(r.chunks.images.computed, 0);
    const clip = await createOnnxClipEncoder(clipDir, { threads: 1 });
    try {
      const e = await clip.encodeText(CONCEPTS.map((c) => `a photo of ${c}`));
      assert.deepEqual(Array.from(r.textFeatures.data), Array.from(e.data));
    } finally {
      await clip.release();
    }
  });
});
