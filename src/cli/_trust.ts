/** Flags and printing shared by the commands that compute trust figures (dissect, score). */
import { type DissectTrustOptions, type LayerTrustSummary, TRUST_DEFAULTS } from '../pipeline/trust.js';
import { optionalInt, parseNumber } from './_args.js';
import type { FlagDef } from './_flags.js';

/** The trust flags (defaults: the library's TRUST_DEFAULTS). */
export const TRUST_FLAGS = {
  bootstraps: {
    type: 'string',
    arg: 'B',
    help: 'bootstrap resamples of the probe images for stability',
    default: String(TRUST_DEFAULTS.bootstraps),
  },
  permutations: {
    type: 'string',
    arg: 'R',
    help: 'row permutations for the significance null',
    default: String(TRUST_DEFAULTS.permutations),
  },
  'trust-seed': {
    type: 'string',
    arg: 'S',
    help: 'seed of the resamples, permutations and the fit/held-out split',
    default: String(TRUST_DEFAULTS.seed),
  },
  'concept-labels': {
    type: 'string',
    arg: 'FILE',
    help: 'ground-truth presence, images × concepts of 0/1 in probe order: a CSV with a\nheader of concept names, or an .npy whose columns are the concept set',
    default: 'CLIP pseudo-labels, the top --presence-fraction images per label',
  },
  'active-fraction': {
    type: 'string',
    arg: 'F',
    help: 'top fraction of images counted as active for F1 / IoU',
    default: String(TRUST_DEFAULTS.activeFraction),
  },
  'presence-fraction': {
    type: 'string',
    arg: 'F',
    help: 'top fraction of images a CLIP pseudo-label marks present',
    default: String(TRUST_DEFAULTS.presenceFraction),
  },
} as const satisfies Record<string, FlagDef>;

const fraction = (flag: string, v: unknown) =>
  v === undefined ? undefined : parseNumber(flag, String(v), { min: Number.MIN_VALUE });

/** Whether any trust flag was given (then too few probe images is an error rather than a skip). */
export function trustFlagsGiven(values: Record<string, unknown>): boolean {
  return Object.keys(TRUST_FLAGS).some((k) => values[k] !== undefined);
}

/** The trust options from parsed flags (undefined where a flag is absent: the library's defaults). */
export function trustOptions(values: Record<string, unknown>): DissectTrustOptions {
  return {
    bootstraps: optionalInt('bootstraps', values.bootstraps),
    permutations: optionalInt('permutations', values.permutations),
    seed: optionalInt('trust-seed', values['trust-seed'], 0),
    conceptLabels: values['concept-labels'] as string | undefined,
    activeFraction: fraction('active-fraction', values['active-fraction']),
    presenceFraction: fraction('presence-fraction', values['presence-fraction']),
  };
}

const f3 = (x: number | null) => (x === null ? '   n/a' : x.toFixed(3).padStart(6));

/** One line: a layer's trust summary. */
export function trustLine(s: LayerTrustSummary): string {
  const b = s.badges;
  return `trust: stability ${f3(s.stability.mean)}, simulation r ${f3(s.simulation.mean)}, significant ${(100 * s.significant).toFixed(1)}%, fit-half label = label ${(100 * s.fitLabelMatches).toFixed(1)}%; badges high ${b.high}, medium ${b.medium}, low ${b.low}${b.dead ? `, dead ${b.dead}` : ''}`;
}
