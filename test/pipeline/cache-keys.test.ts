/**
 * The feature cache never serves stale features: every byte that decides a result is in its key — the target's
 * external-data files whatever their names, the CLIP towers' external data, tokenizer and config files.
 */
import assert from 'node:assert/strict';
import { readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { before, describe, it } from 'node:test';
import type { Matrix } from '../../src/numeric/matrix.js';
import { type DissectOptions, type DissectResult, dissect } from '../../src/pipeline/dissect.js';
import { tempDir } from '../helpers/cli.js';
import { rewriteWeights, saveWithExternalData } from '../helpers/external-data.js';
import { assembleModelDir, NEEDS_SHARED } from '../models/clip-helpers.js';
import { FOLDED, PREPROCESS_JSON, probeFolder } from './helpers.js';

const CONCEPTS = ['dog', 'cat', 'bird', 'car', 'tree', 'water', 'sky', 'grass', 'road', 'person'];

const layer4 = (r: DissectResult): Float32Array => (r.activations.get('layer4') as Matrix).data;

describe('cache keys cover every byte that decides a result', { skip: NEEDS_SHARED }, () => {
  const probe = probeFolder();
  const conceptsFile = join(tempDir('clip-dissect-concepts-'), 'concepts.txt');
  writeFileSync(conceptsFile, `${CONCEPTS.join('\n')}\n`);
  let clipDir = '';
  let reference: DissectResult;
  // 22 images in 2 chunks, 10 concepts in 2 chunks
  const opts = (target: string, cacheDir: string, clip = clipDir): DissectOptions => ({
    target,
    layers: 'layer4',
    probe,
    concepts: conceptsFile,
    clip,
    preprocess: PREPROCESS_JSON,
    options: { topK: 5 },
    batchSize: 8,
    chunkSize: 11,
    textChunkSize: 5,
    threads: 1,
    cacheDir,
    cacheFsync: false,
  });

  before(async () => {
    clipDir = (await assembleModelDir()).dir; // removed with the temp folders at exit
    reference = await dissect(opts(FOLDED, tempDir('clip-dissect-cache-')));
  });

  it("a target with external data in 'weights.bin': changed weights are recomputed, not read from the cache", async () => {
    const { model, data } = saveWithExternalData(FOLDED, tempDir(), 'model.onnx', 'weights.bin');
    const cacheDir = tempDir('clip-dissect-cache-');
    const first = await dissect(opts(model, cacheDir));
    assert.deepEqual(Array.from(layer4(first)), Array.from(layer4(reference)), 'the same network');
    rewriteWeights(data); // same size, same name; model.onnx untouched
    const changed = await dissect(opts(model, cacheDir));
    assert.deepEqual(changed.chunks, { text: { computed: 0, total: 2 }, images: { computed: 2, total: 2 } });
    assert.equal(changed.cache.writes, 2, 'the layer4 activations of both chunks, recomputed');
    assert.equal(changed.timings.clipInference, undefined, 'CLIP features still come from the cache');
    assert.notDeepEqual(Array.from(layer4(changed)), Array.from(layer4(first)));
    const fresh = await dissect({ ...opts(model, tempDir()), cache: false });
    assert.deepEqual(
      Array.from(layer4(changed)),
      Array.from(layer4(fresh)),
      'what a run without cache gives',
    );
    assert.deepEqual(Array.from(changed.layers[0].result.labels), Array.from(fresh.layers[0].result.labels));
  });

  it("a target whose external data location is written './x.bin' runs (dissect) and gives the same features", async () => {
    const { model } = saveWithExternalData(FOLDED, tempDir(), 'model.onnx', './x.bin');
    const r = await dissect(opts(model, tempDir('clip-dissect-cache-')));
    assert.deepEqual(Array.from(layer4(r)), Array.from(layer4(reference)));
    assert.deepEqual(Array.from(r.layers[0].result.labels), Array.from(reference.layers[0].result.labels));
  });

  it('CLIP towers with external data: changed text or vision weights are recomputed', async () => {
    const { dir } = await assembleModelDir('ext-clip');
    const onnxDir = join(dir, 'onnx');
    const text = saveWithExternalData(
      join(onnxDir, 'text_model.onnx'),
      onnxDir,
      'text_model.onnx',
      'text_model.onnx_data',
    );
    const vision = saveWithExternalData(
      join(onnxDir, 'vision_model.onnx'),
      onnxDir,
      'vision_model.onnx',
      './vision.bin',
    );
    const cacheDir = tempDir('clip-dissect-cache-');
    const first = await dissect(opts(FOLDED, cacheDir, dir));
    assert.deepEqual(Array.from(first.textFeatures.data), Array.from(reference.textFeatures.data));
    assert.deepEqual(Array.from(first.imageFeatures.data), Array.from(reference.imageFeatures.data));

    rewriteWeights(text.data);
    const t = await dissect(opts(FOLDED, cacheDir, dir));
    assert.deepEqual(t.chunks, { text: { computed: 2, total: 2 }, images: { computed: 0, total: 2 } });
    assert.notDeepEqual(Array.from(t.textFeatures.data), Array.from(first.textFeatures.data));
    const tFresh = await dissect({ ...opts(FOLDED, tempDir(), dir), cache: false });
    assert.deepEqual(Array.from(t.textFeatures.data), Array.from(tFresh.textFeatures.data));

    rewriteWeights(vision.data);
    const v = await dissect(opts(FOLDED, cacheDir, dir));
    assert.deepEqual(v.chunks, { text: { computed: 0, total: 2 }, images: { computed: 2, total: 2 } });
    assert.equal(v.timings.targetInference, undefined, 'the activations still come from the cache');
    assert.notDeepEqual(Array.from(v.imageFeatures.data), Array.from(t.imageFeatures.data));
    const vFresh = await dissect({ ...opts(FOLDED, tempDir(), dir), cache: false });
    assert.deepEqual(Array.from(v.imageFeatures.data), Array.from(vFresh.imageFeatures.data));
  });

  it('a changed tokenizer recomputes the text features; a changed config.json both CLIP features', async () => {
    const { dir } = await assembleModelDir('edited-clip');
    const cacheDir = tempDir('clip-dissect-cache-');
    await dissect(opts(FOLDED, cacheDir, dir));
    const rewrite = (file: string) => {
      const p = join(dir, file);
      writeFileSync(p, JSON.stringify(JSON.parse(readFileSync(p, 'utf8')), null, 3)); // other bytes
    };
    for (const [file, chunks] of [
      ['tokenizer.json', { text: { computed: 2, total: 2 }, images: { computed: 0, total: 2 } }],
      ['tokenizer_config.json', { text: { computed: 2, total: 2 }, images: { computed: 0, total: 2 } }],
      ['preprocessor_config.json', { text: { computed: 0, total: 2 }, images: { computed: 2, total: 2 } }],
      ['config.json', { text: { computed: 2, total: 2 }, images: { computed: 2, total: 2 } }],
    ] as const) {
      rewrite(file);
      const r = await dissect(opts(FOLDED, cacheDir, dir));
      assert.deepEqual(r.chunks, chunks, file);
      assert.equal(
        r.timings.targetInference,
        undefined,
        `${file}: the activations still come from the cache`,
      );
    }
  });
});
