/** The bound on the similarity engine's large working buffers (and on the images decoded at once). */
import { ArgumentError } from '../numeric/errors.js';

const MiB = 1024 * 1024;

/** The default `memoryBudget`, in bytes: 768 MiB. */
export const DEFAULT_MEMORY_BUDGET = 768 * MiB;

/** Checks a `memoryBudget` option: at least 1 MiB (ArgumentError with option 'memoryBudget'). */
export function checkMemoryBudget(memoryBudget: number | undefined): void {
  if (memoryBudget !== undefined && !(memoryBudget >= MiB))
    throw new ArgumentError(`'memoryBudget' must be at least 1 MiB (${MiB} bytes) but got ${memoryBudget}`, {
      option: 'memoryBudget',
    });
}
