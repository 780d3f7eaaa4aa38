/** Cosine similarity of the centred, cubed activations and CLIP similarities. */
import type { Matrix } from '../matrix.js';
import { checkNumber, type SimilarityDefinition } from './_define.js';
import { clipSimilarities, matmulTransA, normalizeColumns } from './_math.js';

export interface CosSimilarityCubedOptions {
  /** Lower clip of each column norm. Default 1e-3. */
  minNorm: number;
}

function centerCube(x: Matrix): Matrix {
  const { rows, cols, data } = x;
  const mean = new Float64Array(cols);
  for (let i = 0; i < rows; i++) for (let j = 0; j < cols; j++) mean[j] += data[i * cols + j];
  for (let j = 0; j < cols; j++) mean[j] /= rows;
  const out = new Float32Array(rows * cols);
  for (let i = 0; i < rows; i++)
    for (let j = 0; j < cols; j++) out[i * cols + j] = (data[i * cols + j] - mean[j]) ** 3;
  return { rows, cols, data: out };
}

export const cosSimilarityCubed: SimilarityDefinition<CosSimilarityCubedOptions> = {
  description: 'cosine of the centred, cubed activations and CLIP similarities',
  defaults: { minNorm: 1e-3 },
  check(o, _nImages, name) {
    checkNumber(name, 'minNorm', o.minNorm, (x) => x > 0, 'a positive number');
  },
  reference(inp, o) {
    const P = clipSimilarities(inp.imageFeatures, inp.textFeatures);
    return matmulTransA(
      normalizeColumns(centerCube(inp.activations), o.minNorm),
      normalizeColumns(centerCube(P), o.minNorm),
    );
  },
  kernel: (o) => ({ kind: 'cos_cubed', minNorm: o.minNorm }),
};
