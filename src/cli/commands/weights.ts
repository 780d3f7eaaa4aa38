/** `clip-dissect weights`: weights between two layers vs the similarity of their concepts (paper Sec. 5). */

import type { PearsonResult } from '../../numeric/stats.js';
import { analyseWeights, WEIGHT_TEXT_SPACES, type WeightTextSpace } from '../../pipeline/weights.js';
import { type CliIO, choice, optionalInt } from '../_args.js';
import { startCommand, wroteLines } from '../_command.js';
import {
  CACHE_DIR,
  type FlagGroup,
  flag,
  GROUND_TRUTH,
  helpText,
  JSON_OUTPUT,
  MPNET,
  OFFLINE,
  QUIET,
  RESULTS,
  RESULTS_OUT,
  RUNTIME,
  THREADS,
} from '../_flags.js';
import { jsonText } from '../_json.js';

export const GROUPS = [
  {
    title: 'Inputs',
    flags: {
      results: flag(RESULTS, { help: `${RESULTS.help}; --from must be one of its layers` }),
      from: { type: 'string', arg: 'LAYER', help: 'the layer feeding the weights, e.g. layer4' },
      to: {
        type: 'string',
        arg: 'LAYER',
        help: "the layer they feed, e.g. fc (a module or tensor of the run's target model)",
      },
      'ground-truth': flag(GROUND_TRUTH, {
        help: 'class names of the --to units, one a line, in unit order',
      }),
    },
  },
  {
    title: 'Options',
    flags: {
      'text-space': {
        type: 'string',
        arg: 'mpnet|clip',
        help: 'where concept similarity is measured (labels and class names are embedded as they are, as the reference notebook does): mpnet (default), the sentence encoder of --mpnet, the space of the paper\'s r = 0.120 / 0.258 (the notebook correlates the weights with its "mpnet cos"); clip, the run\'s CLIP text encoder ("CLIP cos")',
      },
      mpnet: flag(MPNET, { help: 'sentence encoder of --text-space mpnet' }),
      show: { type: 'string', arg: 'N', help: 'weights shown, largest first', default: '20', alias: 'top' },
      'top-weights': {
        type: 'string',
        arg: 'N',
        help: 'size of the "highest weights" correlation (as in the paper)',
        default: '50000',
      },
      out: RESULTS_OUT('weights.json and weights.svg'),
      threads: THREADS,
      runtime: RUNTIME,
      'cache-dir': flag(CACHE_DIR, { help: 'where hub models are cached' }),
      offline: flag(OFFLINE, { help: 'never download: the --mpnet model must be a folder or cached' }),
      quiet: QUIET,
      json: flag(JSON_OUTPUT, { help: 'print the result as JSON instead of the table' }),
    },
  },
] as const satisfies readonly FlagGroup[];

export const WEIGHTS_HELP = helpText(
  'clip-dissect weights --results DIR --from LAYER --to LAYER --ground-truth FILE [options]',
  `Do neurons joined by a high weight encode similar concepts? Reads the weight matrix between two layers from
the target's ONNX initializers (the Gemm/MatMul of --to that reads --from, through pooling/flatten), takes
the concept of each --from neuron (its dissected label) and the class name of each --to unit, and reports the
top weights with both concepts, Pearson r and p between weight and concept similarity (all weights and the
largest ones), the mean similarity of the top k weights as k grows (weights.svg, the paper's Figure 6b), and
r between a neuron's winning score and its largest outgoing weight.`,
  GROUPS,
);

/** `r = 0.1234, p = 1.2e-5 (n = 640)`; p below the double range as `p = 10^-6452.8`. */
function formatCorrelation(c: PearsonResult): string {
  if (Number.isNaN(c.r)) return `r undefined (a constant series) (n = ${c.n})`;
  const p =
    c.p > 0 || c.log10p === Number.NEGATIVE_INFINITY
      ? `p = ${c.p === 0 ? '0' : c.p.toPrecision(3)}`
      : `p = 10^${c.log10p.toFixed(1)} (below the double range)`;
  return `r = ${c.r.toFixed(4)}, ${p} (n = ${c.n})`;
}

export async function weightsCommand(args: string[], io: CliIO): Promise<number> {
  const start = await startCommand(
    {
      name: 'weights',
      help: WEIGHTS_HELP,
      groups: GROUPS,
      required: ['results', 'from', 'to', 'ground-truth'],
      progress: true,
    },
    args,
    io,
  );
  if (!start) return 0;
  const { values, renderer, onProgress } = start;
  const t0 = performance.now();
  const r = await analyseWeights(
    {
      results: values.results as string,
      from: values.from as string,
      to: values.to as string,
      groundTruth: values['ground-truth'] as string,
      textSpace: choice<WeightTextSpace>('text-space', values['text-space'], WEIGHT_TEXT_SPACES),
      mpnet: values.mpnet as string | undefined,
      cacheDir: values['cache-dir'] as string | undefined,
      offline: values.offline === true,
      top: optionalInt('show', values.show),
      topWeights: optionalInt('top-weights', values['top-weights']),
      out: values.out as string | undefined,
      threads: optionalInt('threads', values.threads),
    },
    { onProgress, signal: io.signal },
  );
  renderer.finishLine();
  if (values.json) {
    io.stdout.write(jsonText(r));
    return 0;
  }
  const secs = ((performance.now() - t0) / 1000).toFixed(1);
  const out: string[] = [];
  out.push(
    `${r.from} → ${r.to}: ${r.shape[0]}×${r.shape[1]} weights of ${r.node} ('${r.weightTensor}'${r.path.length ? `, through ${r.path.join(' → ')}` : ''}); similarity in ${r.textSpace} text space (${r.textModel}); ${secs}s`,
  );
  out.push(`top ${r.top.length} weights:`);
  const w = (s: string, n: number) => (s.length > n ? `${s.slice(0, n - 1)}…` : s.padEnd(n));
  out.push(
    `  rank  ${'from'.padEnd(6)} ${w('concept', 22)} score    ${'to'.padEnd(5)} ${w('class', 28)} weight   similarity`,
  );
  for (const e of r.top)
    out.push(
      `  ${String(e.rank).padStart(4)}  ${String(e.fromUnit).padEnd(6)} ${w(e.fromConcept, 22)} ${e.fromScore === null ? '   -   ' : e.fromScore.toFixed(4).padStart(7)}  ${String(e.toUnit).padEnd(5)} ${w(e.toClass, 28)} ${e.weight.toFixed(4).padStart(7)}  ${e.similarity.toFixed(4)}`,
    );
  out.push(`weight vs similarity, all weights:     ${formatCorrelation(r.correlationAll)}`);
  out.push(`weight vs similarity, top ${r.topWeights} weights: ${formatCorrelation(r.correlationTop)}`);
  out.push(
    `mean similarity of the top k weights: ${r.curve.map((c) => `k=${c.k}: ${c.meanSimilarity.toFixed(4)}`).join(', ')}`,
  );
  out.push(
    `winning score vs largest outgoing weight (per ${r.from} neuron): ${formatCorrelation(r.scoreVsMaxWeight)}`,
  );
  if (r.files.length) {
    out.push(...wroteLines(r.files));
  }
  io.stdout.write(`${out.join('\n')}\n`);
  return 0;
}
