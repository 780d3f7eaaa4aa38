import { ArgumentError } from '../numeric/errors.js';
import type { Device } from '../runtime/index.js';

/**
 * Images per onnxruntime run on the CPU when the caller does not say. Measured on this project's 2-vCPU
 * machine (AVX-512): ResNet-50 takes ~25 ms an image in runs of 8 and ~62–87 ms in runs of 50–64, the
 * ViT-B/16 CLIP vision tower ~112 ms in runs of 1–8 and ~270 ms in runs of 50: big runs push the
 * intermediate activations out of the caches. On CUDA big runs are what keeps the GPU busy.
 */
export const DEFAULT_CPU_RUN_BATCH = 8;

/** Validates a `runBatchSize` option (undefined, or a positive integer). */
export function checkRunBatchSize(value: unknown): void {
  if (value !== undefined && !(Number.isInteger(value) && (value as number) >= 1))
    throw new ArgumentError(`'runBatchSize' must be a positive integer but got ${String(value)}`);
}

/** The images per run: the option, else DEFAULT_CPU_RUN_BATCH on the CPU and no limit on CUDA. */
export function runBatchFor(device: Device | undefined, option: number | undefined): number {
  if (option !== undefined) return option;
  return (device ?? 'cpu') === 'cpu' ? DEFAULT_CPU_RUN_BATCH : Number.POSITIVE_INFINITY;
}

/**
 * The images a pipeline step hands to a model: `batchSize` rounded down to a multiple of the run size (when it
 * holds at least one run), so that every run but a chunk's last has the same shape. onnxruntime plans memory
 * per input shape: a step of 50 in runs of 8 ends with a run of 2, and each new shape's first run is slow
 * (ResNet-50: ~0.3 s, ViT-B/16 ~0.6 s more on the 2-vCPU machine).
 */
export function alignToRuns(batchSize: number, runBatch: number): number {
  if (!Number.isFinite(runBatch) || batchSize <= runBatch) return batchSize;
  return batchSize - (batchSize % runBatch);
}
