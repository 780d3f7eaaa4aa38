/** The cos_cubed kernel (cos_similarity_cubed): centre, cube and normalise the columns of A and of P. Internal. */
import { platform } from '#platform';
import type { Matrix } from '../../numeric/matrix.js';
import { normalizeRows } from '../../numeric/reductions.js';
import type { SimilarityInputs, SimilarityKernel } from '../../numeric/similarity-functions/_define.js';
import { columnTopK } from '../../numeric/topk.js';
import { ComputeSession, GraphBuilder } from '../_onnx.js';
import { type Ctx, scoreConceptChunks, timed } from './_context.js';

type CosCubedKernel = Extract<SimilarityKernel, { kind: 'cos_cubed' }>;

/** cos_similarity_cubed: centre, cube and normalise the columns of A and (per concept chunk) of P. */
async function cosCubedEngine(ctx: Ctx, In: Matrix, T: Matrix, A: Matrix, o: CosCubedKernel): Promise<void> {
  const { n, m, d, k: K } = ctx;
  const threads = ctx.threads ?? platform.host.availableParallelism();
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

/** Runs the cos_cubed kernel; returns each neuron's ctx.nTop most activating images. */
export async function cosCubedKernel(
  ctx: Ctx,
  inputs: SimilarityInputs,
  kernel: CosCubedKernel,
): Promise<Int32Array> {
  const { imageFeatures: I, textFeatures: T, activations: A } = inputs;
  await cosCubedEngine(ctx, normalizeRows(I), T, A, kernel);
  return columnTopK(A, ctx.nTop);
}
