/**
 * The probe-batch loop that extractActivations and dissect's image stage share (src/pipeline/_probe-batches.ts),
 * alone: real images prepared by a real Prefetcher, bad files skipped or refused by name.
 */
import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { decodeImageRGB } from '../../src/data/decode.js';
import { preprocessImage, preprocessShape } from '../../src/data/preprocess.js';
import { openProbeDataset } from '../../src/data/probe-dataset.js';
import { ClipDissectError } from '../../src/numeric/errors.js';
import { Prefetcher, writeInput } from '../../src/pipeline/_preprocess-pool.js';
import { type ProbeBatches, runProbeBatches } from '../../src/pipeline/_probe-batches.js';
import { PREPROCESS, probeFolder } from './helpers.js';

const [C, H, W] = preprocessShape(PREPROCESS);
const PER = C * H * W;

/** The golden images plus an unreadable text file (first, 'aa_…') and a truncated JPEG (last, 'zz_…'). */
const BAD = { 'aa_bad.png': 'not_an_image.txt', 'zz_bad.jpg': 'truncated.jpg' };

/** Runs the loop over `start .. end - 1` in batches of 5 and records every batch it ran. */
async function runAll(
  workers: number,
  o: { start?: number; end?: number; skipBadImages: boolean; extra?: Partial<ProbeBatches> },
) {
  const dataset = await openProbeDataset(probeFolder(BAD));
  const pf = new Prefetcher(dataset, workers);
  const batch = new Float32Array(5 * PER);
  const ran: { kept: number[]; rows: Float32Array }[] = [];
  const done: number[] = [];
  const timings: Record<string, number> = {};
  let before = 0;
  try {
    await pf.use([PREPROCESS]);
    const skipped = await runProbeBatches({
      dataset,
      prefetcher: pf,
      start: o.start ?? 0,
      end: o.end ?? dataset.images.length,
      batchSize: 5,
      skipBadImages: o.skipBadImages,
      timingKeys: { wait: 'waitKey', preprocess: 'preKey' },
      time: (k, ms) => {
        timings[k] = (timings[k] ?? 0) + ms;
      },
      beforeFirst: async () => {
        before++;
      },
      write: (r, n) => writeInput(r, 0, PREPROCESS, batch, n),
      run: async (kept) => {
        ran.push({ kept: [...kept], rows: batch.slice(0, kept.length * PER) });
      },
      onBatch: (end) => done.push(end),
      ...o.extra,
    });
    return { dataset, skipped, ran, done, timings, before };
  } finally {
    await pf.release();
  }
}

describe('runProbeBatches', () => {
  for (const workers of [0, 1]) {
    test(`workers ${workers}: every readable image once, in probe order, written as preprocessImage's tensor`, async () => {
      const r = await runAll(workers, { skipBadImages: true });
      const N = r.dataset.images.length;
      assert.equal(N, 24);
      assert.equal(r.before, 1, 'beforeFirst runs once');
      assert.deepEqual(r.done, [5, 10, 15, 20, 24], 'onBatch after each batch, with its end');
      assert.deepEqual(
        r.skipped.map((s) => [s.index, s.source]),
        [
          [0, r.dataset.images[0].source],
          [23, r.dataset.images[23].source],
        ],
      );
      assert.match(r.skipped[0].message, /aa_bad\.png: not a recognised image format/);
      assert.match(r.skipped[1].message, /zz_bad\.jpg: corrupt or truncated image/);
      // the batches keep their slots: the first batch has 4 rows (image 0 is skipped), the last 3
      assert.deepEqual(
        r.ran.map((b) => b.kept),
        [
          [1, 2, 3, 4],
          [5, 6, 7, 8, 9],
          [10, 11, 12, 13, 14],
          [15, 16, 17, 18, 19],
          [20, 21, 22],
        ],
      );
      for (const b of r.ran.filter((_, k) => k % 2 === 0))
        for (let q = 0; q < b.kept.length; q += 2) {
          const img = await decodeImageRGB(r.dataset.images[b.kept[q]].source);
          assert.deepEqual(
            b.rows.subarray(q * PER, (q + 1) * PER),
            preprocessImage(img, PREPROCESS),
            `image ${b.kept[q]}`,
          );
        }
      assert.deepEqual(Object.keys(r.timings).sort(), ['preKey', 'waitKey'], 'the caller names the timings');
    });
  }

  test('a range of the probe set (a cache chunk): its images only, batches counted from its start', async () => {
    const r = await runAll(1, { start: 8, end: 16, skipBadImages: false });
    assert.deepEqual(
      r.ran.map((b) => b.kept),
      [
        [8, 9, 10, 11, 12],
        [13, 14, 15],
      ],
    );
    assert.deepEqual(r.done, [13, 16]);
    assert.deepEqual(r.skipped, []);
  });

  test('without skipBadImages the first bad image stops the run, named with its index and the remedy', async () => {
    await assert.rejects(
      runAll(1, { skipBadImages: false }),
      (e: unknown) =>
        e instanceof ClipDissectError &&
        e.code === 'ERR_IMAGE' &&
        /aa_bad\.png: not a recognised image format .*\(probe image 0; skipBadImages \/ --skip-bad-images leaves such images out\)$/.test(
          e.message,
        ),
    );
  });

  test("a batch whose images are all skipped is not run; the run's errors and a stop signal pass through", async () => {
    const r = await runAll(0, { start: 23, end: 24, skipBadImages: true });
    assert.deepEqual(r.ran, []);
    assert.deepEqual(r.done, [24]);
    assert.deepEqual(
      r.skipped.map((s) => s.index),
      [23],
    );
    const boom = new Error('onnxruntime failed');
    await assert.rejects(
      runAll(0, {
        skipBadImages: true,
        extra: {
          run: async () => {
            throw boom;
          },
        },
      }),
      (e: unknown) => e === boom,
    );
    const stop = new AbortController();
    stop.abort(new Error('stopped'));
    await assert.rejects(runAll(0, { skipBadImages: true, extra: { signal: stop.signal } }), /stopped/);
  });
});
