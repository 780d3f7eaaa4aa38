/**
 * The image workers of dissect and extractActivations: crops equal the main thread's preprocessing, and a paused
 * Prefetcher starts no image until it is resumed.
 */
import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { decodeImageRGB } from '../../src/data/decode.js';
import { CLIP_PREPROCESS, IMAGENET_PREPROCESS, preprocessImage } from '../../src/data/preprocess.js';
import { openProbeDataset } from '../../src/data/probe-dataset.js';
import { Prefetcher, type PrepareOutcome, writeInput } from '../../src/pipeline/_preprocess-pool.js';
import { probeFolder } from './helpers.js';

const CONFIGS = [IMAGENET_PREPROCESS, CLIP_PREPROCESS];
const PER = 3 * 224 * 224;

describe('Prefetcher', () => {
  for (const workers of [0, 1]) {
    test(`workers ${workers}: prepared crops normalise to preprocessImage's tensors, bit for bit`, async () => {
      const dataset = await openProbeDataset(probeFolder());
      const pf = new Prefetcher(dataset, workers);
      try {
        await pf.use(CONFIGS);
        pf.ahead(0, 3);
        for (let i = 0; i < 3; i++) {
          const r = await pf.take(i);
          assert.ok(r.ok);
          const img = await decodeImageRGB(dataset.images[i].source);
          CONFIGS.forEach((cfg, slot) => {
            const batch = new Float32Array(2 * PER);
            writeInput(r, slot, cfg, batch, 1);
            assert.deepEqual(batch.subarray(PER), preprocessImage(img, cfg), `${i} ${slot}`);
            assert.ok(batch.subarray(0, PER).every((v) => v === 0));
          });
        }
      } finally {
        await pf.release();
      }
    });
  }

  test('a paused prefetcher prepares nothing until resumed, even for images started before', async () => {
    const dataset = await openProbeDataset(probeFolder());
    const pf = new Prefetcher(dataset, 1);
    try {
      await pf.use([IMAGENET_PREPROCESS]);
      pf.pause();
      pf.ahead(0, 4);
      let done = 0;
      const count = (r: PrepareOutcome) => {
        done++;
        return r;
      };
      const jobs: Promise<PrepareOutcome>[] = [];
      for (let i = 0; i < 4; i++) jobs.push(pf.take(i).then(count));
      await new Promise((r) => setTimeout(r, 400));
      assert.equal(done, 0, 'no image while paused');
      pf.resume();
      const out = await Promise.all(jobs);
      assert.equal(done, 4);
      assert.ok(out.every((r) => r.ok));
      // switching preprocessings keeps the pause state for the new workers
      pf.pause();
      await pf.use([CLIP_PREPROCESS]);
      const late = pf.take(4).then(count);
      await new Promise((r) => setTimeout(r, 300));
      assert.equal(done, 4);
      pf.resume();
      assert.ok((await late).ok);
    } finally {
      await pf.release();
    }
  });
});
