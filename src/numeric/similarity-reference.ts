/**
 * Plain TypeScript reference implementations of the similarity functions, written directly from the formulas
 * of the paper's Appendix A.1 and the official code's semantics (each in its file in ./similarity-functions/).
 * They materialise every matrix and accumulate in float64: slow (O(N·M·d) matmul in JS) but simple to check.
 * The fast engine (src/compute/) is tested against these.
 */
import { ShapeError } from './errors.js';
import type { Matrix } from './matrix.js';
import type { SimilarityInputs } from './similarity-functions/_define.js';
import { similarityDefinition } from './similarity-functions/index.js';
import {
  resolveSimilarityOptions,
  type SimilarityName,
  type SimilarityOptionsMap,
} from './similarity-options.js';

export type { SimilarityInputs } from './similarity-functions/_define.js';
export { clipSimilarities } from './similarity-functions/_math.js';
export { neuronSeed, rankReorderBaseline } from './similarity-functions/rank-reorder.js';

/** Checks that the three matrices fit together; returns N, M, d, K. */
export function checkInputShapes(inp: SimilarityInputs): { n: number; m: number; d: number; k: number } {
  const { imageFeatures: I, textFeatures: T, activations: A } = inp;
  if (I.cols !== T.cols) {
    throw new ShapeError(
      `image features have dimension ${I.cols} (${I.rows}×${I.cols}) but text features have ${T.cols} (${T.rows}×${T.cols}); both must come from the same CLIP model`,
    );
  }
  if (I.rows !== A.rows) {
    throw new ShapeError(
      `image features have ${I.rows} rows (${I.rows}×${I.cols}) but activations have ${A.rows} (${A.rows}×${A.cols}); both need one row per probe image, in the same order`,
    );
  }
  if (A.cols < 1) throw new ShapeError(`activations have no neurons (${A.rows}×${A.cols})`);
  if (T.rows < 1) throw new ShapeError(`text features have no concepts (${T.rows}×${T.cols})`);
  if (I.rows < 1) throw new ShapeError(`there are no probe images (${I.rows}×${I.cols})`);
  return { n: I.rows, m: T.rows, d: I.cols, k: A.cols };
}

/**
 * Neurons whose activation is the same on every probe image (e.g. dead ReLU units), 1 = dead.
 * Their scores are defined (not NaN) but meaningless; outputs flag them.
 */
export function deadNeurons(activations: Matrix): Uint8Array {
  const { rows, cols, data } = activations;
  const min = new Float32Array(cols).fill(Number.POSITIVE_INFINITY);
  const max = new Float32Array(cols).fill(Number.NEGATIVE_INFINITY);
  for (let i = 0; i < rows; i++) {
    const off = i * cols;
    for (let j = 0; j < cols; j++) {
      const v = data[off + j];
      if (v < min[j]) min[j] = v;
      if (v > max[j]) max[j] = v;
    }
  }
  const dead = new Uint8Array(cols);
  for (let j = 0; j < cols; j++) dead[j] = max[j] === min[j] || !(max[j] >= min[j]) ? 1 : 0;
  return dead;
}

/** Dispatch by name: the full K×M score matrix. */
export function similarityReference<F extends SimilarityName>(
  name: F,
  inp: SimilarityInputs,
  options?: Partial<SimilarityOptionsMap[F]>,
): Matrix {
  const { n } = checkInputShapes(inp);
  return similarityDefinition(name).reference(inp, resolveSimilarityOptions(name, options, n));
}
