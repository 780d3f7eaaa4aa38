/** `clip-dissect score`: which labels to trust, for the run's labels and other methods' (src/pipeline/score.ts). */

import { type ScoreResult, scoreLabels } from '../../pipeline/score.js';
import type { LayerTrustSummary } from '../../pipeline/trust.js';
import { type CliIO, optionalInt, optionalSize } from '../_args.js';
import { startCommand, wroteLines } from '../_command.js';
import {
  type FlagGroup,
  flag,
  helpText,
  JSON_OUTPUT,
  LAYER,
  MEMORY_BUDGET,
  QUIET,
  RESULTS,
  RESULTS_OUT,
  RUN_CONCEPTS,
  RUNTIME,
  THREADS,
} from '../_flags.js';
import { jsonText } from '../_json.js';
import { TRUST_FLAGS, trustOptions } from '../_trust.js';

export const GROUPS = [
  {
    title: 'Inputs',
    flags: {
      results: RESULTS,
      labels: {
        type: 'string',
        multiple: true,
        arg: 'FILE',
        help: 'other labels to score, repeatable: our descriptions.csv, MILAN / LE / any\nlayer,unit,description CSV (units 0-based), or NetDissect tally.csv\n(unit,category,label,…; units 1-based; give --layer)',
      },
      layer: flag(LAYER, {
        multiple: true,
        help: 'a layer to score, repeatable',
        default: 'every layer of the run',
      }),
      concepts: RUN_CONCEPTS,
      out: RESULTS_OUT('score.json'),
    },
  },
  { title: 'Trust figures', flags: TRUST_FLAGS },
  {
    title: 'Resources',
    flags: {
      threads: flag(THREADS, { default: '1 on 2 cores or small layers, else all cores' }),
      runtime: RUNTIME,
      'memory-budget': MEMORY_BUDGET,
      quiet: QUIET,
      json: flag(JSON_OUTPUT, { help: 'print the result as JSON instead of the table' }),
    },
  },
] as const satisfies readonly FlagGroup[];

export const SCORE_HELP = helpText(
  'clip-dissect score --results DIR [--labels FILE …] [options]',
  `Which labels to trust. For every neuron of the run's layers, from the saved features (no new CLIP or target
runs; a labels file's texts are embedded once with the run's CLIP):
  stability   fraction of B bootstrap resamples of the probe images whose winning label is the neuron's
  p, z        permutation test of the label's score: the probe images' activation rows are shuffled R times
              (one shuffle per layer); z against the neuron's own null, p against the layer's pooled null
  simulation  Pearson r on a held-out half of the images between the activations and a line fitted, on the
              other half, from the CLIP similarity of image and label
  correlation, cosine, AUPRC, F1, IoU
              between the activations and the label's presence in each held-out image (ground truth with
              --concept-labels, else CLIP pseudo-labels); the five metrics that pass the missing- and
              extra-label sanity tests
The run's own labels are judged on the label its similarity function picks on the fit half (never on the
images that chose it). Prints mean / median per layer and method side by side; writes score.json (per neuron).`,
  GROUPS,
);

const f3 = (x: number | null) => (x === null ? 'n/a' : x.toFixed(3));
const pair = (s: { mean: number | null; median: number | null }) => `${f3(s.mean)} / ${f3(s.median)}`;

/** The side-by-side table per layer printed on stdout. */
function formatScore(r: ScoreResult): string {
  const out: string[] = [`${r.similarity} over ${r.images} probe images; mean / median per layer`];
  const layers = [...new Set(r.methods.flatMap((m) => m.layers.map((l) => l.layer)))];
  for (const layer of layers) {
    const cols = r.methods.flatMap((m) => {
      const l = m.layers.find((x) => x.layer === layer);
      return l ? [{ method: m.method, s: l.summary, presence: l.settings.presence }] : [];
    });
    const rows: [string, (s: LayerTrustSummary) => string][] = [
      ['neurons (live)', (s) => `${s.neurons} (${s.live})`],
      ['stability', (s) => pair(s.stability)],
      ['significant (p ≤ 0.05)', (s) => `${(100 * s.significant).toFixed(1)}%`],
      ['fit-half label = label', (s) => `${(100 * s.fitLabelMatches).toFixed(1)}%`],
      ['simulation r', (s) => pair(s.simulation)],
      ['correlation', (s) => pair(s.metrics.correlation)],
      ['cosine', (s) => pair(s.metrics.cosine)],
      ['AUPRC', (s) => pair(s.metrics.auprc)],
      ['F1', (s) => pair(s.metrics.f1)],
      ['IoU', (s) => pair(s.metrics.iou)],
      ['badges high/medium/low', (s) => `${s.badges.high}/${s.badges.medium}/${s.badges.low}`],
    ];
    const names = cols.map((c) => (c.method.length > 28 ? `…${c.method.slice(-27)}` : c.method));
    const w = Math.max(15, ...names.map((n) => n.length));
    out.push('');
    out.push(`${layer} (presence: ${cols.map((c) => c.presence).join(', ')})`);
    out.push(`  ${''.padEnd(24)}${names.map((n) => n.padStart(w + 2)).join('')}`);
    for (const [label, f] of rows)
      out.push(`  ${label.padEnd(24)}${cols.map((c) => f(c.s).padStart(w + 2)).join('')}`);
  }
  out.push(...wroteLines(r.files));
  return `${out.join('\n')}\n`;
}

export async function scoreCommand(args: string[], io: CliIO): Promise<number> {
  const start = await startCommand(
    {
      name: 'score',
      help: SCORE_HELP,
      groups: GROUPS,
      required: ['results'],
      progress: true,
    },
    args,
    io,
  );
  if (!start) return 0;
  const { values, renderer, onProgress } = start;
  const r = await scoreLabels(
    {
      results: values.results as string,
      labels: (values.labels as string[] | undefined) ?? [],
      layers: values.layer as string[] | undefined,
      concepts: values.concepts as string | undefined,
      out: values.out as string | undefined,
      threads: optionalInt('threads', values.threads),
      memoryBudget: optionalSize('memory-budget', values['memory-budget']),
      ...trustOptions(values),
    },
    { onProgress, onWarning: renderer.warning, signal: io.signal },
  );
  renderer.finishLine();
  io.stdout.write(values.json ? jsonText(r) : formatScore(r));
  return 0;
}
