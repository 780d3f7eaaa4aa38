/**
 * A worker thread that decodes and preprocesses probe images for _preprocess-pool.ts. Internal.
 *
 * workerData: { configs: PreprocessConfig[] }. Messages in: `{ id, path }` (an image file: decoded here with
 * decodeImageRGB, exactly what ProbeDataset.load does for files) or `{ id, image }` (pixels the main thread
 * loaded, e.g. a CIFAR record). Out: `{ id, data, ms }` with one CHW float32 tensor per config (buffers
 * transferred) and the milliseconds of resizing and normalising, or `{ id, error: { code, message } }`. sharp is
 * imported by the main thread before any worker starts (see sharp's notes on worker threads).
 */
import { parentPort, workerData } from 'node:worker_threads';
import { decodeImageRGB, type RGBImage } from '../data/decode.js';
import { type PreprocessConfig, preprocessImage } from '../data/preprocess.js';
import { ClipDissectError } from '../numeric/errors.js';

const { configs } = workerData as { configs: PreprocessConfig[] };

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
parentPort?.on('message', (job: Job) => {
  queue.push(job);
  if (!busy) void drain();
});

async function drain(): Promise<void> {
  busy = true;
  for (let job = queue.shift(); job; job = queue.shift()) await run(job);
  busy = false;
}

async function run(job: Job): Promise<void> {
  try {
    const img = job.image ?? (await decodeImageRGB(job.path as string));
    const t0 = performance.now();
    const data = configs.map((c) => preprocessImage(img, c));
    parentPort?.postMessage(
      { id: job.id, data, ms: performance.now() - t0 },
      data.map((d) => d.buffer as ArrayBuffer),
    );
  } catch (e) {
    const code = e instanceof ClipDissectError ? e.code : 'ERR_IMAGE';
    const message = e instanceof Error ? e.message : String(e);
    parentPort?.postMessage({ id: job.id, error: { code, message } });
  }
}
