/**
 * Decoding and preprocessing of probe images off the main thread, shared by extractActivations and dissect.
 * Internal.
 *
 * Each job decodes one image ONCE and derives one CHW float32 tensor per preprocessing (the target's and, in
 * dissect, CLIP's), so onnxruntime on the main thread never waits for resizing.
 */

import { platform } from '#platform';
import { DEFAULT_MEMORY_BUDGET } from '../compute/memory-budget.js';
import { decodeImageRGB, IMAGE_BYTES_PER_PIXEL, type RGBImage } from '../data/decode.js';
import { cropImage, normalizeCrop, type PreprocessConfig } from '../data/preprocess.js';
import type { ProbeDataset } from '../data/probe-dataset.js';
import { ArgumentError, ClipDissectError } from '../numeric/errors.js';
import type { WorkerHandle } from '../platform/types.js';

export interface Prepared {
  ok: true;
  /**
   * One resized and center-cropped image per preprocessing, in the pool's order, as HWC uint8 (cropImage: a
   * quarter of the float32 tensor's memory while it waits); {@link writeInput} normalises it into a batch.
   */
  data: Uint8Array[];
  /** Milliseconds of resizing and cropping (decoding not included). */
  ms: number;
}

/**
 * Writes preprocessing `slot` of a prepared image into `batch` as image `row` (CHW float32, the model input;
 * `normalizeCrop`). Returns the milliseconds it took.
 */
export function writeInput(
  r: Prepared,
  slot: number,
  config: PreprocessConfig,
  batch: Float32Array,
  row: number,
): number {
  const t = performance.now();
  const per = r.data[slot].length;
  normalizeCrop(r.data[slot], config, batch.subarray(row * per, (row + 1) * per));
  return performance.now() - t;
}
export interface PrepareFailed {
  ok: false;
  error: unknown;
}
export type PrepareOutcome = Prepared | PrepareFailed;

/**
 * Bytes of prepared images (uint8 crops) that dissect and extractActivations start while their sessions open,
 * before the first batch: the first 1,000 images for ResNet-50 + CLIP at 224 px (301 KB each). Opening the
 * sessions and encoding the concepts take ~5 s on the 2-vCPU machine, time for ~600 images on the core that
 * session creation leaves idle; images prepared later take CPU from onnxruntime.
 */
export const EARLY_PREFETCH_BYTES = 288 * 1024 * 1024;

/**
 * How many images to start before the first batch: EARLY_PREFETCH_BYTES of crops (`bytesPerImage` each) on
 * worker threads, one batch without workers (the main thread would crop them between onnxruntime runs).
 */
export function earlyPrefetch(bytesPerImage: number, batch: number, workers: number): number {
  return workers > 0 ? Math.max(batch, Math.floor(EARLY_PREFETCH_BYTES / bytesPerImage)) : batch;
}

/**
 * The most preprocessing workers accepted: the cores, at least 4, at most 64. A worker decodes one image at a
 * time, so more workers than cores only wait, each holding a decoded image (up to imagePixelLimit's bytes).
 */
export function maxWorkers(): number {
  return Math.min(64, Math.max(4, platform.host.availableParallelism()));
}

/** Checks a worker count: an integer from 0 to maxWorkers() (ArgumentError with option 'workers'). */
export function checkWorkers(workers: number | undefined): void {
  if (workers === undefined) return;
  const max = maxWorkers();
  if (!Number.isInteger(workers) || workers < 0 || workers > max)
    throw new ArgumentError(
      `'workers' must be an integer from 0 to ${max} (the cores of this machine, ${platform.host.availableParallelism()}, at least 4, at most 64) but got ${workers}`,
      { option: 'workers' },
    );
}

/**
 * The most pixels an image may have so that every worker (or, without workers, the main thread) can hold one
 * being decoded within `memoryBudget` bytes: 768 MiB and 1 worker allow 100 megapixels (10000×10000).
 */
export function imagePixelLimit(memoryBudget: number | undefined, workers: number): number {
  return Math.floor((memoryBudget ?? DEFAULT_MEMORY_BUDGET) / (IMAGE_BYTES_PER_PIXEL * Math.max(1, workers)));
}

/** Default worker count: 1 on the CPU (onnxruntime keeps the cores busy), cores - 1 (at least 1) on CUDA. */
export function defaultWorkers(device: 'cpu' | 'cuda'): number {
  return device === 'cuda' ? Math.max(1, platform.host.availableParallelism() - 1) : 1;
}

/** Worker threads running _preprocess-worker.js; one job per image, each to the least busy worker. */
class WorkerPool {
  private readonly workers: { worker: WorkerHandle; busy: number }[];
  private readonly pending = new Map<number, (o: PrepareOutcome) => void>();
  private nextId = 1;
  private failure: Error | null = null;
  /** Shared with the workers: 1 while they must not start another job (see pause()). */
  private readonly gate = new Int32Array(new SharedArrayBuffer(4));

  constructor(size: number, configs: readonly PreprocessConfig[], maxPixels: number | undefined) {
    const url = new URL('./_preprocess-worker.js', import.meta.url);
    const gate = this.gate;
    this.workers = Array.from({ length: size }, (_, slot) => {
      const worker = platform.workers.spawn(url, { configs, gate, maxPixels });
      worker.onMessage((m) => {
        const msg = m as {
          id: number;
          data?: Uint8Array[];
          ms: number;
          error?: { code: string; message: string };
        };
        const resolve = this.pending.get(msg.id);
        if (!resolve) return;
        this.pending.delete(msg.id);
        this.workers[slot].busy--;
        if (msg.error) resolve({ ok: false, error: new ClipDissectError(msg.error.code, msg.error.message) });
        else resolve({ ok: true, data: msg.data as Uint8Array[], ms: msg.ms });
      });
      worker.onError((e) => this.fail(e));
      worker.onExit((code) => {
        if (code !== 0) this.fail(new Error(`exited with code ${code}`));
      });
      return { worker, busy: 0 };
    });
  }

  private fail(e: Error): void {
    this.failure ??= e;
    for (const [id, resolve] of this.pending) {
      this.pending.delete(id);
      resolve({
        ok: false,
        error: new ClipDissectError('ERR_WORKER', `an image preprocessing worker failed: ${e.message}`, {
          cause: e,
        }),
      });
    }
  }

  submit(job: { path: string } | { image: RGBImage }): Promise<PrepareOutcome> {
    if (this.failure)
      return Promise.resolve({
        ok: false,
        error: new ClipDissectError(
          'ERR_WORKER',
          `an image preprocessing worker failed: ${this.failure.message}`,
        ),
      });
    let slot = 0;
    for (let s = 1; s < this.workers.length; s++)
      if (this.workers[s].busy < this.workers[slot].busy) slot = s;
    const id = this.nextId++;
    this.workers[slot].busy++;
    return new Promise((resolve) => {
      this.pending.set(id, resolve);
      this.workers[slot].worker.postMessage({ id, ...job });
    });
  }

  /** Workers finish the job at hand and start no other until resume(); works while this thread is blocked. */
  pause(): void {
    Atomics.store(this.gate, 0, 1);
  }

  resume(): void {
    Atomics.store(this.gate, 0, 0);
    Atomics.notify(this.gate, 0);
  }

  async release(): Promise<void> {
    this.resume();
    this.failure ??= new Error('released');
    await Promise.all(this.workers.map((w) => w.worker.terminate()));
  }
}

/**
 * Prepares probe images for one or more preprocessings: `workers` threads (0: the main thread resizes, only
 * sharp's decoding runs on libuv threads). Image files are decoded inside the workers; other sources (CIFAR
 * records) are loaded here and their pixels handed over.
 */
class ImagePreparer {
  private readonly pool: WorkerPool | null;

  constructor(
    private readonly dataset: ProbeDataset,
    private readonly configs: readonly PreprocessConfig[],
    workers: number,
    private readonly maxPixels: number | undefined,
  ) {
    this.pool = workers > 0 ? new WorkerPool(workers, configs, maxPixels) : null;
  }

  /** Probe image i, decoded once and preprocessed with each config. Never rejects: failures are outcomes. */
  prepare(i: number): Promise<PrepareOutcome> {
    const source = this.dataset.images[i].source;
    if (this.pool && platform.paths.isAbsolute(source)) return this.pool.submit({ path: source });
    // an image file is decoded as ProbeDataset.load does, within the size limit
    const load = platform.paths.isAbsolute(source)
      ? decodeImageRGB(source, { maxPixels: this.maxPixels })
      : this.dataset.load(i);
    return load
      .then(
        (image) => {
          if (this.pool) return this.pool.submit({ image });
          const t = performance.now();
          const data = this.configs.map((c) => cropImage(image, c));
          return { ok: true, data, ms: performance.now() - t } as PrepareOutcome;
        },
        (error) => ({ ok: false, error }) as PrepareOutcome,
      )
      .catch((error) => ({ ok: false, error }) as PrepareOutcome);
  }

  /** Holds the worker threads between jobs (see Prefetcher.pause); no effect without workers. */
  pause(): void {
    this.pool?.pause();
  }

  resume(): void {
    this.pool?.resume();
  }

  async release(): Promise<void> {
    await this.pool?.release();
  }
}

/**
 * Probe images prepared ahead of the loop that consumes them, for one set of preprocessings at a time on one
 * ImagePreparer whose workers live as long as that set is in use (across cache chunks). Jobs run in the order
 * they are started. Call release() when done.
 */
export class Prefetcher {
  private key: string | null = null;
  private preparer: ImagePreparer | null = null;
  private readonly jobs = new Map<number, Promise<PrepareOutcome>>();
  private paused = false;

  /** `maxPixels`: images larger than this are refused (see decodeImageRGB, imagePixelLimit). */
  constructor(
    private readonly dataset: ProbeDataset,
    private readonly workers: number,
    private readonly maxPixels?: number,
  ) {}

  /**
   * Stops the workers between two images until resume(), e.g. while onnxruntime runs on every core for
   * something else: the images are better prepared while a session opens on one core.
   */
  pause(): void {
    this.paused = true;
    this.preparer?.pause();
  }

  resume(): void {
    this.paused = false;
    this.preparer?.resume();
  }

  /** Whether images are being prepared with exactly these preprocessings. */
  uses(configs: readonly PreprocessConfig[]): boolean {
    return this.key === JSON.stringify(configs);
  }

  /** Switches to these preprocessings; images started for others are dropped (their workers stop). */
  async use(configs: readonly PreprocessConfig[]): Promise<void> {
    if (this.uses(configs)) return;
    await this.release();
    this.key = JSON.stringify(configs);
    this.preparer = new ImagePreparer(this.dataset, configs, this.workers, this.maxPixels);
    if (this.paused) this.preparer.pause();
  }

  /** Starts preparing the images `from .. to - 1` that were not started yet. */
  ahead(from: number, to: number): void {
    const p = this.active();
    for (let i = from; i < Math.min(to, this.dataset.images.length); i++)
      if (!this.jobs.has(i)) this.jobs.set(i, p.prepare(i));
  }

  /** Probe image i (started now if it was not), handed over: the prefetcher keeps no reference to it. */
  take(i: number): Promise<PrepareOutcome> {
    const job = this.jobs.get(i) ?? this.active().prepare(i);
    this.jobs.delete(i);
    return job;
  }

  private active(): ImagePreparer {
    if (!this.preparer) throw new Error('Prefetcher: use() must come first');
    return this.preparer;
  }

  async release(): Promise<void> {
    const p = this.preparer;
    this.preparer = null;
    this.key = null;
    this.jobs.clear();
    await p?.release();
  }
}
