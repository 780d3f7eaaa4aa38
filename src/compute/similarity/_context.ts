/**
 * What every kernel of the similarity engine shares: the run's sizes and top-k tracker (Ctx), stage timing, and
 * the concept-chunk helpers. Internal.
 */
import type { Matrix } from '../../numeric/matrix.js';
import { ComputeSession, type GraphBuilder } from '../_onnx.js';
import type { TopTracker } from './_topk-tracker.js';

export interface Ctx {
  n: number;
  m: number;
  d: number;
  k: number;
  top: number;
  /** Most-activating images recorded per neuron (the result's topImages). */
  nTop: number;
  keep?: Matrix;
  tracker: TopTracker;
  budget: number;
  threads?: number;
  progress: (done: number, total: number, unit?: string) => void;
  /** Adds wall-clock seconds to a stage. */
  time: (stage: string, seconds: number) => void;
}

/** Runs `f` and adds its wall-clock time to `stage`. */
export async function timed<T>(ctx: Ctx, stage: string, f: () => Promise<T> | T): Promise<T> {
  const t0 = performance.now();
  try {
    return await f();
  } finally {
    ctx.time(stage, (performance.now() - t0) / 1000);
  }
}

/** Sorted distinct values of an index array. */
export function distinctSorted(values: Int32Array, limit: number): Int32Array {
  const mark = new Uint8Array(limit);
  for (let i = 0; i < values.length; i++) mark[values[i]] = 1;
  let count = 0;
  for (let i = 0; i < limit; i++) count += mark[i];
  const out = new Int32Array(count);
  for (let i = 0, j = 0; i < limit; i++) if (mark[i]) out[j++] = i;
  return out;
}

/** Scales each row of `m` to unit L2 norm in place (zero rows stay zero). */
export function normalizeRowsInPlace(m: Matrix): void {
  const { rows, cols, data } = m;
  for (let i = 0; i < rows; i++) {
    const row = data.subarray(i * cols, (i + 1) * cols);
    let ss = 0;
    for (let j = 0; j < cols; j++) ss += row[j] * row[j];
    if (ss > 0) {
      const inv = 1 / Math.sqrt(ss);
      for (let j = 0; j < cols; j++) row[j] *= inv;
    }
  }
}

/**
 * Rows [c0, c1) of T, each scaled to unit L2 norm and then by `scale`, followed by zero rows up to
 * `padTo` rows: a graph constant of shape padTo×d.
 */
export function textChunk(T: Matrix, c0: number, c1: number, scale = 1, padTo = c1 - c0): Float32Array {
  const d = T.cols;
  const out = new Float32Array(padTo * d);
  out.set(T.data.subarray(c0 * d, c1 * d));
  for (let r = 0; r < c1 - c0; r++) {
    let ss = 0;
    for (let t = 0; t < d; t++) ss += out[r * d + t] ** 2;
    const f = ss > 0 ? scale / Math.sqrt(ss) : 0;
    for (let t = 0; t < d; t++) out[r * d + t] *= f;
  }
  return out;
}

/** A Gemm bias that is 0 for the w real columns and −1e30 for the padding columns (softmax weight 0). */
export function paddingBias(w: number, wp: number): Float32Array {
  const b = new Float32Array(wp);
  b.fill(-1e30, w);
  return b;
}

export function recordChunk(ctx: Ctx, data: Float32Array, stride: number, width: number, c0: number): void {
  ctx.tracker.update(data, stride, width, c0);
  if (ctx.keep) {
    const { m } = ctx;
    for (let r = 0; r < ctx.k; r++)
      ctx.keep.data.set(data.subarray(r * stride, r * stride + width), r * m + c0);
  }
}

/**
 * Runs a graph whose input 'T' is a chunk of normalised concept rows and whose output 'S' is the K×chunk
 * score block, over every concept chunk of width `mc`, and merges each block into the top-k.
 */
export async function scoreConceptChunks(
  ctx: Ctx,
  gb: GraphBuilder,
  T: Matrix,
  mc: number,
  threads: number,
  fixed: Record<string, [Float32Array, readonly number[]]>,
  /** Inputs that follow the chunk, e.g. a per-concept vector. */
  perChunk: (c0: number, c1: number) => Record<string, [Float32Array, readonly number[]]> = () => ({}),
): Promise<void> {
  const { m, d } = ctx;
  const chunks = Math.ceil(m / mc);
  const s = await ComputeSession.create(gb, { threads });
  try {
    for (let ch = 0; ch < chunks; ch++) {
      const c0 = ch * mc;
      const c1 = Math.min(m, c0 + mc);
      const w = c1 - c0;
      const Tc = textChunk(T, c0, c1);
      const feeds = { ...fixed, ...perChunk(c0, c1), T: [Tc, [w, d]] as [Float32Array, number[]] };
      const S = (await timed(ctx, 'onnxruntime', () => s.run(feeds))).S.data;
      await timed(ctx, 'top-k', () => recordChunk(ctx, S, w, w, c0));
      ctx.progress(ch + 1, chunks, 'chunks');
    }
  } finally {
    await s.release();
  }
}
