/**
 * The probe-batch loop that extractActivations and dissect's image stage share: probe images `start .. end - 1`
 * in batches, each image taken from the Prefetcher (prepared on the worker threads), written into the caller's
 * batch buffers, bad images skipped or refused, then the batch handed to the caller's models.
 *
 * The next batch is started on the workers before the current one is written and run, so that it is prepared
 * while onnxruntime blocks the main thread. Internal.
 */
import type { ProbeDataset } from '../data/probe-dataset.js';
import { ClipDissectError } from '../numeric/errors.js';
import type { Prefetcher, Prepared, PrepareOutcome } from './_preprocess-pool.js';

/** A probe image left out as unreadable (`skipBadImages`). */
export interface SkippedImage {
  /** Position in the probe order. */
  index: number;
  source: string;
  message: string;
}

/** Error codes of images that `skipBadImages` skips (see decodeImageRGB). */
export const BAD_IMAGE_CODES: ReadonlySet<string> = new Set(['ERR_IMAGE', 'ERR_IMAGE_READ']);

export interface ProbeBatches {
  dataset: ProbeDataset;
  prefetcher: Prefetcher;
  /** The probe images `start .. end - 1`, in batches of `batchSize`. */
  start: number;
  end: number;
  batchSize: number;
  /** Leave out images that cannot be decoded (returned) instead of failing. */
  skipBadImages: boolean;
  /** Images are prepared ahead up to (not including) this index: at most one batch past the current one.
   * Default `end`. */
  aheadLimit?: number;
  signal?: AbortSignal;
  /** The caller's timing keys of waiting for prepared images and of writing them into the batch. */
  timingKeys: { wait: string; preprocess: string };
  /** Adds milliseconds to a timing key. */
  time: (key: string, ms: number) => void;
  /** Runs once the first batch's images are started, before they are awaited (a session is built meanwhile). */
  beforeFirst?: () => Promise<void>;
  /** Writes a prepared image into row `row` of the caller's batch buffers; returns the milliseconds it took. */
  write: (image: Prepared, row: number) => number;
  /** Runs the images written into rows 0 .. kept.length - 1; `kept`: their probe indices. Never called empty. */
  run: (kept: readonly number[]) => Promise<void>;
  /** After each batch: the index after its last image. */
  onBatch?: (batchEnd: number) => void;
}

/**
 * Runs the batches of `o` in probe order and returns the skipped images. Errors: ClipDissectError 'ERR_IMAGE' /
 * 'ERR_IMAGE_READ' naming the image (without `skipBadImages`), the signal's reason, and `run`'s errors.
 */
export async function runProbeBatches(o: ProbeBatches): Promise<SkippedImage[]> {
  const { prefetcher: pf, start, end, batchSize: bs } = o;
  const aheadLimit = o.aheadLimit ?? end;
  const skipped: SkippedImage[] = [];
  const batchOf = (b: number): Promise<PrepareOutcome>[] => {
    const jobs: Promise<PrepareOutcome>[] = [];
    for (let i = start + b * bs; i < Math.min(end, start + (b + 1) * bs); i++) jobs.push(pf.take(i));
    return jobs;
  };
  const nb = Math.ceil((end - start) / bs);
  let next: Promise<PrepareOutcome>[] | null = batchOf(0);
  if (o.beforeFirst) await o.beforeFirst();
  for (let b = 0; b < nb; b++) {
    o.signal?.throwIfAborted();
    const tw = performance.now();
    const results = await Promise.all(next as Promise<PrepareOutcome>[]);
    o.time(o.timingKeys.wait, performance.now() - tw);
    // the next batch goes to the workers before onnxruntime blocks this thread
    const batchEnd = Math.min(end, start + (b + 1) * bs);
    pf.ahead(batchEnd, Math.min(aheadLimit, batchEnd + bs));
    next = b + 1 < nb ? batchOf(b + 1) : null;
    const kept: number[] = [];
    for (let j = 0; j < results.length; j++) {
      const r = results[j];
      const idx = start + b * bs + j;
      if (!r.ok) {
        const e = r.error;
        if (!(e instanceof ClipDissectError && BAD_IMAGE_CODES.has(e.code))) throw e;
        if (!o.skipBadImages)
          throw new ClipDissectError(
            e.code,
            `${e.message} (probe image ${idx}; skipBadImages / --skip-bad-images leaves such images out)`,
            { cause: e },
          );
        skipped.push({ index: idx, source: o.dataset.images[idx].source, message: e.message });
        continue;
      }
      o.time(o.timingKeys.preprocess, r.ms + o.write(r, kept.length));
      kept.push(idx);
    }
    if (kept.length > 0) await o.run(kept);
    o.onBatch?.(batchEnd);
  }
  return skipped;
}
