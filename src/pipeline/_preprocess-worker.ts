/**
 * A worker thread that decodes and preprocesses probe images for extractActivations. Internal.
 *
 * workerData: { config: PreprocessConfig }. Messages in: `{ id, path }` (an image file: decoded here with
 * decodeImageRGB, exactly what ProbeDataset.load does for files) or `{ id, image }` (pixels the main thread
 * loaded, e.g. a CIFAR record). Out: `{ id, data, ms }` with the CHW float32 tensor (its buffer transferred) and the
 * milliseconds of its resize and normalisation, or `{ id, error: { code, message } }`. sharp is imported by the main thread before any worker starts (see
 * sharp's notes on worker threads).
 */
import { parentPort, workerData } from 'node:worker_threads';
import { decodeImageRGB, type RGBImage } from '../data/decode.js';
import { type PreprocessConfig, preprocessImage } from '../data/preprocess.js';
import { ClipDissectError } from '../numeric/errors.js';

const { config } = workerData as { config: PreprocessConfig };

interface Job {
  id: number;
  path?: string;
  image?: RGBImage;
}

// Jobs run concurrently: while sharp decodes one image on a libuv thread, this thread resizes another.
parentPort?.on('message', async (job: Job) => {
  try {
    const img = job.image ?? (await decodeImageRGB(job.path as string));
    const t0 = performance.now();
    const data = preprocessImage(img, config);
    parentPort?.postMessage({ id: job.id, data, ms: performance.now() - t0 }, [data.buffer as ArrayBuffer]);
  } catch (e) {
    const code = e instanceof ClipDissectError ? e.code : 'ERR_IMAGE';
    const message = e instanceof Error ? e.message : String(e);
    parentPort?.postMessage({ id: job.id, error: { code, message } });
  }
});
