/** Progress of a long operation, reported through a typed callback; only the CLI renders it. */
export interface ProgressEvent {
  /** What is running, e.g. 'similarity', 'text features'. */
  stage: string;
  /** Units finished so far (images, concepts, blocks: `unit` says which). */
  done: number;
  /** Units in all. For unit 'bytes' (a download), 0 while the size is unknown (then the last event's total is the size). */
  total: number;
  /** What `done` and `total` count. */
  unit?: string;
}

export type ProgressCallback = (event: ProgressEvent) => void;

/**
 * The second argument of every long-running entry point (`dissect(options, hooks)`, `evaluate`,
 * `extractActivations`, …): how the caller hears about the run and stops it.
 */
export interface RunHooks {
  onProgress?: ProgressCallback;
  /** Non-fatal problems as they happen (results that keep a `warnings` list hold them too). */
  onWarning?: (message: string) => void;
  /** Stops the run at its next checkpoint (between batches, blocks or runs): the promise rejects with the
   * signal's reason; what is already on disk (cache entries, finished files) stays. */
  signal?: AbortSignal;
}
