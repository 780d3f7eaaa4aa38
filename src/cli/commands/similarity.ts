/** `clip-dissect similarity`: label one layer from saved features. */

import {
  DEFAULT_SIMILARITY,
  SIMILARITY_NAMES,
  type SimilarityName,
} from '../../numeric/similarity-options.js';
import { runSimilarityFiles } from '../../pipeline/similarity-files.js';
import { formatFloat32 } from '../../results/descriptions.js';
import { applyTopK, type CliIO, choice, optionalInt, optionalSize, parseParams } from '../_args.js';
import { startCommand, wroteLines } from '../_command.js';
import {
  CACHE_DIR,
  CONCEPTS,
  type FlagGroup,
  flag,
  helpText,
  JSON_OUTPUT,
  MEMORY_BUDGET,
  OFFLINE,
  OUT,
  PARAM,
  QUIET,
  RUNTIME,
  SIMILARITY,
  THREADS,
  TOP,
  TOP_K,
} from '../_flags.js';
import { jsonText, layerJson } from '../_json.js';

export const GROUPS = [
  {
    title: 'Inputs',
    flags: {
      'image-features': {
        type: 'string',
        arg: 'FILE',
        help: 'N×d CLIP image features of the probe images (.npy: float32/float16/float64)',
      },
      'text-features': {
        type: 'string',
        arg: 'FILE',
        help: 'M×d CLIP text features, one row per concept, in concept-file order',
      },
      activations: {
        type: 'string',
        arg: 'FILE',
        help: 'N×K activations of one layer, one row per probe image (same order as I)',
      },
      concepts: flag(CONCEPTS, {
        help: 'one concept per line (blank lines dropped, duplicates keep their first index),\nor a built-in set: 20k, 10k, 3k, broden, imagenet (downloaded once, cached)',
        default: undefined,
      }),
      out: flag(OUT, { help: 'where to write descriptions.csv, neurons.json, args.json' }),
    },
  },
  { title: 'Method', flags: { similarity: SIMILARITY, 'top-k': TOP_K, param: PARAM } },
  {
    title: 'Output',
    flags: {
      'layer-name': {
        type: 'string',
        arg: 'NAME',
        help: 'layer name written to the outputs',
        default: 'layer',
        alias: 'layer',
      },
      top: TOP,
      'save-matrix': { type: 'boolean', help: 'also write the K×M score matrix as similarity.npy' },
    },
  },
  {
    title: 'Resources',
    flags: {
      'memory-budget': MEMORY_BUDGET,
      threads: THREADS,
      runtime: RUNTIME,
      'cache-dir': flag(CACHE_DIR, { help: 'cache for built-in concept sets' }),
      offline: flag(OFFLINE, { help: 'never download; a built-in concept set must be cached already' }),
      quiet: QUIET,
      json: flag(JSON_OUTPUT, { help: "print every neuron's label and score as JSON instead of the table" }),
    },
  },
] as const satisfies readonly FlagGroup[];

export const SIMILARITY_HELP = helpText(
  `clip-dissect similarity --image-features I.npy --text-features T.npy --activations A.npy
                              --concepts FILE|NAME --out DIR [options]`,
  `Labels every neuron (column of A) with the concept (row of T) that best explains its top-activating
images, as the official CLIP-Dissect would.`,
  GROUPS,
);

export async function similarityCommand(args: string[], io: CliIO): Promise<number> {
  const start = await startCommand(
    {
      name: 'similarity',
      help: SIMILARITY_HELP,
      groups: GROUPS,
      required: ['image-features', 'text-features', 'activations', 'concepts', 'out'],
      progress: true,
    },
    args,
    io,
  );
  if (!start) return 0;
  const { values, renderer, onProgress } = start;
  const similarity = choice<SimilarityName>(
    'similarity',
    values.similarity ?? DEFAULT_SIMILARITY,
    SIMILARITY_NAMES,
  );
  const params = parseParams((values.param as string[] | undefined) ?? []);
  applyTopK(similarity, values['top-k'], params);
  const t0 = performance.now();
  const { layer, files } = await runSimilarityFiles(
    {
      imageFeatures: values['image-features'] as string,
      textFeatures: values['text-features'] as string,
      activations: values.activations as string,
      concepts: values.concepts as string,
      out: values.out as string,
      similarity: similarity as SimilarityName,
      layer: values['layer-name'] as string | undefined,
      options: params,
      top: optionalInt('top', values.top),
      saveMatrix: values['save-matrix'] === true,
      memoryBudget: optionalSize('memory-budget', values['memory-budget']),
      threads: optionalInt('threads', values.threads),
      cacheDir: values['cache-dir'] as string | undefined,
      offline: values.offline === true,
    },
    { onProgress, onWarning: renderer.warning, signal: io.signal },
  );
  renderer.finishLine();
  if (values.json) {
    io.stdout.write(jsonText({ ...layerJson(layer), files }));
    return 0;
  }
  const r = layer.result;
  const secs = ((performance.now() - t0) / 1000).toFixed(1);
  const dead = r.dead.reduce((s, v) => s + v, 0);
  const out: string[] = [];
  out.push(
    `${r.similarity}: ${r.nNeurons} neurons × ${r.nConcepts} concepts over ${r.nImages} images in ${secs}s` +
      (dead ? ` (${dead} dead neuron${dead === 1 ? '' : 's'} flagged)` : ''),
  );
  const order = Array.from(r.scores.keys()).sort(
    (a, b) => (r.scores[b] || -Infinity) - (r.scores[a] || -Infinity),
  );
  const shown = order.slice(0, Math.min(10, order.length));
  out.push(`most confident neurons of ${layer.layer}:`);
  out.push('  unit  description                     similarity');
  for (const k of shown) {
    out.push(
      `  ${String(k).padStart(4)}  ${layer.concepts[r.labels[k]].slice(0, 30).padEnd(30)}  ${formatFloat32(r.scores[k])}`,
    );
  }
  out.push(...wroteLines(files));
  io.stdout.write(`${out.join('\n')}\n`);
  return 0;
}
