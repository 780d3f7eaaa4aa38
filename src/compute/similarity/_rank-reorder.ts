/**
 * The rank_reorder kernel: per neuron and concept, the neuron's top images sorted by CLIP similarity with a SIMD
 * bitonic network (WebAssembly, 4 concepts at once), and that order compared with their order by activation.
 * Internal.
 */
import { platform } from '#platform';
import { gatherRows, type Matrix } from '../../numeric/matrix.js';
import type { SimilarityInputs, SimilarityKernel } from '../../numeric/similarity-functions/_define.js';
import { rankReorderBaseline } from '../../numeric/similarity-functions/rank-reorder.js';
import { columnTopK } from '../../numeric/topk.js';
import { ComputeSession, GraphBuilder } from '../_onnx.js';
import { KernelArena, KernelPool, pad4, splitRange } from '../_wasm.js';
import { type Ctx, distinctSorted, normalizeRowsInPlace, recordChunk, textChunk, timed } from './_context.js';

type RankReorderKernel = Extract<SimilarityKernel, { kind: 'rank_reorder' }>;

/** rank_reorder: per neuron and concept, sort the top-n images by CLIP similarity and compare orders. */
async function rankReorderEngine(
  ctx: Ctx,
  I: Matrix,
  T: Matrix,
  A: Matrix,
  o: RankReorderKernel,
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

  const threads = ctx.threads ?? platform.host.availableParallelism();
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

/** Runs the rank_reorder kernel; returns each neuron's ctx.nTop most activating images. */
export async function rankReorderKernel(
  ctx: Ctx,
  inputs: SimilarityInputs,
  kernel: RankReorderKernel,
  dead: Uint8Array,
): Promise<Int32Array> {
  const { imageFeatures: I, textFeatures: T, activations: A } = inputs;
  await rankReorderEngine(ctx, I, T, A, kernel, dead);
  return columnTopK(A, ctx.nTop);
}
