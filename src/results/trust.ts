/**
 * The trust figures as results files hold them (neurons.json's per-neuron `trust` and per-layer settings and
 * summary): computed by src/pipeline/trust.ts, read by the report and the follow-up analyses.
 */
import type { LabelMetrics } from '../numeric/trust-metrics.js';

/** The settings a layer's trust figures were computed with. */
export interface TrustSettings {
  /** Bootstrap resamples for stability. */
  bootstraps: number;
  /** Row permutations for significance. */
  permutations: number;
  /** Seed of the resamples, permutations and the split. */
  seed: number;
  /** Fraction of the held-out images counted as active for F1 / IoU. */
  activeFraction: number;
  /** Fraction of the held-out images given a label by CLIP when there is no ground truth. */
  presenceFraction: number;
  fitImages: number;
  heldOutImages: number;
  presence: 'ground-truth' | 'clip' | 'mixed';
}

export type TrustBadge = 'high' | 'medium' | 'low' | 'dead';

export interface NeuronTrust {
  unit: number;
  label: string;
  badge: TrustBadge;
  /** Fraction of bootstrap resamples whose winner is `label`. */
  stability: number;
  /** The most frequent other winner over the resamples and its fraction (null when there is none). */
  runnerUp: string | null;
  runnerUpFraction: number;
  /** The label's similarity score on all images. */
  score: number | null;
  /** z-score of `score` against the neuron's own permutation null. */
  z: number | null;
  /** Permutation p-value against the layer's pooled null. */
  p: number | null;
  /** The label the fit half picks, and whether it equals the full-set label. */
  fitLabel: string;
  fitLabelMatches: boolean;
  /** The label the simulation and the metrics judge (fitLabel in 'chosen' mode, label in 'given' mode). */
  scoredLabel: string;
  /** Held-out Pearson r of the simulated activations. */
  simulation: number | null;
  metrics: { [K in keyof LabelMetrics]: number | null };
  presence: 'ground-truth' | 'clip';
}

export interface SummaryStat {
  mean: number | null;
  median: number | null;
}

export interface LayerTrustSummary {
  neurons: number;
  live: number;
  stability: SummaryStat;
  simulation: SummaryStat;
  metrics: Record<keyof LabelMetrics, SummaryStat>;
  /** Fraction of live neurons with p ≤ 0.05. */
  significant: number;
  /** Fraction of live neurons whose fit-half label is the full-set label. */
  fitLabelMatches: number;
  badges: Record<TrustBadge, number>;
}

export interface LayerTrust {
  layer: string;
  settings: TrustSettings;
  neurons: NeuronTrust[];
  summary: LayerTrustSummary;
  /** Wall-clock seconds of the layer, and of its similarity reruns. */
  seconds: number;
  rerunSeconds: number;
}
