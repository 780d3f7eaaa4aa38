/**
 * A worker thread that decodes and preprocesses probe images for _preprocess-pool.ts. Internal.
 *
 * Worker data: { configs: PreprocessConfig[], gate: Int32Array, maxPixels?: number } (shared; no job starts while gate[0] is 1). Messages in: `{ id, path }` (an image file: decoded here with
 * decodeImageRGB, exactly what ProbeDataset.load does for files) or `{ id, image }` (pixels the main thread
 * loaded, e.g. a CIFAR record). Out: `{ id, data, ms }` with one HWC uint8 crop per config (cropImage; buffers
 * transferred) and the milliseconds of resizing and cropping, or `{ id, error: { code, message } }`. sharp is
 * imported by the main thread before any worker starts (see sharp's notes on worker threads).
 */
import { platform } from '#platform';
import { decodeImageRGB, type RGBImage } from '../data/decode.js';
import { cropImage, type PreprocessConfig } from '../data/preprocess.js';
import { ClipDissectError } from '../numeric/errors.js';
import type { ParentChannel } from '../platform/types.js';

function workerChannel(): ParentChannel {
  const channel = platform.workers.parent();
  if (channel === undefined) throw new Error('_preprocess-worker.js runs only as a worker thread');
  return channel;
}
const parent = workerChannel();
const { configs, gate, maxPixels } = parent.data as {
  configs: PreprocessConfig[];
  gate: Int32Array;
  maxPixels?: number;
};

interface Job {
  id: number;
  path?: string;
  image?: RGBImage;
}

// One job at a time, decoding then resizing: preprocessing takes at most one core, so onnxruntime (and the
// sessions being opened) keep the others. Concurrent jobs would put several sharp decodes on libuv threads at
// once (measured: opening CLIP's sessions took 5.7 s instead of 3.6 s beside a burst of 256 decodes).
const queue: Job[] = [];
let busy = false;
parent.onMessage((job) => {
  queue.push(job as Job);
  if (!busy) void drain();
});

async function drain(): Promise<void> {
  busy = true;
  for (let job = queue.shift(); job; job = queue.shift()) {
    // paused by the main thread (it may be blocked in onnxruntime, so the flag is shared memory)
    while (Atomics.load(gate, 0) === 1) Atomics.wait(gate, 0, 1);
    await run(job);
  }
  busy = false;
}

async function run(job: Job): Promise<void> {
  try {
    const img = job.image ?? (await decodeImageRGB(job.path as string, { maxPixels }));
    const t0 = performance.now();
    const data = configs.map((c) => cropImage(img, c));
    parent.transferMessage(
      { id: job.id, data, ms: performance.now() - t0 },
      data.map((d) => d.buffer as ArrayBuffer),
    );
  } catch (e) {
    const code = e instanceof ClipDissectError ? e.code : 'ERR_IMAGE';
    const message = e instanceof Error ? e.message : String(e);
    parent.postMessage({ id: job.id, error: { code, message } });
  }
}
