/**
 * The similarity engine's kernels by kind: a function's definition (src/numeric/similarity-functions/) names its
 * kernel and that kernel's parameters; this table runs it. A function that needs a new kind of kernel adds its file
 * here and a line to KERNELS (and the kind to SimilarityKernel). Internal.
 */
import type { SimilarityInputs, SimilarityKernel } from '../../numeric/similarity-functions/_define.js';
import type { Ctx } from './_context.js';
import { type CosReuse, cosKernel } from './_cos.js';
import { cosCubedKernel } from './_cos-cubed.js';
import { type PmiReuse, pmiKernel } from './_pmi.js';
import { rankReorderKernel } from './_rank-reorder.js';

/**
 * Internal (src/pipeline/trust.ts reruns the function on resamples of one layer): work already done for a
 * run, so that it is not redone. Every result equals the plain run's. A kernel ignores what it does not use.
 */
export type SimilarityReuse = PmiReuse & CosReuse;

type KernelOf<K extends SimilarityKernel['kind']> = Extract<SimilarityKernel, { kind: K }>;

interface KernelEntry<K extends SimilarityKernel['kind']> {
  /** The parts of SimilarityReuse the kernel uses. */
  reuses: readonly (keyof SimilarityReuse)[];
  /** Scores every chunk into ctx.tracker (and ctx.keep); returns each neuron's ctx.nTop most activating images. */
  run(
    ctx: Ctx,
    inputs: SimilarityInputs,
    kernel: KernelOf<K>,
    reuse: SimilarityReuse,
    dead: Uint8Array,
  ): Promise<Int32Array>;
}

export const KERNELS: { readonly [K in SimilarityKernel['kind']]: KernelEntry<K> } = {
  pmi: {
    reuses: ['topIndices', 'softmax', 'softmaxRows'],
    run: (ctx, inp, k, reuse) => pmiKernel(ctx, inp, k, reuse),
  },
  rank_reorder: { reuses: [], run: (ctx, inp, k, _reuse, dead) => rankReorderKernel(ctx, inp, k, dead) },
  cos: { reuses: ['conceptNorms'], run: (ctx, inp, _k, reuse) => cosKernel(ctx, inp, reuse) },
  cos_cubed: { reuses: [], run: (ctx, inp, k) => cosCubedKernel(ctx, inp, k) },
};

/** Runs the kernel a definition chose. */
export function runKernel(
  ctx: Ctx,
  inputs: SimilarityInputs,
  kernel: SimilarityKernel,
  reuse: SimilarityReuse,
  dead: Uint8Array,
): Promise<Int32Array> {
  const entry = KERNELS[kernel.kind] as KernelEntry<SimilarityKernel['kind']>;
  const used: SimilarityReuse = {};
  for (const key of entry.reuses) if (reuse[key] !== undefined) Object.assign(used, { [key]: reuse[key] });
  return entry.run(ctx, inputs, kernel as never, used, dead);
}
