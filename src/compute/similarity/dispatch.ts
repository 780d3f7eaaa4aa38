/**
 * The fast similarity engine: the CLIP-Dissect similarity functions over real-sized inputs
 * (N = 10⁴ images, M = 2·10⁴ concepts, K = 2048 neurons) in seconds and bounded memory.
 *
 * - Each function's definition (src/numeric/similarity-functions/) chooses a kernel (./_kernels.ts): pmi
 *   (SoftWPMI, WPMI), rank_reorder, cos, cos_cubed.
 * - Matrix products run in onnxruntime (graphs built at run time, MLAS SGEMM, all cores); the per-neuron
 *   loops in SIMD WebAssembly kernels.
 * - Concepts are processed in chunks sized to `memoryBudget`; only the top `top` concepts per neuron
 *   are kept unless `keepMatrix` asks for the full K×M matrix.
 */
import { ArgumentError } from '../../numeric/errors.js';
import { checkFinite, createMatrix, type Matrix } from '../../numeric/matrix.js';
import { similarityDefinition } from '../../numeric/similarity-functions/index.js';
import {
  checkSimilarityName,
  resolveSimilarityOptions,
  type SimilarityName,
  type SimilarityOptionsMap,
} from '../../numeric/similarity-options.js';
import { checkInputShapes, deadNeurons, type SimilarityInputs } from '../../numeric/similarity-reference.js';
import type { RunHooks } from '../../progress.js';
import { checkThreads } from '../_onnx.js';
import { checkMemoryBudget, DEFAULT_MEMORY_BUDGET } from '../memory-budget.js';
import { type Ctx, timed } from './_context.js';
import { runKernel, type SimilarityReuse } from './_kernels.js';
import { TopTracker } from './_topk-tracker.js';

export interface SimilarityRunOptions<F extends SimilarityName = SimilarityName> {
  /** The function's hyperparameters; defaults (paper Appendix A.1) are spread first. */
  options?: Partial<SimilarityOptionsMap[F]>;
  /** Concepts kept per neuron, best first. Default 5. */
  top?: number;
  /** Most-activating probe images recorded per neuron. Default 10. */
  topImages?: number;
  /** Also return the full K×M score matrix (K·M·4 bytes). Default false. */
  keepMatrix?: boolean;
  /** Bound, in bytes, on the engine's large working buffers; concepts are chunked to fit. Default DEFAULT_MEMORY_BUDGET (768 MiB). */
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
  const budget = run.memoryBudget ?? DEFAULT_MEMORY_BUDGET;
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
    nTop,
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
  const kernel = similarityDefinition(name).kernel(options);
  const topImages = await runKernel(ctx, inputs, kernel, reuse ?? {}, dead);
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
