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
