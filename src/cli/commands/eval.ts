/** `clip-dissect eval`: the final-layer evaluation of a dissection (see src/pipeline/eval.ts). */

import { CLIP_DTYPES, type ClipDtype } from '../../models/onnx-clip-encoder.js';
import { DEFAULT_SENTENCE_MODEL } from '../../models/onnx-sentence-encoder.js';
import { type EvalResult, evaluate } from '../../pipeline/eval.js';
import { type CliIO, choice, optionalInt, optionalSize } from '../_args.js';
import { startCommand } from '../_command.js';

export const EVAL_HELP = `Usage: clip-dissect eval --results DIR --layer NAME [--ground-truth FILE] [options]

Scores a layer's labels against known classes, as the paper's final-layer evaluation (Tables 1–3): for each
unit, the cosine between its label and its class name in CLIP's text space and in all-mpnet-base-v2's, averaged
over units; and, when every class name is a concept of the run (e.g. dissect --concepts imagenet), top-1/top-5
accuracy, mean and median rank of the correct class and the ROC-AUC of the winning score as a predictor of
top-1 correctness. Prints a table and writes eval.json.

Inputs:
  --results DIR           the output folder of clip-dissect dissect
  --layer NAME            the layer to evaluate (e.g. fc)
  --ground-truth FILE     class names, line i = the class of unit i, used whole
                          (e.g. imagenet_labels.txt: "tench, Tinca tinca"); default: the target's
                          class names from its config.json id2label (Hugging Face models), recorded
                          by dissect in args.json
  --compare FILE          another method's labels of the layer, repeatable:
                            NetDissect tally.csv (unit,category,label,score,…; units 1-based), or
                            MILAN / CLIP-Dissect / plain CSV (layer,unit,description[,…]; units 0-based)
  --concepts FILE|NAME    the run's concept set, if its path in args.json no longer reaches it
                          (checked against the run's SHA-256 of the concepts)
  --clip ID|DIR           CLIP model for the CLIP cosine (default: the run's)
  --dtype fp32|fp16|q8|int8
                          CLIP weights (default: the run's)
  --mpnet ID|DIR          sentence encoder (default ${DEFAULT_SENTENCE_MODEL})
  --out DIR               where to write eval.json (default: the results folder)

Resources:
  --device cpu|cuda       execution provider (default cpu)
  --threads N             onnxruntime threads (default: all cores)
  --memory-budget SIZE    bound on the similarity engine's buffers, e.g. 2G (default 768M)
  --cache-dir DIR         models and concept sets (default ~/.cache/clip-dissect)
  --offline               never download: the models must be cached
  -q, --quiet             no progress on stderr
`;

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
  out.push('wrote:');
  for (const f of r.files) out.push(`  ${f}`);
  return `${out.join('\n')}\n`;
}

export async function evalCommand(args: string[], io: CliIO): Promise<number> {
  const start = await startCommand(
    {
      name: 'eval',
      help: EVAL_HELP,
      options: {
        results: { type: 'string' },
        layer: { type: 'string' },
        'ground-truth': { type: 'string' },
        compare: { type: 'string', multiple: true },
        concepts: { type: 'string' },
        clip: { type: 'string' },
        dtype: { type: 'string' },
        mpnet: { type: 'string' },
        out: { type: 'string' },
        device: { type: 'string' },
        threads: { type: 'string' },
        'memory-budget': { type: 'string' },
        'cache-dir': { type: 'string' },
        offline: { type: 'boolean' },
      },
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
    { onProgress, onWarning: renderer.warning },
  );
  renderer.finishLine();
  io.stdout.write(formatEval(r));
  return 0;
}
