/**
 * How the model factories (`createOnnxClipEncoder`, `createOnnxSentenceEncoder`, `createOnnxTargetModel`)
 * honour their RunHooks: download progress from the hooks, downloads and openings stopped by the signal.
 */
import type { RunHooks } from '../progress.js';
import type { HubOptions } from './_hub.js';

/**
 * The hub options a factory downloads with: progress from the hooks (else the older `onProgress` option), and
 * the hooks' signal, which stops a download in the middle of a file.
 */
export function hubOptionsWith<T extends HubOptions>(options: T, { onProgress, signal }: RunHooks): T {
  const progress = onProgress ?? options.onProgress;
  return {
    ...options,
    ...(progress ? { onProgress: progress } : {}),
    ...(signal ? { signal } : {}),
  };
}

/**
 * Opens a model under the hooks' signal: checked before, and after the opening (the model opened meanwhile is
 * released); a failure while the signal is aborted rejects with the signal's reason, as every long-running
 * entry point does, instead of the download or session error the abort caused.
 */
export async function openUnder<T extends { release(): Promise<void> }>(
  signal: AbortSignal | undefined,
  open: () => Promise<T>,
): Promise<T> {
  signal?.throwIfAborted();
  let model: T;
  try {
    model = await open();
  } catch (e) {
    signal?.throwIfAborted();
    throw e;
  }
  if (signal?.aborted) {
    await model.release();
    signal.throwIfAborted();
  }
  return model;
}
