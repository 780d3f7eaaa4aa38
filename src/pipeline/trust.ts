/**
 * Which labels to trust: per-neuron figures computed from a dissection's saved features (no new CLIP or target
 * runs), after Oikarinen et al. (Evaluating Neuron Explanations, ICML 2025; Linear Explanations, ICML 2024) and
 * the robustness study of Corrupting Neuron Explanations (ICCV 2023).
 *
 * For one layer (activations A, N×K), the candidate labels (text features T, M×d: the concept set, or the
 * distinct labels of a labels file) and the image features I (N×d):
 *
 * 1. stability: B bootstrap resamples of the probe images (rows of I and A drawn with replacement); the
 *    similarity function is rerun on each; the fraction of resamples whose winning candidate is the neuron's
 *    label, and the most frequent other winner.
 * 2. significance: R permutations of the rows of A (one shuffle per permutation shared by the layer's neurons);
 *    the winning score of each neuron under each; z = (observed − mean) / std of the neuron's own R null scores
 *    (std with ddof 0), p = (1 + #{pooled null ≥ observed}) / (1 + K'·R) against the null scores of all K' live
 *    neurons of the layer pooled (resolution 1/(K'·R)). The observed score is the label's score on all images.
 * 3. simulation: the images are split (seeded) into a fit half and a held-out half. x_i = cosine of image i's
 *    CLIP features with the scored label's text features; on the fit half a least-squares line
 *    activation ≈ α + β·x is fitted (monotone, two parameters); on the held-out half, the Pearson r between the
 *    line's prediction and the activation (= sign(β)·corr(x, activation); NaN when β = 0).
 * 4. metrics on the held-out half: correlation, cosine, AUPRC, F1, IoU (src/numeric/trust-metrics.ts) between
 *    the activations and the scored label's presence: ground truth when given, else CLIP pseudo-labels = the
 *    top `presenceFraction` (default 10%) of the held-out images by x. F1 / IoU binarise the activations to their
 *    top `activeFraction` (default 5%).
 *
 * The scored label (3, 4) must not be judged on the images that chose it: in 'chosen' mode (dissect) it is the
 * label the similarity function picks on the fit half alone; in 'given' mode (`score`, labels from a file) it is
 * the given label. Either way `fitLabelMatches` says whether the fit half picks the full-set label.
 * For soft_wpmi / wpmi the fit-half run uses topK scaled to the half (round(topK·|fit|/N), the same fraction of
 * the probe set); rank_reorder's topFraction scales by itself (raised to 1/|fit| where it would select no image).
 *
 * Badge: 'high' when stability ≥ 0.8 and p ≤ 0.01; 'low' when stability < 0.5 or p > 0.05; else 'medium';
 * 'dead' for a constant neuron.
 *
 * The runs share the work that does not change between them (SimilarityReuse in the engine: soft_wpmi / wpmi's
 * softmax of every image and each neuron's image ranking, cos_similarity's concept norms); every figure equals
 * what plain computeSimilarity reruns give.
 */

import { platform } from '#platform';
import { DEFAULT_MEMORY_BUDGET } from '../compute/memory-budget.js';
import {
  computeSimilarity,
  cosConceptNorms,
  type PmiSoftmax,
  pmiSoftmaxRows,
  type SimilarityResult,
} from '../compute/similarity/index.js';
import { similarityColumns } from '../compute/similarity-columns.js';
import { type ConceptPresence, readConceptLabels } from '../data/concept-labels.js';
import { ArgumentError, ShapeError } from '../numeric/errors.js';
import { gatherRows, type Matrix } from '../numeric/matrix.js';
import { mulberry32, randomPermutation } from '../numeric/random.js';
import { normalizeRows } from '../numeric/reductions.js';
import { anySimilarityDefinition } from '../numeric/similarity-functions/index.js';
import { resolveSimilarityOptions, type SimilarityName } from '../numeric/similarity-options.js';
import { columnRanking, resampledColumnTopK } from '../numeric/topk.js';
import {
  bootstrapIndices,
  correlation,
  type LabelMetrics,
  labelMetrics,
  linearFit,
  METRIC_NAMES,
  meanStd,
  pooledPValue,
  splitHalves,
  topFractionMask,
} from '../numeric/trust-metrics.js';
import type { RunHooks } from '../progress.js';
import type { LayerResult } from '../results/descriptions.js';
import type {
  LayerTrust,
  LayerTrustSummary,
  NeuronTrust,
  SummaryStat,
  TrustBadge,
  TrustSettings,
} from '../results/trust.js';

/** The fewest probe images the trust figures take: a fit half and a held-out half of at least 4 each. */
export const TRUST_MIN_IMAGES = 8;

export interface TrustOptions {
  /** Bootstrap resamples for stability. Default 20. */
  bootstraps?: number;
  /** Row permutations for significance. Default 20. */
  permutations?: number;
  /** Seed of the resamples, permutations and the split. Default 0. */
  seed?: number;
  /** Fraction of the held-out images counted as active for F1 / IoU. Default 0.05. */
  activeFraction?: number;
  /** Fraction of the held-out images given a label by CLIP when there is no ground truth. Default 0.1. */
  presenceFraction?: number;
  memoryBudget?: number;
  /** onnxruntime threads of the reruns. Default: 1 on 2 cores or for small layers (K·M < 2^20), else all. */
  threads?: number;
}

export const TRUST_DEFAULTS = {
  bootstraps: 20,
  permutations: 20,
  seed: 0,
  activeFraction: 0.05,
  presenceFraction: 0.1,
} as const;

/** What one layer is scored on. */
export interface TrustInputs {
  layer: string;
  similarity: SimilarityName;
  /** The similarity function's hyperparameters (the run's). */
  options?: Record<string, number>;
  imageFeatures: Matrix; // N×d
  /** Candidate labels' text features, M×d. */
  candidates: Matrix;
  candidateNames: readonly string[];
  activations: Matrix; // N×K
  /** Per neuron, the candidate index of its label. */
  labels: Int32Array;
  /** 'chosen': labels are the similarity function's (dissect); 'given': from elsewhere (a labels file). */
  mode: 'chosen' | 'given';
  /** Ground-truth presence (N values, 0/1) of candidate c, when known. */
  groundTruth?: (candidate: number) => Uint8Array | undefined;
}

export type { LayerTrust, LayerTrustSummary, NeuronTrust, SummaryStat, TrustBadge, TrustSettings };

function checkFraction(name: string, v: number): void {
  if (!(typeof v === 'number' && v > 0 && v <= 1))
    throw new ArgumentError(`'${name}' must be in (0, 1] but got ${v}`);
}

/** Options with defaults, checked (before any work). */
export function resolveTrustOptions(
  o: TrustOptions = {},
): Required<Omit<TrustOptions, 'memoryBudget' | 'threads' | 'onProgress'>> {
  const r = {
    ...TRUST_DEFAULTS,
    ...Object.fromEntries(Object.entries(o).filter(([, v]) => v !== undefined)),
  };
  for (const k of ['bootstraps', 'permutations'] as const)
    if (!(Number.isInteger(r[k]) && r[k] >= 1 && r[k] <= 10000))
      throw new ArgumentError(`'${k}' must be an integer in [1, 10000] but got ${r[k]}`);
  if (!(Number.isInteger(r.seed) && r.seed >= 0))
    throw new ArgumentError(`'seed' must be a non-negative integer but got ${r.seed}`);
  checkFraction('activeFraction', r.activeFraction);
  checkFraction('presenceFraction', r.presenceFraction);
  return {
    bootstraps: r.bootstraps,
    permutations: r.permutations,
    seed: r.seed,
    activeFraction: r.activeFraction,
    presenceFraction: r.presenceFraction,
  };
}

const identity = (n: number) => Int32Array.from({ length: n }, (_, i) => i);

const fin = (x: number) => (Number.isFinite(x) ? x : null);

function summaryStat(values: number[]): SummaryStat {
  const v = values.filter(Number.isFinite).sort((a, b) => a - b);
  if (v.length === 0) return { mean: null, median: null };
  const h = v.length >> 1;
  return {
    mean: v.reduce((s, x) => s + x, 0) / v.length,
    median: v.length % 2 ? v[h] : (v[h - 1] + v[h]) / 2,
  };
}

function badgeOf(dead: boolean, stability: number, p: number): TrustBadge {
  if (dead) return 'dead';
  if (stability >= 0.8 && p <= 0.01) return 'high';
  if (stability < 0.5 || !(p <= 0.05)) return 'low';
  return 'medium';
}

/** The layer summary of per-neuron trust records. */
function summarizeTrust(neurons: readonly NeuronTrust[]): LayerTrustSummary {
  const live = neurons.filter((n) => n.badge !== 'dead');
  const metrics = {} as Record<keyof LabelMetrics, SummaryStat>;
  for (const m of METRIC_NAMES) metrics[m] = summaryStat(live.map((n) => n.metrics[m] ?? Number.NaN));
  const badges: Record<TrustBadge, number> = { high: 0, medium: 0, low: 0, dead: 0 };
  for (const n of neurons) badges[n.badge]++;
  const frac = (f: (n: NeuronTrust) => boolean) =>
    live.length ? live.filter(f).length / live.length : Number.NaN;
  return {
    neurons: neurons.length,
    live: live.length,
    stability: summaryStat(live.map((n) => n.stability)),
    simulation: summaryStat(live.map((n) => n.simulation ?? Number.NaN)),
    metrics,
    significant: frac((n) => n.p !== null && n.p <= 0.05),
    fitLabelMatches: frac((n) => n.fitLabelMatches),
    badges,
  };
}

/** The similarity options for a run on `rows` of the N images (topK scaled for soft_wpmi / wpmi). */
function optionsFor(r: SimilarityResult, rows: number): Record<string, number> {
  const def = anySimilarityDefinition(r.similarity);
  return def.forRows ? def.forRows({ ...r.options }, rows, r.nImages) : { ...r.options };
}

/**
 * The trust figures of one layer's labels (see the file comment). Runs the similarity function
 * 2 + bootstraps + permutations times on the saved features.
 */
export async function computeLayerTrust(
  inp: TrustInputs,
  opts: TrustOptions = {},
  hooks: RunHooks = {},
): Promise<LayerTrust> {
  const t0 = performance.now();
  const o = resolveTrustOptions(opts);
  const I = inp.imageFeatures;
  const T = inp.candidates;
  const A = inp.activations;
  const N = A.rows;
  const K = A.cols;
  if (I.rows !== N)
    throw new ShapeError(`image features have ${I.rows} rows but the activations ${N}; one row per image`);
  if (T.rows !== inp.candidateNames.length)
    throw new ShapeError(
      `${T.rows} candidate text features but ${inp.candidateNames.length} candidate names`,
    );
  if (inp.labels.length !== K)
    throw new ShapeError(`${inp.labels.length} labels for layer '${inp.layer}' of ${K} neurons`);
  if (N < TRUST_MIN_IMAGES)
    throw new ArgumentError(
      `trust figures need at least ${TRUST_MIN_IMAGES} probe images (two halves of ${TRUST_MIN_IMAGES / 2}) but layer '${inp.layer}' has ${N}`,
    );
  for (let k = 0; k < K; k++)
    if (!(inp.labels[k] >= 0 && inp.labels[k] < T.rows))
      throw new ArgumentError(
        `label of unit ${k} must be a candidate index in [0, ${T.rows}) but got ${inp.labels[k]}`,
      );
  const B = o.bootstraps;
  const R = o.permutations;
  const total = B + R + 2;
  let done = 0;
  const stage = `trust ${inp.layer}`;
  const step = () => hooks.onProgress?.({ stage, done: ++done, total, unit: 'runs' });
  // the engine's kernel workers cost more to start than they save on small problems and on 2 cores
  const threads =
    opts.threads ?? (platform.host.availableParallelism() <= 2 || K * T.rows < 1 << 20 ? 1 : undefined);
  let rerunSeconds = 0;
  // Work shared by the reruns (soft_wpmi / wpmi): the softmax rows of every image, and each neuron's
  // ranking of the images, from which a resample's top images follow (see SimilarityReuse).
  let softmax: PmiSoftmax | undefined;
  let order: Int32Array | undefined;
  // cos_similarity: the concepts' ‖P_m‖, which depend on the image features only (full set and permutations)
  let norms: Float32Array | undefined;
  /** One run on rows `iRows` of I and `aRows` of A (all rows when undefined). */
  const run = async (
    iRows: Int32Array | undefined,
    aRows: Int32Array | undefined,
    options: Record<string, number> | undefined,
    keepMatrix = false,
  ) => {
    const t = performance.now();
    const A2 = aRows ? gatherRows(A, aRows) : A;
    const r = await computeSimilarity(
      inp.similarity,
      { imageFeatures: iRows ? gatherRows(I, iRows) : I, textFeatures: T, activations: A2 },
      {
        options: options as never,
        top: 1,
        topImages: 0,
        keepMatrix,
        memoryBudget: opts.memoryBudget,
        threads,
      },
      { signal: hooks.signal },
      {
        softmax,
        softmaxRows: iRows,
        topIndices:
          order && options ? resampledColumnTopK(A, order, aRows ?? identity(N), options.topK) : undefined,
        conceptNorms: iRows ? undefined : norms,
      },
    );
    rerunSeconds += (performance.now() - t) / 1000;
    return r;
  };
  const rand = mulberry32(o.seed);

  // the shared work, computed before the full-set run, which uses it too
  const options = resolveSimilarityOptions(inp.similarity, inp.options as never, N) as unknown as Record<
    string,
    number
  >;
  const kernel = anySimilarityDefinition(inp.similarity).kernel(options).kind;
  if (kernel === 'pmi') {
    const t = performance.now();
    // the cached softmax must fit beside the engine's buffers
    if (N * (T.rows + 4) * 4 <= 0.2 * (opts.memoryBudget ?? DEFAULT_MEMORY_BUDGET))
      softmax = await pmiSoftmaxRows(I, T, options.a, threads);
    if (A.data.every(Number.isFinite)) order = columnRanking(A);
    rerunSeconds += (performance.now() - t) / 1000;
  } else if (kernel === 'cos') {
    const t = performance.now();
    norms = await cosConceptNorms(I, T, threads, opts.memoryBudget);
    rerunSeconds += (performance.now() - t) / 1000;
  }

  // the full set: observed scores of the labels
  const full = await run(undefined, undefined, options, inp.mode === 'given');
  step();
  const observed = new Float64Array(K);
  for (let k = 0; k < K; k++)
    observed[k] =
      inp.mode === 'given' ? (full.matrix as Matrix).data[k * T.rows + inp.labels[k]] : full.scores[k];
  const dead = full.dead;

  // stability
  const winners = new Int32Array(B * K);
  for (let b = 0; b < B; b++) {
    const idx = bootstrapIndices(N, rand);
    const r = await run(idx, idx, full.options);
    winners.set(r.labels, b * K);
    step();
  }

  // significance
  const nulls = new Float64Array(R * K);
  for (let q = 0; q < R; q++) {
    const perm = randomPermutation(N, rand);
    const r = await run(undefined, perm, full.options);
    for (let k = 0; k < K; k++) nulls[q * K + k] = r.scores[k];
    step();
  }
  const pooledList: number[] = [];
  for (let q = 0; q < R; q++)
    for (let k = 0; k < K; k++)
      if (!dead[k] && Number.isFinite(nulls[q * K + k])) pooledList.push(nulls[q * K + k]);
  const pooled = Float64Array.from(pooledList).sort();

  // fit / held-out halves
  const { fit, held } = splitHalves(N, rand);
  const fitRun = await run(fit, fit, optionsFor(full, fit.length));
  step();

  const In = normalizeRows(I);
  const Tn = normalizeRows(T);
  // the CLIP cosines of the scored labels
  const sims = similarityColumns(In, Tn, inp.mode === 'chosen' ? fitRun.labels : inp.labels);
  const simOf = (c: number) => sims.get(c) as Float64Array;

  const names = inp.candidateNames;
  const neurons: NeuronTrust[] = [];
  const aFit = new Float64Array(fit.length);
  const aHeld = new Float64Array(held.length);
  const xFit = new Float64Array(fit.length);
  const xHeld = new Float64Array(held.length);
  const pred = new Float64Array(held.length);
  const counts = new Map<number, number>();
  let gtUsed = 0;
  for (let k = 0; k < K; k++) {
    const label = inp.labels[k];
    counts.clear();
    for (let b = 0; b < B; b++) {
      const w = winners[b * K + k];
      counts.set(w, (counts.get(w) ?? 0) + 1);
    }
    let runnerUp = -1;
    let runnerCount = 0;
    for (const [c, n] of counts)
      if (c !== label && (n > runnerCount || (n === runnerCount && c < runnerUp))) {
        runnerUp = c;
        runnerCount = n;
      }
    const stability = (counts.get(label) ?? 0) / B;
    const own = new Float64Array(R);
    for (let q = 0; q < R; q++) own[q] = nulls[q * K + k];
    const { mean, std } = meanStd(own);
    const isDead = dead[k] === 1;
    const p = isDead ? Number.NaN : pooledPValue(observed[k], pooled);
    const z = isDead || !(std > 0) ? Number.NaN : (observed[k] - mean) / std;

    const fitLabel = fitRun.labels[k];
    const scored = inp.mode === 'chosen' ? fitLabel : label;
    const x = simOf(scored);
    for (let i = 0; i < fit.length; i++) {
      aFit[i] = A.data[fit[i] * K + k];
      xFit[i] = x[fit[i]];
    }
    for (let i = 0; i < held.length; i++) {
      aHeld[i] = A.data[held[i] * K + k];
      xHeld[i] = x[held[i]];
    }
    const line = linearFit(xFit, aFit);
    for (let i = 0; i < held.length; i++) pred[i] = line.intercept + line.slope * xHeld[i];
    const simulation = line.slope === 0 ? Number.NaN : correlation(pred, aHeld);
    const gt = inp.groundTruth?.(scored);
    let presence: Uint8Array;
    if (gt) {
      presence = Uint8Array.from(held, (i) => gt[i]);
      gtUsed++;
    } else {
      presence = topFractionMask(xHeld, o.presenceFraction);
    }
    const m = labelMetrics(aHeld, presence, o.activeFraction);
    neurons.push({
      unit: k,
      label: names[label],
      badge: badgeOf(isDead, stability, p),
      stability,
      runnerUp: runnerUp >= 0 ? names[runnerUp] : null,
      runnerUpFraction: runnerCount / B,
      score: fin(observed[k]),
      z: fin(z),
      p: fin(p),
      fitLabel: names[fitLabel],
      fitLabelMatches: fitLabel === label,
      scoredLabel: names[scored],
      simulation: isDead ? null : fin(simulation),
      metrics: {
        correlation: fin(m.correlation),
        cosine: fin(m.cosine),
        auprc: fin(m.auprc),
        f1: isDead ? null : m.f1,
        iou: isDead ? null : m.iou,
      },
      presence: gt ? 'ground-truth' : 'clip',
    });
  }
  return {
    layer: inp.layer,
    settings: {
      ...o,
      fitImages: fit.length,
      heldOutImages: held.length,
      presence: gtUsed === 0 ? 'clip' : gtUsed === K ? 'ground-truth' : 'mixed',
    },
    neurons,
    summary: summarizeTrust(neurons),
    seconds: (performance.now() - t0) / 1000,
    rerunSeconds,
  };
}

/** What dissect passes to addLayerTrust. */
export interface DissectTrustOptions extends TrustOptions {
  /** Ground-truth concept presence: a CSV or .npy file (src/data/concept-labels.ts). */
  conceptLabels?: string;
}

/**
 * Adds the trust figures of each dissected layer to its LayerResult (`trust`), judging the labels the
 * similarity function chose over the concept set ('chosen' mode).
 */
export async function addLayerTrust(
  layers: LayerResult[],
  features: { imageFeatures: Matrix; textFeatures: Matrix; activations: ReadonlyMap<string, Matrix> },
  similarity: SimilarityName,
  opts: DissectTrustOptions,
  hooks: RunHooks = {},
): Promise<void> {
  resolveTrustOptions(opts);
  const concepts = layers[0]?.concepts ?? [];
  let truth: ConceptPresence | undefined;
  if (opts.conceptLabels !== undefined)
    truth = await readConceptLabels(opts.conceptLabels, features.imageFeatures.rows, concepts);
  for (const l of layers) {
    l.trust = await computeLayerTrust(
      {
        layer: l.layer,
        similarity,
        options: l.result.options,
        imageFeatures: features.imageFeatures,
        candidates: features.textFeatures,
        candidateNames: l.concepts,
        activations: features.activations.get(l.layer) as Matrix,
        labels: l.result.labels,
        mode: 'chosen',
        groundTruth: truth ? (c) => truth.get(l.concepts[c]) : undefined,
      },
      opts,
      hooks,
    );
  }
}
