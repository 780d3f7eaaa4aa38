/** `clip-dissect eval`: the final-layer evaluation of a dissection (see src/pipeline/eval.ts). */

import { CLIP_DTYPES, type ClipDtype } from '../../models/onnx-clip-encoder.js';
import { type EvalResult, evaluate } from '../../pipeline/eval.js';
import { type CliIO, choice, optionalInt, optionalSize } from '../_args.js';
import { startCommand, wroteLines } from '../_command.js';
import {
  CACHE_DIR,
  CLIP,
  CLIP_DTYPE,
  DEVICE,
  type FlagGroup,
  flag,
  GROUND_TRUTH,
  helpText,
  JSON_OUTPUT,
  LAYER,
  MEMORY_BUDGET,
  MPNET,
  OFFLINE,
  QUIET,
  RESULTS,
  RESULTS_OUT,
  RUN_CONCEPTS,
  RUNTIME,
  THREADS,
} from '../_flags.js';
import { jsonText } from '../_json.js';

export const GROUPS = [
  {
    title: 'Inputs',
    flags: {
      results: RESULTS,
      layer: flag(LAYER, { help: 'the layer to evaluate (e.g. fc)' }),
      'ground-truth': flag(GROUND_TRUTH, {
        help: 'class names, line i = the class of unit i, used whole (e.g. imagenet_labels.txt: "tench, Tinca tinca")',
        default:
          "the target's class names from its config.json id2label (Hugging Face models), recorded by dissect in args.json",
      }),
      compare: {
        type: 'string',
        multiple: true,
        arg: 'FILE',
        help: "another method's labels of the layer, repeatable:\n  NetDissect tally.csv (unit,category,label,score,…; units 1-based), or\n  MILAN / CLIP-Dissect / plain CSV (layer,unit,description[,…]; units 0-based)",
      },
      concepts: RUN_CONCEPTS,
      clip: flag(CLIP, { help: 'CLIP model for the CLIP cosine', default: "the run's" }),
      dtype: flag(CLIP_DTYPE, { default: "the run's" }),
      mpnet: MPNET,
      out: RESULTS_OUT('eval.json'),
    },
  },
  {
    title: 'Resources',
    flags: {
      device: DEVICE,
      threads: THREADS,
      runtime: RUNTIME,
      'memory-budget': MEMORY_BUDGET,
      'cache-dir': CACHE_DIR,
      offline: flag(OFFLINE, { help: 'never download: the models must be cached' }),
      quiet: QUIET,
      json: flag(JSON_OUTPUT, { help: 'print the result as JSON instead of the table' }),
    },
  },
] as const satisfies readonly FlagGroup[];

export const EVAL_HELP = helpText(
  'clip-dissect eval --results DIR --layer NAME [--ground-truth FILE] [options]',
  `Scores a layer's labels against known classes, as the paper's final-layer evaluation (Tables 1–3): for each
unit, the cosine between its label and its class name in CLIP's text space and in all-mpnet-base-v2's, averaged
over units; and, when every class name is a concept of the run (e.g. dissect --concepts imagenet), top-1/top-5
accuracy, mean and median rank of the correct class and the ROC-AUC of the winning score as a predictor of
top-1 correctness. Prints a table and writes eval.json.`,
  GROUPS,
);

const pct = (x: number) => `${(100 * x).toFixed(2)}%`;

/** The summary table printed on stdout. */
function formatEval(r: EvalResult): string {
  const out: string[] = [];
  out.push(`${r.layer}: ${r.units} units against ${r.groundTruth.source}`);
  out.push(`CLIP: ${r.clipModel}; mpnet: ${r.mpnetModel}`);
  const w = Math.max(12, ...r.methods.map((m) => m.method.length));
  out.push('');
  out.push(`${'method'.padEnd(w)}  ${'CLIP cos'.padStart(8)}  ${'mpnet cos'.padStart(9)}`);
  for (const m of r.methods)
    out.push(
      `${m.method.padEnd(w)}  ${m.clipCos.toFixed(4).padStart(8)}  ${m.mpnetCos.toFixed(4).padStart(9)}`,
    );
  out.push('');
  const a = r.accuracy;
  if (a) {
    out.push(`CLIP-Dissect (${r.similarity}) over the ${r.concepts.count} concepts of ${r.concepts.source}:`);
    out.push(`  top-1 accuracy  ${pct(a.top1)}`);
    out.push(`  top-5 accuracy  ${pct(a.top5)}`);
    out.push(`  rank of the correct class: mean ${a.meanRank.toFixed(2)}, median ${a.medianRank}`);
    out.push(`  AUC             ${a.auc === null ? 'n/a (every unit in one class)' : a.auc.toFixed(4)}`);
  } else if (r.accuracyNote) {
    out.push(r.accuracyNote);
  }
  out.push(...wroteLines(r.files));
  return `${out.join('\n')}\n`;
}

export async function evalCommand(args: string[], io: CliIO): Promise<number> {
  const start = await startCommand(
    {
      name: 'eval',
      help: EVAL_HELP,
      groups: GROUPS,
      required: ['results', 'layer'],
      progress: true,
    },
    args,
    io,
  );
  if (!start) return 0;
  const { values, renderer, onProgress } = start;
  const r = await evaluate(
    {
      results: values.results as string,
      layer: values.layer as string,
      groundTruth: values['ground-truth'] as string | undefined,
      compare: (values.compare as string[] | undefined) ?? [],
      concepts: values.concepts as string | undefined,
      clip: values.clip as string | undefined,
      dtype: choice<ClipDtype>('dtype', values.dtype, CLIP_DTYPES),
      mpnet: values.mpnet as string | undefined,
      out: values.out as string | undefined,
      device: choice('device', values.device, ['cpu', 'cuda'] as const),
      threads: optionalInt('threads', values.threads),
      memoryBudget: optionalSize('memory-budget', values['memory-budget']),
      cacheDir: values['cache-dir'] as string | undefined,
      offline: values.offline === true,
    },
    { onProgress, onWarning: renderer.warning, signal: io.signal },
  );
  renderer.finishLine();
  io.stdout.write(values.json ? jsonText(r) : formatEval(r));
  return 0;
}
