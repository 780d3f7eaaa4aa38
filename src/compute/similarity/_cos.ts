/**
 * The cos kernel (cos_similarity) without forming P: Âᵀ·P̂ = (ÂᵀI)·Tᵀ / ‖P_m‖ with ‖P_m‖² = T_m (IᵀI) T_mᵀ.
 * Internal.
 */
import { platform } from '#platform';
import { ArgumentError } from '../../numeric/errors.js';
import type { Matrix } from '../../numeric/matrix.js';
import { normalizeRows } from '../../numeric/reductions.js';
import type { SimilarityInputs } from '../../numeric/similarity-functions/_define.js';
import { columnTopK } from '../../numeric/topk.js';
import { ComputeSession, GraphBuilder } from '../_onnx.js';
import { DEFAULT_MEMORY_BUDGET } from '../memory-budget.js';
import { type Ctx, scoreConceptChunks, textChunk, timed } from './_context.js';

/** Work a cos run may be given instead of doing it (see SimilarityReuse). */
export interface CosReuse {
  /** cos_similarity: ‖P_m‖ of every concept for the run's image features (cosConceptNorms). */
  conceptNorms?: Float32Array;
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
  const threads = ctx.threads ?? platform.host.availableParallelism();
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
  memoryBudget = DEFAULT_MEMORY_BUDGET,
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
  const s = await ComputeSession.create(gb, { threads: threads ?? platform.host.availableParallelism() });
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

/** Runs the cos kernel; returns each neuron's ctx.nTop most activating images. */
export async function cosKernel(ctx: Ctx, inputs: SimilarityInputs, reuse: CosReuse): Promise<Int32Array> {
  const { imageFeatures: I, textFeatures: T, activations: A } = inputs;
  await cosEngine(ctx, normalizeRows(I), T, A, reuse.conceptNorms);
  return columnTopK(A, ctx.nTop);
}
