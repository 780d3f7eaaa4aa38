/**
 * `clip-dissect sanity`: synthetic neurons with known labels, built from the user's CLIP features, concept set
 * and probe set (as MAIA's synthetic neurons): neuron_c(image) = CLIP cosine of the image and concept c, or of
 * two concepts joined by OR (the larger of the two cosines) or AND (the smaller), plus Gaussian noise whose
 * standard deviation is `noise` times that of the clean signal over the probe images.
 *
 * Recovery: each similarity function labels the neurons (the run's hyperparameters for the run's function,
 * defaults otherwise, soft_wpmi / wpmi topK clipped to N/2); a neuron is recovered at top 1 when its label is
 * its concept (for OR / AND: either concept), at top 5 when that concept is among its 5 best.
 * Metric sanity tests (Oikarinen et al., ICML 2025), over random concept pairs (a, b), presence = CLIP
 * pseudo-labels (the top `presenceFraction` of the probe images by similarity to the concept): extra-label —
 * neuron "a" must score higher with explanation "a" than with "a OR b"; missing-label — neuron "a OR b" must
 * score higher with "a OR b" than with "a". The pass rate is the fraction of pairs where it does (strictly).
 * AUC (ROC) is reported beside the five metrics for contrast.
 */
import { computeSimilarity } from '../compute/similarity/index.js';
import { ArgumentError } from '../numeric/errors.js';
import { rocAuc } from '../numeric/eval-metrics.js';
import type { Matrix } from '../numeric/matrix.js';
import { gaussianSampler, mulberry32, randomPermutation } from '../numeric/random.js';
import { normalizeRows } from '../numeric/reductions.js';
import { anySimilarityDefinition } from '../numeric/similarity-functions/index.js';
import { checkSimilarityName, SIMILARITY_NAMES, type SimilarityName } from '../numeric/similarity-options.js';
import {
  labelMetrics,
  METRIC_NAMES,
  meanStd,
  similarityColumn,
  topCount,
  topFractionMask,
} from '../numeric/trust-metrics.js';
import type { RunHooks } from '../progress.js';
import { writeAnalysisJson } from '../results/index.js';
import { loadDissectRun, readRunMatrix } from './_results.js';

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

export interface SanityOptions {
  /** A `dissect` output folder: its CLIP features, concept set and probe set are used. */
  results: string;
  /** Single-concept neurons, and as many OR and AND neurons each. Default 50. */
  neurons?: number;
  /** Noise levels (noise sd / signal sd). Default [0, 0.5, 1, 2]. */
  noise?: readonly number[];
  /** Similarity functions to dissect with. Default all five. */
  similarities?: readonly SimilarityName[];
  /** Concept pairs for the missing-label and extra-label tests. Default 200. */
  pairs?: number;
  /** Fraction of images a CLIP pseudo-label marks present, and of activations counted active. */
  presenceFraction?: number;
  activeFraction?: number;
  seed?: number;
  /** The run's concept set, if args.json's path no longer reaches it. */
  concepts?: string;
  /** Where sanity.json goes (default: the results folder). */
  out?: string;
  threads?: number;
  memoryBudget?: number;
}

export interface RecoveryRow {
  noise: number;
  similarity: SimilarityName;
  kind: 'single' | 'or' | 'and';
  neurons: number;
  /** Fraction labelled with the planted concept (for OR / AND: either of the two). */
  top1: number;
  /** Fraction with the planted concept (either) among the top 5. */
  top5: number;
}

export interface SanityTestRow {
  noise: number;
  test: 'missing-label' | 'extra-label';
  metric: string;
  /** Fraction of pairs where the correct explanation scores strictly higher. */
  passRate: number;
}

export interface SanityResult {
  images: number;
  concepts: number;
  recovery: RecoveryRow[];
  tests: SanityTestRow[];
  files: string[];
}

const SANITY_METRICS = [...METRIC_NAMES, 'auc'] as const;

function metricValue(
  name: (typeof SANITY_METRICS)[number],
  act: Float64Array,
  pres: Uint8Array,
  active: number,
) {
  return name === 'auc' ? rocAuc(act, pres) : labelMetrics(act, pres, active)[name];
}

/** Draws `count` distinct integers of [0, n) (count ≤ n). */
function distinctDraw(n: number, count: number, rand: () => number): number[] {
  return Array.from(randomPermutation(n, rand).subarray(0, count));
}

/**
 * Synthetic neurons from a run's features: recovery by each similarity function per noise level, and the
 * missing-label / extra-label tests of each metric (see the README section "Which labels to trust").
 */
export async function runSanity(o: SanityOptions, hooks: RunHooks = {}): Promise<SanityResult> {
  if (typeof o?.results !== 'string' || o.results === '')
    throw new ArgumentError(`'results' is required but got ${JSON.stringify(o?.results)}`);
  const nNeurons = o.neurons ?? 50;
  const pairs = o.pairs ?? 200;
  for (const [k, v] of [
    ['neurons', nNeurons],
    ['pairs', pairs],
  ] as const)
    if (!(Number.isInteger(v) && v >= 1))
      throw new ArgumentError(`'${k}' must be a positive integer but got ${v}`);
  const noise = o.noise ?? [0, 0.5, 1, 2];
  if (noise.length === 0 || !noise.every((x) => Number.isFinite(x) && x >= 0))
    throw new ArgumentError(`'noise' must be a list of numbers >= 0 but got ${JSON.stringify(noise)}`);
  for (const s of o.similarities ?? []) checkSimilarityName(s);
  topCount(2, o.presenceFraction ?? 0.1);
  topCount(2, o.activeFraction ?? 0.05);
  const run = await loadDissectRun(o.results);
  const I = await readRunMatrix(run, run.imageFeaturesFile);
  const T = await readRunMatrix(run, run.textFeaturesFile);
  const { recovery, tests } = await sanityFromFeatures(
    I,
    T,
    o,
    { similarity: run.similarity, options: run.options },
    hooks,
  );
  const body = {
    results: o.results,
    images: I.rows,
    concepts: T.rows,
    settings: {
      neurons: Math.min(nNeurons, T.rows),
      pairs,
      noise,
      presenceFraction: o.presenceFraction ?? 0.1,
      activeFraction: o.activeFraction ?? 0.05,
      seed: o.seed ?? 0,
    },
    recovery,
    tests,
  };
  const out = await writeAnalysisJson(o.out ?? o.results, 'sanity', body);
  return { images: I.rows, concepts: T.rows, recovery, tests, files: [out] };
}

/**
 * The sanity experiment on image features I (N×d) and concept features T (M×d); `run` gives the hyperparameters
 * of one function (the dissection's). Options as runSanity's (results, out unused).
 */
export async function sanityFromFeatures(
  I: Matrix,
  T: Matrix,
  o: Omit<SanityOptions, 'results' | 'out' | 'concepts'>,
  run: { similarity?: SimilarityName; options?: Record<string, number> } = {},
  hooks: RunHooks = {},
): Promise<{ recovery: RecoveryRow[]; tests: SanityTestRow[] }> {
  const nNeurons = o.neurons ?? 50;
  const pairs = o.pairs ?? 200;
  const noise = o.noise ?? [0, 0.5, 1, 2];
  const sims = (o.similarities ?? SIMILARITY_NAMES).map((s) => checkSimilarityName(s));
  const presenceFraction = o.presenceFraction ?? 0.1;
  const activeFraction = o.activeFraction ?? 0.05;
  const M = T.rows;
  if (M < 2) throw new ArgumentError(`the run has ${M} concept; synthetic neurons need at least 2`);
  const N = I.rows;
  const In = normalizeRows(I);
  const Tn = normalizeRows(T);
  const rand = mulberry32(o.seed ?? 0);
  const k1 = Math.min(nNeurons, M);
  const singles = distinctDraw(M, k1, rand).map((c) => ({ concepts: [c] }));
  const pairOf = () => distinctDraw(M, 2, rand);
  const ors = Array.from({ length: k1 }, () => ({ concepts: pairOf(), op: 'or' as const }));
  const ands = Array.from({ length: k1 }, () => ({ concepts: pairOf(), op: 'and' as const }));
  const specs: SyntheticNeuron[] = [...singles, ...ors, ...ands];
  const testPairs = Array.from({ length: pairs }, pairOf);
  const recovery: RecoveryRow[] = [];
  const tests: SanityTestRow[] = [];
  const total = noise.length * (sims.length + 1);
  let done = 0;
  const presenceOf = (c: number) => topFractionMask(similarityColumn(In, Tn, c), presenceFraction);
  for (const level of noise) {
    const A = syntheticActivations(In, Tn, specs, level, rand);
    for (const s of sims) {
      // the function's defaults fitted to this small probe, under the run's own options
      const def = anySimilarityDefinition(s);
      const defaults = { ...def.defaults };
      const options: Record<string, number> = {
        ...(def.forSmallProbe ? def.forSmallProbe(defaults, N) : defaults),
        ...(s === run.similarity ? (run.options ?? {}) : {}),
      };
      const r = await computeSimilarity(
        s,
        { imageFeatures: I, textFeatures: T, activations: A },
        {
          options: options as never,
          top: Math.min(5, M),
          topImages: 0,
          threads: o.threads,
          memoryBudget: o.memoryBudget,
        },
        { signal: hooks.signal },
      );
      for (const [kind, from, to] of [
        ['single', 0, k1],
        ['or', k1, 2 * k1],
        ['and', 2 * k1, 3 * k1],
      ] as const) {
        let top1 = 0;
        let top5 = 0;
        for (let k = from; k < to; k++) {
          const planted = specs[k].concepts;
          if (planted.includes(r.labels[k])) top1++;
          if (Array.from(r.topConcepts.subarray(k * r.top, (k + 1) * r.top)).some((c) => planted.includes(c)))
            top5++;
        }
        recovery.push({
          noise: level,
          similarity: s,
          kind,
          neurons: to - from,
          top1: top1 / (to - from),
          top5: top5 / (to - from),
        });
      }
      hooks.onProgress?.({ stage: 'sanity', done: ++done, total, unit: 'runs' });
    }
    // missing-label / extra-label tests on the metrics
    const single = syntheticActivations(
      In,
      Tn,
      testPairs.map((p) => ({ concepts: [p[0]] })),
      level,
      rand,
    );
    const either = syntheticActivations(
      In,
      Tn,
      testPairs.map((p) => ({ concepts: p, op: 'or' as const })),
      level,
      rand,
    );
    const wins = {
      'missing-label': Object.fromEntries(SANITY_METRICS.map((m) => [m, 0])),
      'extra-label': Object.fromEntries(SANITY_METRICS.map((m) => [m, 0])),
    };
    const column = (A: Matrix, k: number) =>
      Float64Array.from({ length: N }, (_, i) => A.data[i * A.cols + k]);
    testPairs.forEach(([a, b], k) => {
      const pa = presenceOf(a);
      const pb = presenceOf(b);
      const pab = pa.map((v, i) => v | pb[i]);
      const actA = column(single, k);
      const actAB = column(either, k);
      for (const m of SANITY_METRICS) {
        // neuron "a" explained by "a" (correct) vs "a or b" (an extra label)
        if (metricValue(m, actA, pa, activeFraction) > metricValue(m, actA, pab, activeFraction))
          wins['extra-label'][m]++;
        // neuron "a or b" explained by "a or b" (correct) vs "a" (a missing label)
        if (metricValue(m, actAB, pab, activeFraction) > metricValue(m, actAB, pa, activeFraction))
          wins['missing-label'][m]++;
      }
    });
    for (const test of ['missing-label', 'extra-label'] as const)
      for (const m of SANITY_METRICS)
        tests.push({ noise: level, test, metric: m, passRate: wins[test][m] / pairs });
    hooks.onProgress?.({ stage: 'sanity', done: ++done, total, unit: 'runs' });
  }
  return { recovery, tests };
}
