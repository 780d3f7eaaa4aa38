/** Synthetic data for tests: seeded, so every run sees the same numbers. */
import { execFileSync } from 'node:child_process';
import { rmSync } from 'node:fs';
import type { Matrix } from '../../src/numeric/matrix.js';
import { gaussianSampler, mulberry32 } from '../../src/numeric/random.js';
import { topKStrided } from '../../src/numeric/topk.js';

export function randomMatrix(rows: number, cols: number, seed: number, f = (u: number) => u - 0.5): Matrix {
  const rand = mulberry32(seed);
  return { rows, cols, data: Float32Array.from({ length: rows * cols }, () => f(rand())) };
}

export function gaussianSource(seed: number): () => number {
  return gaussianSampler(mulberry32(seed));
}

/**
 * Planted structure: image i shows concept c(i) (cycling through the first K concepts) plus noise;
 * neuron k fires on images in proportion to their similarity to concept k. Every similarity function
 * should label neuron k with concept k.
 */
export function plantedData(n: number, m: number, d: number, k: number, seed = 0) {
  const g = gaussianSource(seed);
  const T: Matrix = { rows: m, cols: d, data: Float32Array.from({ length: m * d }, g) };
  const I: Matrix = { rows: n, cols: d, data: new Float32Array(n * d) };
  const A: Matrix = { rows: n, cols: k, data: new Float32Array(n * k) };
  const norm = (x: Float32Array) => Math.sqrt(x.reduce((s, v) => s + v * v, 0));
  for (let i = 0; i < n; i++) {
    const c = i % k;
    for (let t = 0; t < d; t++) I.data[i * d + t] = T.data[c * d + t] + 0.5 * g();
  }
  // neuron j's activation grows with the image's cosine similarity to concept j
  for (let i = 0; i < n; i++) {
    const xi = I.data.subarray(i * d, (i + 1) * d);
    for (let j = 0; j < k; j++) {
      const tj = T.data.subarray(j * d, (j + 1) * d);
      let dot = 0;
      for (let t = 0; t < d; t++) dot += xi[t] * tj[t];
      A.data[i * k + j] = Math.max(0, (3 * dot) / (norm(xi) * norm(tj)) + 0.05 * g());
    }
  }
  return { imageFeatures: I, textFeatures: T, activations: A };
}

/** The hand-computed case: 3 images, 2 concepts, d = 2 (values in test/numeric/similarity-reference.test.ts). */
export function handCase(k: 1 | 2 = 1) {
  const imageFeatures: Matrix = { rows: 3, cols: 2, data: Float32Array.of(1, 0, 0, 1, 1, 1) };
  const textFeatures: Matrix = { rows: 2, cols: 2, data: Float32Array.of(1, 0, 0, 1) };
  const activations: Matrix =
    k === 1
      ? { rows: 3, cols: 1, data: Float32Array.of(3, 1, 2) }
      : { rows: 3, cols: 2, data: Float32Array.of(3, 1, 1, 3, 2, 2) };
  return { imageFeatures, textFeatures, activations };
}

export function maxAbsDiff(a: ArrayLike<number>, b: ArrayLike<number>): number {
  let m = 0;
  for (let i = 0; i < a.length; i++) {
    const d = Math.abs(a[i] - b[i]);
    if (Number.isNaN(d)) {
      if (!(Number.isNaN(a[i]) && Number.isNaN(b[i]))) return Number.POSITIVE_INFINITY;
    } else if (d > m) m = d;
  }
  return m;
}

/**
 * A real FIFO (named pipe) at `path`, made with mkfifo(1): opening it for reading waits for a writer.
 * `replace` removes a file already there first.
 */
export function makeFifo(path: string, replace = false): string {
  if (replace) rmSync(path, { force: true });
  execFileSync('mkfifo', [path]);
  return path;
}

/** For each row of `m` (rows×cols), its k largest entries (k <= cols): indices and values, rows×k each. */
export function rowTopK(m: Matrix, k: number): { indices: Int32Array; values: Float32Array } {
  const indices = new Int32Array(m.rows * k);
  const values = new Float32Array(m.rows * k);
  for (let i = 0; i < m.rows; i++) {
    topKStrided(m.data, m.cols, k, indices, i * k, i * m.cols, 1);
    for (let r = 0; r < k; r++) values[i * k + r] = m.data[i * m.cols + indices[i * k + r]];
  }
  return { indices, values };
}
