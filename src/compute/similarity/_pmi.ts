/**
 * The pmi kernel (SoftWPMI, WPMI): S[k,m] = Σ_r log(c_r + p_r·Q[i_r,m]); score = S − λ·(logsumexp_k S − log K).
 * The probe images are streamed in blocks: for each block, onnxruntime gives the softmax Q = softmax(a·P) of just
 * those images, and a SIMD WebAssembly kernel multiplies each neuron's factors (c_r + p_r·Q) into a
 * per-(neuron, concept) product whose binary exponent is carried separately, so Σ_r log(...) costs one log per
 * (neuron, concept) instead of top_k of them. Only images that are in some neuron's top-k are ever scored.
 * Internal.
 */
import { platform } from '#platform';
import { ArgumentError } from '../../numeric/errors.js';
import { createMatrix, gatherRows, type Matrix } from '../../numeric/matrix.js';
import type { SimilarityInputs, SimilarityKernel } from '../../numeric/similarity-functions/_define.js';
import { columnTopK } from '../../numeric/topk.js';
import { ComputeSession, GraphBuilder } from '../_onnx.js';
import { KernelArena, KernelPool, pad4, type StealSpec, stealSlices } from '../_wasm.js';
import {
  type Ctx,
  distinctSorted,
  normalizeRowsInPlace,
  paddingBias,
  recordChunk,
  textChunk,
  timed,
} from './_context.js';

/** Target size of a block of Q (images × concepts of a chunk) in soft_wpmi / wpmi. */
const Q_BLOCK_BYTES = 20 * 1024 * 1024;

/** Work a pmi run may be given instead of doing it (see SimilarityReuse). */
export interface PmiReuse {
  /** soft_wpmi / wpmi: columnTopK(activations, topK) of the run (K×topK). */
  topIndices?: Int32Array;
  /** soft_wpmi / wpmi: Q = softmax(a·Î·Tᵀ) of a set of images (pmiSoftmaxRows), used when one concept chunk holds every concept. */
  softmax?: PmiSoftmax;
  /** Per image of the run, its row in `softmax` (default: the same index). */
  softmaxRows?: ArrayLike<number>;
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
  reuse: PmiReuse = {},
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
  // ~Q_BLOCK_BYTES are faster than bigger ones: the softmax and the copy then work in the L3 cache.
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
  const threads = ctx.threads ?? platform.host.availableParallelism();
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

/** Runs the pmi kernel; returns each neuron's ctx.nTop most activating images. */
export async function pmiKernel(
  ctx: Ctx,
  inputs: SimilarityInputs,
  kernel: Extract<SimilarityKernel, { kind: 'pmi' }>,
  reuse: PmiReuse,
): Promise<Int32Array> {
  const { k, nTop } = ctx;
  const { topK } = kernel;
  const A = inputs.activations;
  const given = reuse.topIndices;
  if (given && given.length !== k * topK)
    throw new ArgumentError(`reuse.topIndices must hold ${k}×${topK} indices but has ${given.length}`);
  const inds = given ?? (await timed(ctx, 'top images', () => columnTopK(A, topK)));
  const { a, lambda, p, c } = kernel;
  await pmiEngine(ctx, inputs.imageFeatures, inputs.textFeatures, inds, topK, a, lambda, p, c, reuse);
  return nTop <= topK ? takeColumns(inds, k, topK, nTop) : columnTopK(A, nTop);
}

/** The first `t` columns of a rows×cols Int32Array. */
function takeColumns(a: Int32Array, rows: number, cols: number, t: number): Int32Array {
  const out = new Int32Array(rows * t);
  for (let r = 0; r < rows; r++) out.set(a.subarray(r * cols, r * cols + t), r * t);
  return out;
}
