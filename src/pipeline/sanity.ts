/**
 * `clip-dissect sanity`: synthetic neurons with known labels, built from the user's CLIP features, concept set
 * and probe set (as MAIA's synthetic neurons): neuron_c(image) = CLIP cosine of the image and concept c, or of
 * two concepts joined by OR (the larger of the two cosines) or AND (the smaller), plus Gaussian noise whose
 * standard deviation is `noise` times that of the clean signal over the probe images.
 */
import { ArgumentError } from '../numeric/errors.js';
import type { Matrix } from '../numeric/matrix.js';
import { gaussianSampler } from '../numeric/random.js';
import { meanStd, similarityColumn } from '../numeric/trust-metrics.js';

export interface SyntheticNeuron {
  /** One concept, or two joined by `op`. */
  concepts: readonly number[];
  op?: 'and' | 'or';
}

/**
 * Activations N×K of the synthetic neurons `specs` over the images `In` (unit rows), concepts `Tn` (unit rows),
 * each with noise at `noise` × the signal's standard deviation, drawn from `rand`.
 */
export function syntheticActivations(
  In: Matrix,
  Tn: Matrix,
  specs: readonly SyntheticNeuron[],
  noise: number,
  rand: () => number,
): Matrix {
  if (!(noise >= 0 && Number.isFinite(noise)))
    throw new ArgumentError(`noise level must be a finite number >= 0 but got ${noise}`);
  const N = In.rows;
  const K = specs.length;
  const g = gaussianSampler(rand);
  const out = new Float32Array(N * K);
  specs.forEach((s, k) => {
    for (const c of s.concepts)
      if (!(Number.isInteger(c) && c >= 0 && c < Tn.rows))
        throw new ArgumentError(`synthetic neuron ${k}: concept ${c} is not in [0, ${Tn.rows})`);
    const cols = s.concepts.map((c) => similarityColumn(In, Tn, c));
    const signal = cols[0].map((v, i) =>
      cols.length === 1 ? v : s.op === 'and' ? Math.min(v, cols[1][i]) : Math.max(v, cols[1][i]),
    );
    const sd = noise * meanStd(signal).std;
    for (let i = 0; i < N; i++) out[i * K + k] = signal[i] + sd * g();
  });
  return { rows: N, cols: K, data: out };
}
