/**
 * The fast similarity engine: the five CLIP-Dissect similarity functions over real-sized inputs
 * (N = 10⁴ images, M = 2·10⁴ concepts, K = 2048 neurons) in seconds and bounded memory.
 *
 * - Matrix products run in onnxruntime (graphs built at run time, MLAS SGEMM, all cores).
 * - SoftWPMI / WPMI stream the probe images in blocks: for each block, onnxruntime gives the softmax
 *   Q = softmax(a·P) of just those images, and a SIMD WebAssembly kernel multiplies each neuron's
 *   factors (c_r + p_r·Q) into a per-(neuron, concept) product whose binary exponent is carried
 *   separately, so Σ_r log(...) costs one log per (neuron, concept) instead of top_k of them. Only
 *   images that are in some neuron's top-k are ever scored.
 * - Concepts are processed in chunks sized to `memoryBudget`; only the top `top` concepts per neuron
 *   are kept unless `keepMatrix` asks for the full K×M matrix.
 * - cos_similarity uses Âᵀ·P̂ = (ÂᵀI)·Tᵀ / ‖P_m‖ with ‖P_m‖² = T_m (IᵀI) T_mᵀ, never forming P.
 * - rank_reorder sorts each (neuron, concept) column with a SIMD bitonic network, 4 concepts at once.
 */
import { availableParallelism } from 'node:os';
import { ArgumentError } from '../numeric/errors.js';
import { checkFinite, createMatrix, gatherRows, type Matrix } from '../numeric/matrix.js';
import { normalizeRows } from '../numeric/reductions.js';
import {
  type CosSimilarityCubedOptions,
  checkSimilarityName,
  type RankReorderOptions,
  rankProbabilities,
  resolveSimilarityOptions,
  type SimilarityName,
  type SimilarityOptionsMap,
  type SoftWpmiOptions,
  type WpmiOptions,
} from '../numeric/similarity-options.js';
import {
  checkInputShapes,
  deadNeurons,
  rankReorderBaseline,
  type SimilarityInputs,
} from '../numeric/similarity-reference.js';
import { columnTopK } from '../numeric/topk.js';
import type { RunHooks } from '../progress.js';
import { ComputeSession, checkThreads, GraphBuilder } from './_onnx.js';
import { KernelArena, KernelPool, pad4, type StealSpec, splitRange, stealSlices } from './_wasm.js';

/** Target size of a block of Q (images × concepts of a chunk) in soft_wpmi / wpmi. */
const Q_BLOCK_BYTES = 20 * 1024 * 1024;

/**
 * Internal (src/pipeline/trust.ts reruns the function on resamples of one layer): work already done for a
 * run, so that it is not redone. Every result equals the plain run's.
 */
export interface SimilarityReuse {
  /** soft_wpmi / wpmi: columnTopK(activations, topK) of the run (K×topK). */
  topIndices?: Int32Array;
  /** soft_wpmi / wpmi: Q = softmax(a·Î·Tᵀ) of a set of images (pmiSoftmaxRows), used when one concept chunk holds every concept. */
  softmax?: PmiSoftmax;
  /** Per image of the run, its row in `softmax` (default: the same index). */
  softmaxRows?: ArrayLike<number>;
  /** cos_similarity: ‖P_m‖ of every concept for the run's image features (cosConceptNorms). */
  conceptNorms?: Float32Array;
}

/** Q = softmax(a·Î·Tᵀ) of every row of I: the same graph as one concept chunk of pmiEngine. */
export interface PmiSoftmax {
  a: number;
  /** Row length: the concepts padded to a multiple of 4 (the padding is 0). */
  width: number;
  textFeatures: Matrix;
  data: Float32Array;
  /** The kernel memory of the runs given this softmax, made by the first of them (runs must not overlap). */
  arena?: KernelArena;
}

/** The graph of one concept chunk's softmax block in pmiEngine; inputs X (rows×d), T (wp×d), optionally L. */
function softmaxGraph(d: number, w: number, wp: number, a: number, lse: boolean): GraphBuilder {
  const gb = new GraphBuilder();
  gb.input('X', ['n', d]);
  // T is fed as an input: onnxruntime's weight pre-packing measured no faster here and costs a
  // session-creation copy of the whole concept matrix
  gb.input('T', [wp, d]);
  const gemmInputs = ['X', 'T'];
  if (wp !== w) gemmInputs.push(gb.constant('pad', [wp], paddingBias(w, wp)));
  gb.op('Gemm', gemmInputs, 'P', { transB: 1, alpha: { float: a } });
  if (lse) {
    gb.input('L', ['n', 1]);
    gb.op('Sub', ['P', 'L'], 'PL');
    gb.op('Exp', ['PL'], 'Q');
  } else {
    gb.op('Softmax', ['P'], 'Q', { axis: 1 });
  }
  gb.output('Q', ['n', wp]);
  return gb;
}

/**
 * Q = softmax(a·Î·Tᵀ) of every row of I (N × pad4(M) floats), for SimilarityReuse.softmax: a soft_wpmi / wpmi
 * run then copies its images' rows instead of running onnxruntime.
 */
export async function pmiSoftmaxRows(I: Matrix, T: Matrix, a: number, threads?: number): Promise<PmiSoftmax> {
  const { rows: n, cols: d } = I;
  const m = T.rows;
  const wp = pad4(m);
  const X = createMatrix(n, d, I.data.slice());
  normalizeRowsInPlace(X);
  const data = new Float32Array(n * wp);
  const s = await ComputeSession.create(softmaxGraph(d, m, wp, a, false), { threads });
  try {
    const nb = Math.max(16, Math.floor(Q_BLOCK_BYTES / (wp * 4)));
    const Tc = textChunk(T, 0, m, 1, wp);
    for (let r0 = 0; r0 < n; r0 += nb) {
      const r1 = Math.min(n, r0 + nb);
      await s.run(
        { X: [X.data.subarray(r0 * d, r1 * d), [r1 - r0, d]], T: [Tc, [wp, d]] },
        { Q: [data.subarray(r0 * wp, r1 * wp), [r1 - r0, wp]] },
      );
    }
  } finally {
    await s.release();
  }
  return { a, width: wp, textFeatures: T, data };
}

export interface SimilarityRunOptions<F extends SimilarityName = SimilarityName> {
  /** The function's hyperparameters; defaults (paper Appendix A.1) are spread first. */
  options?: Partial<SimilarityOptionsMap[F]>;
  /** Concepts kept per neuron, best first. Default 5. */
  top?: number;
  /** Most-activating probe images recorded per neuron. Default 10. */
  topImages?: number;
  /** Also return the full K×M score matrix (K·M·4 bytes). Default false. */
  keepMatrix?: boolean;
  /** Bound, in bytes, on the engine's large working buffers; concepts are chunked to fit. Default 768 MiB. */
  memoryBudget?: number;
  /** onnxruntime threads. Default: every core. */
  threads?: number;
}

export interface SimilarityResult {
  similarity: SimilarityName;
  /** The hyperparameters used (defaults filled in). */
  options: Record<string, number>;
  nImages: number;
  nConcepts: number;
  nNeurons: number;
  /** Concepts kept per neuron in topConcepts / topScores. */
  top: number;
  /** Winning concept index per neuron (K). */
  labels: Int32Array;
  /** Winning score per neuron (K). */
  scores: Float32Array;
  /** K×top concept indices, best first. */
  topConcepts: Int32Array;
  /** K×top scores matching topConcepts. */
  topScores: Float32Array;
  /** 1 where the neuron's activation is constant over the probe set (dead); its scores are meaningless. */
  dead: Uint8Array;
  /** Images recorded per neuron in topImages. */
  nTopImages: number;
  /** K×nTopImages probe-image indices, most activating first (ties: lower index first). */
  topImages: Int32Array;
  /** The full K×M score matrix, when `keepMatrix` was set. */
  matrix?: Matrix;
  /** Wall-clock seconds by stage ('onnxruntime', 'kernels', 'total', …), for benchmarks. */
  timings: Record<string, number>;
}

const MiB = 1024 * 1024;

/** Keeps the best `top` (value, index) pairs of each of K rows while concept chunks stream by. */
class TopTracker {
  readonly idx: Int32Array;
  readonly val: Float32Array;
  constructor(
    readonly rows: number,
    readonly top: number,
  ) {
    this.idx = new Int32Array(rows * top).fill(-1);
    this.val = new Float32Array(rows * top).fill(Number.NEGATIVE_INFINITY);
  }

  /**
   * Merges a chunk: row r's values are `data[r*stride + j]` for j < width, concept index c0 + j.
   * Chunks arrive in increasing concept order, so a tie never displaces an earlier (lower) index.
   */
  update(data: Float32Array, stride: number, width: number, c0: number): void {
    const { top, idx, val } = this;
    for (let r = 0; r < this.rows; r++) {
      const o = r * top;
      const base = r * stride;
      let worst = val[o + top - 1];
      let worstIdx = idx[o + top - 1];
      for (let j = 0; j < width; j++) {
        const v = data[base + j];
        if (Number.isNaN(v) || (!(v > worst) && worstIdx !== -1)) continue;
        // insert keeping the row sorted descending
        let pos = top - 1;
        while (pos > 0 && (v > val[o + pos - 1] || idx[o + pos - 1] === -1)) {
          val[o + pos] = val[o + pos - 1];
          idx[o + pos] = idx[o + pos - 1];
          pos--;
        }
        val[o + pos] = v;
        idx[o + pos] = c0 + j;
        worst = val[o + top - 1];
        worstIdx = idx[o + top - 1];
      }
    }
  }

  /** Rows that saw only NaN get concept 0 with a NaN score. */
  finish(): void {
    for (let i = 0; i < this.idx.length; i++) {
      if (this.idx[i] === -1) {
        this.idx[i] = 0;
        this.val[i] = Number.NaN;
      }
    }
  }
}

interface Ctx {
  n: number;
  m: number;
  d: number;
  k: number;
  top: number;
  keep?: Matrix;
  tracker: TopTracker;
  budget: number;
  threads?: number;
  progress: (done: number, total: number, unit?: string) => void;
  /** Adds wall-clock seconds to a stage. */
  time: (stage: string, seconds: number) => void;
}

/** Runs `f` and adds its wall-clock time to `stage`. */
async function timed<T>(ctx: Ctx, stage: string, f: () => Promise<T> | T): Promise<T> {
  const t0 = performance.now();
  try {
    return await f();
  } finally {
    ctx.time(stage, (performance.now() - t0) / 1000);
  }
}

/** Sorted distinct values of an index array. */
function distinctSorted(values: Int32Array, limit: number): Int32Array {
  const mark = new Uint8Array(limit);
  for (let i = 0; i < values.length; i++) mark[values[i]] = 1;
  let count = 0;
  for (let i = 0; i < limit; i++) count += mark[i];
  const out = new Int32Array(count);
  for (let i = 0, j = 0; i < limit; i++) if (mark[i]) out[j++] = i;
  return out;
}

/** Scales each row of `m` to unit L2 norm in place (zero rows stay zero). */
function normalizeRowsInPlace(m: Matrix): void {
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
function textChunk(T: Matrix, c0: number, c1: number, scale = 1, padTo = c1 - c0): Float32Array {
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
function paddingBias(w: number, wp: number): Float32Array {
  const b = new Float32Array(wp);
  b.fill(-1e30, w);
  return b;
}

function recordChunk(ctx: Ctx, data: Float32Array, stride: number, width: number, c0: number): void {
  ctx.tracker.update(data, stride, width, c0);
  if (ctx.keep) {
    const { m } = ctx;
    for (let r = 0; r < ctx.k; r++)
      ctx.keep.data.set(data.subarray(r * stride, r * stride + width), r * m + c0);
  }
}

/** SoftWPMI and WPMI: S[k,m] = Σ_r log(c_r + p_r·Q[i_r,m]); score = S − λ·(logsumexp_k S − log K). */
async function pmiEngine(
  ctx: Ctx,
  I: Matrix,
  T: Matrix,
  inds: Int32Array,
  topK: number,
  a: number,
  lambda: number,
  p: Float64Array,
  c: Float64Array,
  reuse: SimilarityReuse = {},
): Promise<void> {
  const { m, d, k: K } = ctx;
  const tPrepare = performance.now();
  const used = distinctSorted(inds, ctx.n);
  const U = used.length;
  const pos = new Int32Array(ctx.n).fill(-1);
  for (let i = 0; i < U; i++) pos[used[i]] = i;
  // Each neuron's terms (position in `used`, rank) sorted by position, so a block's terms are contiguous.
  const termPos = new Int32Array(K * topK);
  const termRank = new Int32Array(K * topK);
  const keys = new Float64Array(topK);
  // a neuron's images are distinct: few used images are scanned in order rather than sorted
  const rankAt = U <= 8 * topK ? new Int32Array(U).fill(-1) : undefined;
  for (let j = 0; j < K; j++) {
    const base = j * topK;
    if (rankAt) {
      for (let r = 0; r < topK; r++) rankAt[pos[inds[base + r]]] = r;
      for (let u = 0, t = 0; u < U; u++)
        if (rankAt[u] >= 0) {
          termPos[base + t] = u;
          termRank[base + t++] = rankAt[u];
          rankAt[u] = -1;
        }
      continue;
    }
    for (let r = 0; r < topK; r++) keys[r] = pos[inds[base + r]] * 65536 + r;
    keys.sort();
    for (let t = 0; t < topK; t++) {
      termPos[base + t] = Math.floor(keys[t] / 65536);
      termRank[base + t] = keys[t] % 65536;
    }
  }
  // Concept chunk width: the product accumulators take K·8 bytes per concept.
  let mc = Math.max(4, Math.floor((ctx.budget * 0.6) / (K * 8)) & ~3);
  if (mc >= m) mc = m;
  const chunks = Math.ceil(m / mc);
  const mcp = pad4(mc);
  // Q's rows are copied from a softmax computed before, when it covers this run's only chunk
  const sm = reuse.softmax;
  const cachedQ =
    sm && chunks === 1 && sm.width === mcp && sm.a === a && sm.textFeatures === T ? sm : undefined;
  const X = cachedQ ? createMatrix(0, d) : gatherRows(I, used); // U×d
  normalizeRowsInPlace(X);
  // A block of Q lives three times: onnxruntime's softmax input, its output, the kernel's copy. Blocks of
  // ~Q_BLOCK_BYTES are faster than bigger ones (the softmax and the copy then work in the L3 cache): soft_wpmi
  // 10000×20000×2048 took 3.8–4.2 s with 256-row (20 MiB) blocks against 5.7–5.9 s with 629-row ones.
  const nb = Math.max(
    1,
    Math.min(U, Math.floor(ctx.budget / 16 / (mcp * 4)), Math.max(16, Math.floor(Q_BLOCK_BYTES / (mcp * 4)))),
  );
  const blocks = Math.ceil(U / nb);
  // concept tile: the tile of the Q block (nb rows) should stay in the 1 MiB L2 cache
  const tile = Math.max(64, Math.min(mcp, Math.floor((768 * 1024) / (nb * 4)) & ~3));

  // factors c_r + p_r·Q with c_r, p_r as float32; g factors between renormalisations keep the product normal
  const pF = Float32Array.from(p);
  const cF = Float32Array.from(c);
  let cMin = Number.POSITIVE_INFINITY;
  for (const v of cF) cMin = Math.min(cMin, v);
  const g = cMin >= 0.5 ? 64 : Math.max(1, Math.min(64, Math.floor(120 / -Math.log2(cMin))));

  // Threads: onnxruntime computes block b+1 while kernel workers multiply block b in.
  const threads = ctx.threads ?? availableParallelism();
  const nWorkers = threads >= 2 ? Math.max(1, Math.round(threads / 4)) : 0;
  const ortThreads = Math.max(1, threads - nWorkers);

  // the reruns that share a softmax also share the kernel memory (sequential runs only)
  if (sm && !sm.arena) sm.arena = new KernelArena();
  const arena = sm?.arena ?? new KernelArena();
  arena.reset();
  const accPtr = arena.alloc(K * mcp * 4);
  const exPtr = arena.alloc(K * mcp * 4);
  const qPtr = arena.alloc(nb * mcp * 4);
  const offPtr = arena.alloc((K + 1) * 4);
  const rowsPtr = arena.alloc(K * topK * 4);
  const psPtr = arena.alloc(K * topK * 4);
  const csPtr = arena.alloc(K * topK * 4);
  const priorPtr = arena.alloc(2 * mcp * 4);
  const freshPtr = arena.alloc(K);
  const counterPtr = arena.alloc(16);
  const counter = new Int32Array(arena.memory.buffer, counterPtr, 1);
  const fresh = new Uint8Array(arena.memory.buffer, freshPtr, K);
  const ex = arena.i32(exPtr, K * mcp);
  const offV = arena.i32(offPtr, K + 1);
  const rowsV = arena.i32(rowsPtr, K * topK);
  const psV = arena.f32(psPtr, K * topK);
  const csV = arena.f32(csPtr, K * topK);
  // onnxruntime cannot write into shared memory: its output lands here and is copied in
  const qOut = new Float32Array(nb * mcp);
  const pool = nWorkers > 0 ? new KernelPool(arena, nWorkers) : undefined;

  // When the concepts span several chunks, the softmax normaliser of each image comes from a first pass.
  let lse: Float32Array | undefined;
  const sessions: ComputeSession[] = [];
  // the first pass's blocks hold a full-width P (nbl × m)
  const nbl = Math.max(1, Math.min(U, Math.floor(ctx.budget / 8 / (m * 4))));
  const totalSteps = blocks * chunks + (chunks > 1 ? Math.ceil(U / nbl) : 0);
  let step = 0;
  try {
    if (chunks > 1) {
      const gb = new GraphBuilder();
      gb.input('X', ['n', d]);
      gb.input('T', [m, d]);
      gb.op('Gemm', ['X', 'T'], 'P', { transB: 1, alpha: { float: a } });
      gb.op('ReduceLogSumExp', ['P'], 'L', { axes: [1], keepdims: 1 });
      gb.output('L', ['n', 1]);
      const s = await ComputeSession.create(gb, { threads });
      sessions.push(s);
      const Tall = textChunk(T, 0, m);
      const lseAll = new Float32Array(U);
      lse = lseAll;
      for (let r0 = 0; r0 < U; r0 += nbl) {
        const r1 = Math.min(U, r0 + nbl);
        await timed(ctx, 'onnxruntime', () =>
          s.run(
            { X: [X.data.subarray(r0 * d, r1 * d), [r1 - r0, d]], T: [Tall, [m, d]] },
            { L: [lseAll.subarray(r0, r1), [r1 - r0, 1]] },
          ),
        );
        ctx.progress(++step, totalSteps);
      }
    }
    ctx.time('prepare', (performance.now() - tPrepare) / 1000);
    const ptr = new Int32Array(K);
    for (let ch = 0; ch < chunks; ch++) {
      const c0 = ch * mc;
      const c1 = Math.min(m, c0 + mc);
      const w = c1 - c0;
      const wp = pad4(w);
      const Tc = cachedQ ? new Float32Array(0) : textChunk(T, c0, c1, 1, wp);
      const s = cachedQ
        ? undefined
        : await ComputeSession.create(softmaxGraph(d, w, wp, a, lse !== undefined), {
            threads: pool ? ortThreads : threads,
          });
      if (s) sessions.push(s);
      const tInit = performance.now();
      fresh.fill(1); // the kernel starts each accumulator at 1 on its first factor
      offV.fill(0);
      if (ch > 0 || sm) ex.fill(0); // fresh WebAssembly memory is zero
      ptr.fill(0);
      ctx.time('prepare', (performance.now() - tInit) / 1000);
      let inFlight: Promise<void> | undefined;
      let stealNext: (() => void) | undefined;
      for (let b = 0; b < blocks; b++) {
        const r0 = b * nb;
        const r1 = Math.min(U, r0 + nb);
        const qBlock = qOut.subarray(0, (r1 - r0) * wp);
        if (s) {
          const feeds: Record<string, [Float32Array, readonly number[]]> = {
            X: [X.data.subarray(r0 * d, r1 * d), [r1 - r0, d]],
            T: [Tc, [wp, d]],
          };
          if (lse) feeds.L = [lse.subarray(r0, r1), [r1 - r0, 1]];
          await timed(ctx, 'onnxruntime', () => s.run(feeds, { Q: [qBlock, [r1 - r0, wp]] }));
        } else if (cachedQ) {
          const t = performance.now();
          const rowOf = reuse.softmaxRows;
          for (let r = r0; r < r1; r++) {
            const src = rowOf ? rowOf[used[r]] : used[r];
            qBlock.set(cachedQ.data.subarray(src * wp, (src + 1) * wp), (r - r0) * wp);
          }
          ctx.time('copy Q, terms', (performance.now() - t) / 1000);
        }
        // help with the previous block's tiles, then wait for the worker's last slice
        if (stealNext) await timed(ctx, 'kernels (main thread)', stealNext);
        stealNext = undefined;
        await timed(ctx, 'kernels (waiting)', () => inFlight);
        if (b > 0) ctx.progress(++step, totalSteps);
        const tCopy = performance.now();
        // neurons that received factors in the previous block are initialised now
        for (let j = 0; j < K; j++) if (offV[j + 1] > offV[j]) fresh[j] = 0;
        arena.f32(qPtr, qBlock.length).set(qBlock);
        let nt = 0;
        for (let j = 0; j < K; j++) {
          offV[j] = nt;
          const base = j * topK;
          let t = ptr[j];
          while (t < topK && termPos[base + t] < r1) {
            const rank = termRank[base + t];
            rowsV[nt] = termPos[base + t] - r0;
            psV[nt] = pF[rank];
            csV[nt] = cF[rank];
            nt++;
            t++;
          }
          ptr[j] = t;
        }
        offV[K] = nt;
        ctx.time('copy Q, terms', (performance.now() - tCopy) / 1000);
        // The worker and this thread share the block's concept tiles through a counter: the worker starts
        // now, this thread joins once onnxruntime has computed the next block.
        const nTiles = Math.ceil(wp / tile);
        const spec: StealSpec = {
          counter: counterPtr,
          slices: Math.ceil(nTiles / 2),
          sliceSize: 2,
          total: nTiles,
          startArg: 11,
          endArg: 12,
        };
        const args = [
          accPtr,
          exPtr,
          wp,
          qPtr,
          offPtr,
          rowsPtr,
          psPtr,
          csPtr,
          K,
          g,
          tile,
          0,
          nTiles,
          freshPtr,
        ];
        Atomics.store(counter, 0, 0);
        if (pool) {
          inFlight = pool.runStealing('mulBlock', args, spec);
          stealNext = () =>
            stealSlices(arena.k.mulBlock as (...a: number[]) => void, arena.memory, args, spec);
        } else {
          await timed(ctx, 'kernels (waiting)', () =>
            stealSlices(arena.k.mulBlock as (...a: number[]) => void, arena.memory, args, spec),
          );
        }
      }
      if (stealNext) await timed(ctx, 'kernels (main thread)', stealNext);
      await timed(ctx, 'kernels (waiting)', () => inFlight);
      ctx.progress(++step, totalSteps);
      const tFinish = performance.now();
      arena.k.finishLog(accPtr, exPtr, accPtr, K * wp);
      // acc is tile-major: tile t0 is a K×tw block at float offset t0·K
      for (let t0 = 0; t0 < wp; t0 += tile) {
        const tw = Math.min(tile, wp - t0);
        arena.k.subtractPrior(accPtr + t0 * K * 4, K, tw, priorPtr, lambda, Math.log(K));
        recordChunk(ctx, arena.f32(accPtr + t0 * K * 4, K * tw), tw, Math.min(tw, w - t0), c0 + t0);
      }
      ctx.time('log, prior, top-k', (performance.now() - tFinish) / 1000);
    }
  } finally {
    for (const s of sessions) await s.release();
    await pool?.release();
  }
}

/** rank_reorder: per neuron and concept, sort the top-n images by CLIP similarity and compare orders. */
async function rankReorderEngine(
  ctx: Ctx,
  I: Matrix,
  T: Matrix,
  A: Matrix,
  o: RankReorderOptions,
  dead: Uint8Array,
): Promise<void> {
  const { n, m, d, k: K } = ctx;
  const topN = Math.floor(n * o.topFraction);
  const inds = columnTopK(A, topN);
  const used = distinctSorted(inds, n);
  const U = used.length;
  const pos = new Int32Array(n).fill(-1);
  for (let i = 0; i < U; i++) pos[used[i]] = i;
  const X = gatherRows(I, used);
  normalizeRowsInPlace(X);
  // per-neuron activations (descending) and baselines
  const vAll = new Float32Array(K * topN);
  const baseline = new Float64Array(K);
  const v64 = new Float64Array(topN);
  for (let j = 0; j < K; j++) {
    for (let r = 0; r < topN; r++) {
      v64[r] = A.data[inds[j * topN + r] * K + j];
      vAll[j * topN + r] = v64[r];
    }
    baseline[j] = rankReorderBaseline(v64, o.p, o.seed, j);
  }
  let n2 = 1;
  while (n2 < topN) n2 <<= 1;
  // the P chunk (U×mc) plus the per-neuron errors and means (K×mc each)
  let mc = Math.max(4, Math.floor((ctx.budget * 0.6) / ((U + 2 * K) * 4)) & ~3);
  if (mc >= m) mc = m;
  const mcp = pad4(mc);
  const chunks = Math.ceil(m / mc);

  const threads = ctx.threads ?? availableParallelism();
  const arena = new KernelArena();
  const pcPtr = arena.alloc(U * mcp * 4);
  const rowsPtr = arena.alloc(K * topN * 4);
  const vPtr = arena.alloc(K * topN * 4);
  const scratchPtr = arena.alloc(threads * n2 * 32);
  const errPtr = arena.alloc(K * mcp * 4);
  const meanPtr = arena.alloc(K * mcp * 4);
  const pc = arena.f32(pcPtr, U * mcp);
  const rowsV = arena.i32(rowsPtr, K * topN);
  for (let i = 0; i < K * topN; i++) rowsV[i] = pos[inds[i]];
  arena.f32(vPtr, K * topN).set(vAll);
  const errV = arena.f32(errPtr, K * mcp);
  const meanV = arena.f32(meanPtr, K * mcp);
  const scores = new Float32Array(K * mcp);
  const pool = threads >= 2 ? new KernelPool(arena, threads) : undefined;
  const ranges = splitRange(K, pool ? threads : 1);
  try {
    for (let ch = 0; ch < chunks; ch++) {
      const c0 = ch * mc;
      const c1 = Math.min(m, c0 + mc);
      const w = c1 - c0;
      const gb = new GraphBuilder();
      gb.input('X', ['n', d]);
      gb.input('T', [mcp, d]);
      gb.op('Gemm', ['X', 'T'], 'P', { transB: 1 });
      gb.output('P', ['n', mcp]);
      const s = await ComputeSession.create(gb, { threads });
      try {
        // zero rows pad T to mcp, so P comes out with the kernel's row stride
        const Tc = textChunk(T, c0, c1, 1, mcp);
        const P = (await timed(ctx, 'onnxruntime', () => s.run({ X: [X.data, [U, d]], T: [Tc, [mcp, d]] }))).P
          .data;
        pc.set(P);
      } finally {
        await s.release();
      }
      // neurons are split across threads in slices, so progress can be reported between slices
      const slices = Math.max(1, Math.min(16, Math.ceil(K / 64)));
      for (let sl = 0; sl < slices; sl++) {
        const parts = ranges.map(([a, b]) => {
          const len = b - a;
          return [a + Math.floor((len * sl) / slices), a + Math.floor((len * (sl + 1)) / slices)] as const;
        });
        const args = (i: number, k0: number, k1: number) => [
          pcPtr,
          mcp,
          rowsPtr,
          vPtr,
          topN,
          n2,
          o.p,
          scratchPtr + i * n2 * 32,
          errPtr,
          meanPtr,
          k0,
          k1,
        ];
        const tK = performance.now();
        if (pool)
          await pool.run(
            'rankReorderNeurons',
            parts.map(([k0, k1], i) => args(i, k0, k1)),
          );
        else
          arena.k.rankReorderNeurons(
            ...(args(0, parts[0][0], parts[0][1]) as Parameters<typeof arena.k.rankReorderNeurons>),
          );
        ctx.time('kernels (waiting)', (performance.now() - tK) / 1000);
        ctx.progress(ch * slices + sl + 1, chunks * slices);
      }
      for (let j = 0; j < K; j++) {
        const row = j * mcp;
        for (let t = 0; t < w; t++) {
          const err = errV[row + t];
          scores[row + t] = dead[j] || err === 0 ? 0 : -(err / baseline[j] / meanV[row + t] ** o.scaleP);
        }
      }
      recordChunk(ctx, scores, mcp, w, c0);
    }
  } finally {
    await pool?.release();
  }
}

/**
 * Runs a graph whose input 'T' is a chunk of normalised concept rows and whose output 'S' is the K×chunk
 * score block, over every concept chunk of width `mc`, and merges each block into the top-k.
 */
async function scoreConceptChunks(
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

/** 1 / (L2 norm of each column of A (N×K)), 0 for a zero column. */
function inverseColumnNorms(A: Matrix): Float32Array {
  const ss = new Float64Array(A.cols);
  for (let i = 0; i < A.rows; i++) {
    const off = i * A.cols;
    for (let j = 0; j < A.cols; j++) ss[j] += A.data[off + j] * A.data[off + j];
  }
  return Float32Array.from(ss, (v) => (v > 0 ? 1 / Math.sqrt(v) : 0));
}

/**
 * cos_similarity without forming P: (ÂᵀI)·Tᵀ divided by ‖P_m‖ = sqrt(T_m·(IᵀI)·T_mᵀ). Every matrix is a
 * graph input (constants would be folded, single-threaded, when the session is created).
 */
async function cosEngine(ctx: Ctx, In: Matrix, T: Matrix, A: Matrix, norms?: Float32Array): Promise<void> {
  const { n, m, d, k: K } = ctx;
  const threads = ctx.threads ?? availableParallelism();
  const g1 = new GraphBuilder();
  g1.input('A', [n, K]);
  g1.input('inv', [K, 1]);
  g1.input('X', [n, d]);
  g1.op('Gemm', ['A', 'X'], 'AX', { transA: 1 });
  g1.op('Mul', ['AX', 'inv'], 'C');
  g1.op('Gemm', ['X', 'X'], 'G', { transA: 1 });
  g1.output('C', [K, d]);
  g1.output('G', [d, d]);
  let C: Float32Array;
  let G: Float32Array;
  const s1 = await ComputeSession.create(g1, { threads });
  try {
    const out = await timed(ctx, 'onnxruntime', () =>
      s1.run({ A: [A.data, [n, K]], inv: [inverseColumnNorms(A), [K, 1]], X: [In.data, [n, d]] }),
    );
    C = out.C.data;
    G = out.G.data;
  } finally {
    await s1.release();
  }
  let mc = Math.max(4, Math.floor((ctx.budget * 0.5) / (K * 4)) & ~3);
  if (mc >= m) mc = m;
  const gb = new GraphBuilder();
  gb.input('C', [K, d]);
  gb.input('T', ['m', d]);
  if (norms) {
    gb.input('norm', ['m']);
  } else {
    gb.input('G', [d, d]);
    conceptNormNodes(gb);
  }
  gb.op('Gemm', ['C', 'T'], 'num', { transB: 1 });
  gb.op('Div', ['num', 'norm'], 'S');
  gb.output('S', [K, 'm']);
  if (norms && norms.length !== m) throw new ArgumentError(`reuse.conceptNorms must hold ${m} norms`);
  await scoreConceptChunks(
    ctx,
    gb,
    T,
    mc,
    threads,
    norms ? { C: [C, [K, d]] } : { C: [C, [K, d]], G: [G, [d, d]] },
    norms ? (c0, c1) => ({ norm: [norms.subarray(c0, c1), [c1 - c0]] }) : undefined,
  );
}

/** norm = ‖P_m‖ = sqrt(max(T_m·G·T_mᵀ, 1e-30)) of the rows of inputs T (m×d) and G (d×d). */
function conceptNormNodes(gb: GraphBuilder): void {
  gb.constant('tiny', [], Float32Array.of(1e-30));
  gb.constantInt64('ax1', [1]);
  gb.op('MatMul', ['T', 'G'], 'TG');
  gb.op('Mul', ['TG', 'T'], 'TGT');
  gb.op('ReduceSum', ['TGT', 'ax1'], 'nsq', { keepdims: 0 });
  gb.op('Max', ['nsq', 'tiny'], 'nsq1');
  gb.op('Sqrt', ['nsq1'], 'norm');
}

/**
 * ‖P_m‖ of every concept as cos_similarity computes them (G = ÎᵀÎ, then conceptNormNodes), for
 * SimilarityReuse.conceptNorms: runs on the same image features then skip that product.
 */
export async function cosConceptNorms(
  I: Matrix,
  T: Matrix,
  threads?: number,
  memoryBudget = 768 * MiB,
): Promise<Float32Array> {
  const { rows: n, cols: d } = I;
  const m = T.rows;
  const gb = new GraphBuilder();
  gb.input('X', [n, d]);
  gb.input('T', ['m', d]);
  gb.op('Gemm', ['X', 'X'], 'G', { transA: 1 });
  conceptNormNodes(gb);
  gb.output('norm', ['m']);
  const norms = new Float32Array(m);
  // concept chunks: a chunk of T and its two m×d intermediates within half the budget
  const mc = Math.max(4, Math.floor(memoryBudget / 2 / (3 * d * 4)));
  const X = normalizeRows(I).data;
  const s = await ComputeSession.create(gb, { threads: threads ?? availableParallelism() });
  try {
    for (let c0 = 0; c0 < m; c0 += mc) {
      const c1 = Math.min(m, c0 + mc);
      const out = await s.run({ X: [X, [n, d]], T: [textChunk(T, c0, c1), [c1 - c0, d]] });
      norms.set(out.norm.data, c0);
    }
  } finally {
    await s.release();
  }
  return norms;
}

/** cos_similarity_cubed: centre, cube and normalise the columns of A and (per concept chunk) of P. */
async function cosCubedEngine(
  ctx: Ctx,
  In: Matrix,
  T: Matrix,
  A: Matrix,
  o: CosSimilarityCubedOptions,
): Promise<void> {
  const { n, m, d, k: K } = ctx;
  const threads = ctx.threads ?? availableParallelism();
  // the per-column transform, used on A once and on each chunk of P
  const cube = (gb: GraphBuilder, x: string, out: string) => {
    gb.op('ReduceMean', [x], `${x}_mu`, { axes: [0], keepdims: 1 });
    gb.op('Sub', [x, `${x}_mu`], `${x}_c`);
    gb.op('Mul', [`${x}_c`, `${x}_c`], `${x}_c2`);
    gb.op('Mul', [`${x}_c2`, `${x}_c`], `${x}_c3`);
    gb.op('ReduceL2', [`${x}_c3`], `${x}_nrm`, { axes: [0], keepdims: 1 });
    gb.op('Max', [`${x}_nrm`, 'minNorm'], `${x}_nrm1`);
    gb.op('Div', [`${x}_c3`, `${x}_nrm1`], out);
  };
  const ga = new GraphBuilder();
  ga.input('A', [n, K]);
  ga.constant('minNorm', [], Float32Array.of(o.minNorm));
  cube(ga, 'A', 'Ac');
  ga.output('Ac', [n, K]);
  const sa = await ComputeSession.create(ga, { threads });
  let Ac: Float32Array;
  try {
    Ac = (await timed(ctx, 'onnxruntime', () => sa.run({ A: [A.data, [n, K]] }))).Ac.data;
  } finally {
    await sa.release();
  }
  // P chunk and its five elementwise intermediates are N×mc each
  let mc = Math.max(4, Math.floor((ctx.budget * 0.5) / (n * 4 * 6 + K * 4)) & ~3);
  if (mc >= m) mc = m;
  const gb = new GraphBuilder();
  gb.input('X', [n, d]);
  gb.input('Ac', [n, K]);
  gb.input('T', ['m', d]);
  gb.constant('minNorm', [], Float32Array.of(o.minNorm));
  gb.op('Gemm', ['X', 'T'], 'P', { transB: 1 });
  cube(gb, 'P', 'Pn');
  gb.op('Gemm', ['Ac', 'Pn'], 'S', { transA: 1 });
  gb.output('S', [K, 'm']);
  await scoreConceptChunks(ctx, gb, T, mc, threads, { X: [In.data, [n, d]], Ac: [Ac, [n, K]] });
}

/** Checks a `memoryBudget` option: at least 1 MiB (ArgumentError with option 'memoryBudget'). */
export function checkMemoryBudget(memoryBudget: number | undefined): void {
  if (memoryBudget !== undefined && !(memoryBudget >= MiB))
    throw new ArgumentError(`'memoryBudget' must be at least 1 MiB (${MiB} bytes) but got ${memoryBudget}`, {
      option: 'memoryBudget',
    });
}

/**
 * Scores every neuron of one layer against every concept with the named similarity function and
 * returns each neuron's best concepts. Labels equal the reference implementation's for every
 * non-degenerate neuron; see README for the measured agreement. Inputs holding NaN or ±Infinity are refused
 * (NonFiniteError naming the matrix, the first bad row and column, and the count).
 */
export async function computeSimilarity<F extends SimilarityName>(
  similarity: F,
  inputs: SimilarityInputs,
  run: SimilarityRunOptions<F> = {},
  hooks: RunHooks = {},
  /** Internal: see SimilarityReuse. */
  reuse?: SimilarityReuse,
): Promise<SimilarityResult> {
  hooks.signal?.throwIfAborted();
  const name = checkSimilarityName(similarity) as F;
  const { n, m, d, k } = checkInputShapes(inputs);
  const options = resolveSimilarityOptions(name, run.options, n);
  checkFinite(inputs.imageFeatures, 'image features');
  checkFinite(inputs.textFeatures, 'text features');
  checkFinite(inputs.activations, 'activations');
  const top = Math.min(run.top ?? 5, m);
  if (!Number.isInteger(top) || top < 1)
    throw new ArgumentError(`'top' must be a positive integer but got ${run.top}`);
  const nTop = Math.min(run.topImages ?? 10, n);
  if (!Number.isInteger(nTop) || nTop < 0) {
    throw new ArgumentError(`'topImages' must be a non-negative integer but got ${run.topImages}`);
  }
  checkThreads(run.threads);
  checkMemoryBudget(run.memoryBudget);
  const budget = run.memoryBudget ?? 768 * MiB;
  const keep = run.keepMatrix ? createMatrix(k, m) : undefined;
  const tracker = new TopTracker(k, top);
  const { onProgress, signal } = hooks;
  const timings: Record<string, number> = {};
  const tStart = performance.now();
  const ctx: Ctx = {
    time: (stage, seconds) => {
      timings[stage] = (timings[stage] ?? 0) + seconds;
    },
    n,
    m,
    d,
    k,
    top,
    keep,
    tracker,
    budget,
    threads: run.threads,
    // the run stops at its next block: the progress points are the engine's checkpoints
    progress: (done, total, unit = 'blocks') => {
      signal?.throwIfAborted();
      onProgress?.({ stage: `similarity (${name})`, done, total, unit });
    },
  };
  const A = inputs.activations;
  const dead = await timed(ctx, 'dead neurons', () => deadNeurons(A));
  const I = inputs.imageFeatures;
  const T = inputs.textFeatures;
  let topImages: Int32Array;
  switch (name) {
    case 'soft_wpmi':
    case 'wpmi': {
      const o = options as SoftWpmiOptions | WpmiOptions;
      const given = reuse?.topIndices;
      if (given && given.length !== k * o.topK)
        throw new ArgumentError(`reuse.topIndices must hold ${k}×${o.topK} indices but has ${given.length}`);
      const inds = given ?? (await timed(ctx, 'top images', () => columnTopK(A, o.topK)));
      let p: Float64Array;
      let c: Float64Array;
      if (name === 'soft_wpmi') {
        const so = o as SoftWpmiOptions;
        p = rankProbabilities(so);
        c = p.map((pr) => 1 - pr + so.minProb);
      } else {
        p = new Float64Array(o.topK).fill(1);
        c = new Float64Array(o.topK).fill(o.minProb);
      }
      await pmiEngine(ctx, I, T, inds, o.topK, o.a, o.lambda, p, c, reuse);
      topImages = nTop <= o.topK ? takeColumns(inds, k, o.topK, nTop) : columnTopK(A, nTop);
      break;
    }
    case 'rank_reorder':
      await rankReorderEngine(ctx, I, T, A, options as RankReorderOptions, dead);
      topImages = columnTopK(A, nTop);
      break;
    case 'cos_similarity':
      await cosEngine(ctx, normalizeRows(I), T, A, reuse?.conceptNorms);
      topImages = columnTopK(A, nTop);
      break;
    default:
      await cosCubedEngine(ctx, normalizeRows(I), T, A, options as CosSimilarityCubedOptions);
      topImages = columnTopK(A, nTop);
  }
  tracker.finish();
  timings.total = (performance.now() - tStart) / 1000;
  const labels = new Int32Array(k);
  const scores = new Float32Array(k);
  for (let j = 0; j < k; j++) {
    labels[j] = tracker.idx[j * top];
    scores[j] = tracker.val[j * top];
  }
  return {
    similarity: name,
    options: options as unknown as Record<string, number>,
    nImages: n,
    nConcepts: m,
    nNeurons: k,
    top,
    labels,
    scores,
    topConcepts: tracker.idx,
    topScores: tracker.val,
    dead,
    nTopImages: nTop,
    topImages,
    ...(keep ? { matrix: keep } : {}),
    timings,
  };
}

/** The first `t` columns of a rows×cols Int32Array. */
function takeColumns(a: Int32Array, rows: number, cols: number, t: number): Int32Array {
  const out = new Int32Array(rows * t);
  for (let r = 0; r < rows; r++) out.set(a.subarray(r * cols, r * cols + t), r * t);
  return out;
}
