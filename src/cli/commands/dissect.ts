/** `clip-dissect dissect`: the whole method in one command (see src/pipeline/dissect.ts). */

import { join } from 'node:path';
import { checkWritableFolder } from '../../io/folders.js';
import {
  CLIP_DTYPES,
  CLIP_PREPROCESS_CHOICES,
  type ClipDtype,
  type ClipPreprocess,
} from '../../models/onnx-clip-encoder.js';
import { TARGET_DTYPES, type TargetDtype } from '../../models/target-files.js';
import { POOL_MODES, type PoolMode, TOKEN_MODES, type TokenMode } from '../../models/target-model.js';
import {
  DEFAULT_SIMILARITY,
  SIMILARITY_NAMES,
  type SimilarityName,
} from '../../numeric/similarity-options.js';
import { dissect } from '../../pipeline/dissect.js';
import { buildReport } from '../../report/html-report.js';
import { formatFloat32 } from '../../results/descriptions.js';
import { applyTopK, CliError, type CliIO, choice, optionalInt, optionalSize, parseParams } from '../_args.js';
import { startCommand, wroteLines } from '../_command.js';
import {
  BATCH_SIZE,
  CACHE_DIR,
  CHUNK_SIZE,
  CLIP,
  CLIP_DTYPE,
  CONCEPTS,
  DEVICE,
  type FlagGroup,
  flag,
  helpText,
  JSON_OUTPUT,
  MEMORY_BUDGET,
  OFFLINE,
  OUT,
  PARAM,
  POOL,
  PROBE,
  QUIET,
  REVISION,
  RUN_BATCH_SIZE,
  RUNTIME,
  SIMILARITY,
  SKIP_BAD_IMAGES,
  TARGET,
  TARGET_DTYPE,
  THREADS,
  TOKEN,
  TOP,
  TOP_K,
  WORKERS,
} from '../_flags.js';
import { jsonText, layerJson } from '../_json.js';
import { TRUST_FLAGS, trustFlagsGiven, trustLine, trustOptions } from '../_trust.js';
import { reportSummary } from './report.js';

export const GROUPS = [
  {
    title: 'Inputs',
    flags: {
      target: flag(TARGET, {
        help: `${TARGET.help};\nHF_ENDPOINT replaces https://huggingface.co, HF_TOKEN is sent for private models`,
      }),
      revision: REVISION,
      'target-dtype': flag(TARGET_DTYPE, {
        help: `${TARGET_DTYPE.help}\n(fp32: onnx/model.onnx; the others approximate the network)`,
      }),
      layers: {
        type: 'string',
        arg: 'L1,L2,…',
        help: "layers named as in PyTorch (conv1,layer4) or ONNX tensor names (default: the\nnetwork's top-level blocks, as clip-dissect layers lists them: conv1,layer1,…,layer4\nof a torchvision ResNet, the encoder stages of a Hugging Face model)",
      },
      probe: flag(PROBE, { help: `${PROBE.help}; downloaded once` }),
      concepts: CONCEPTS,
      clip: flag(CLIP, { help: `${CLIP.help}; downloaded once into the cache` }),
      out: flag(OUT, {
        help: 'where to write descriptions.csv, neurons.json, <layer>.npy, image_features.npy,\ntext_features.npy, images.txt, args.json, and report/index.html',
      }),
      'no-report': {
        type: 'boolean',
        help: 'do not build the HTML report (clip-dissect report --results DIR builds it later)',
      },
    },
  },
  {
    title: 'Method',
    flags: {
      similarity: SIMILARITY,
      'top-k': TOP_K,
      param: flag(PARAM, { help: 'any hyperparameter, repeatable (see clip-dissect help similarity)' }),
      template: {
        type: 'string',
        arg: 'TEXT',
        help: 'text each concept is embedded as, {} = the concept',
        default: '"{}"',
      },
      pool: POOL,
      token: TOKEN,
      preprocess: {
        type: 'string',
        arg: 'FILE',
        help: "the target's preprocessing JSON (default: the target folder's\npreprocessor_config.json, else torchvision ImageNet: Resize 256, CenterCrop 224);\na Hugging Face file is cropped as torchvision does (as the official code)",
      },
      'clip-preprocess': {
        type: 'string',
        arg: 'openai|hf',
        help: "CLIP's crop: openai (default) as clip.load, torchvision's CenterCrop (an odd\noverhang's offset rounded half to even); hf as transformers' CLIPImageProcessor\n(rounded down). Sizes, filter, mean and std: the CLIP folder's preprocessor_config.json",
      },
      dtype: flag(CLIP_DTYPE, {
        help: 'CLIP weights (fp32 is the reference). int8: the fp32 files with their\nMatMul weights quantized to int8 at load time, no extra files (CLIP images\n~2.5x faster on CPUs with AVX-512 VNNI; labels may differ slightly from fp32)',
      }),
      top: TOP,
      'skip-bad-images': SKIP_BAD_IMAGES,
    },
  },
  {
    title:
      'Which labels to trust (per neuron in neurons.json, summarised per layer; see clip-dissect help score)',
    flags: {
      'no-trust': {
        type: 'boolean',
        help: 'skip the trust figures (they rerun the similarity function 2 + B + R times)',
      },
      ...TRUST_FLAGS,
    },
  },
  {
    title: 'Resources',
    flags: {
      'batch-size': BATCH_SIZE,
      'run-batch-size': RUN_BATCH_SIZE,
      'chunk-size': CHUNK_SIZE,
      device: DEVICE,
      workers: WORKERS,
      threads: THREADS,
      runtime: RUNTIME,
      'memory-budget': flag(MEMORY_BUDGET, {
        help: "bound on the similarity engine's buffers and on the images decoded at once,\none per worker, e.g. 2G: larger images are refused (or skipped with --skip-bad-images)",
      }),
      'cache-dir': CACHE_DIR,
      'no-cache': { type: 'boolean', help: 'neither read nor write cached features' },
      offline: OFFLINE,
      quiet: QUIET,
      json: flag(JSON_OUTPUT, {
        help: "print every layer's labels and scores (and trust summary) as JSON instead of the tables",
      }),
    },
  },
] as const satisfies readonly FlagGroup[];

export const DISSECT_HELP = helpText(
  `clip-dissect dissect --target MODEL --out DIR [--layers L1,L2,…] [--probe DIR|NAME]
                           [--concepts FILE|NAME] [options]`,
  `Labels every neuron of the chosen layers with a concept: CLIP features of the concepts and of the probe
images, the target network's activations on the same images, then the similarity function per layer.
Features are cached (content-addressed, in chunks) so a rerun or a resumed run computes only what is missing.
What is not given is chosen as in the paper, and each choice printed on stderr.`,
  GROUPS,
);

export async function dissectCommand(args: string[], io: CliIO): Promise<number> {
  const start = await startCommand(
    {
      name: 'dissect',
      help: DISSECT_HELP,
      groups: GROUPS,
      required: ['target', 'out'],
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
  const template = values.template as string | undefined;
  if (template !== undefined && !template.includes('{}'))
    throw new CliError(
      `--template must contain {} where the concept goes (e.g. "a photo of {}") but got '${template}'`,
    );

  // the report goes to DIR/report at the end: a file of that name fails now, not after the whole run
  if (values['no-report'] !== true)
    await checkWritableFolder(join(values.out as string, 'report'), undefined, 'report').catch((e: Error) => {
      throw new CliError(`${e.message}; or pass --no-report`);
    });

  const t0 = performance.now();
  const r = await dissect(
    {
      target: values.target as string,
      revision: values.revision as string | undefined,
      targetDtype: choice<TargetDtype>('target-dtype', values['target-dtype'], TARGET_DTYPES),
      layers: values.layers as string | undefined,
      probe: values.probe as string | undefined,
      concepts: values.concepts as string | undefined,
      clip: values.clip as string | undefined,
      out: values.out as string,
      similarity,
      options: params,
      template,
      pool: choice<PoolMode>('pool', values.pool, POOL_MODES),
      token: choice<TokenMode>('token', values.token, TOKEN_MODES),
      preprocess: values.preprocess as string | undefined,
      dtype: choice<ClipDtype>('dtype', values.dtype, CLIP_DTYPES),
      clipPreprocess: choice<ClipPreprocess>(
        'clip-preprocess',
        values['clip-preprocess'],
        CLIP_PREPROCESS_CHOICES,
      ),
      top: optionalInt('top', values.top),
      skipBadImages: values['skip-bad-images'] === true,
      batchSize: optionalInt('batch-size', values['batch-size']),
      runBatchSize: optionalInt('run-batch-size', values['run-batch-size']),
      workers: optionalInt('workers', values.workers, 0),
      chunkSize: optionalInt('chunk-size', values['chunk-size']),
      device: choice('device', values.device, ['cpu', 'cuda'] as const),
      threads: optionalInt('threads', values.threads),
      memoryBudget: optionalSize('memory-budget', values['memory-budget']),
      cacheDir: values['cache-dir'] as string | undefined,
      cache: values['no-cache'] !== true,
      offline: values.offline === true,
      trust: values['no-trust'] === true ? false : trustFlagsGiven(values) ? trustOptions(values) : undefined,
    },
    {
      onChoice: (c) => {
        renderer.finishLine();
        io.stderr.write(`${c.option}: ${c.value} (${c.reason}; --${c.option} to choose)\n`);
      },
      onProgress,
      onWarning: renderer.warning,
      signal: io.signal,
    },
  );
  renderer.finishLine();
  const report =
    values['no-report'] === true
      ? undefined
      : await buildReport(
          {
            dir: values.out as string,
            activations: r.activations, // as written to the .npy files: not read back
          },
          { onProgress, onWarning: renderer.warning, signal: io.signal },
        );
  renderer.finishLine();
  if (values.json) {
    io.stdout.write(
      jsonText({
        layers: r.layers.map((l) => ({ ...layerJson(l), trust: l.trust?.summary })),
        images: r.images.length,
        skipped: r.skipped.length,
        chunks: r.chunks,
        cacheDir: r.cache.dir,
        files: r.files ?? [],
        report: report?.index,
      }),
    );
    return 0;
  }

  const secs = ((performance.now() - t0) / 1000).toFixed(1);
  const out: string[] = [];
  const nc = r.textFeatures.rows;
  out.push(
    `${similarity}: ${r.layers.length} layer${r.layers.length === 1 ? '' : 's'} × ${nc} concepts over ${r.images.length} images in ${secs}s` +
      (r.skipped.length
        ? `; ${r.skipped.length} unreadable image${r.skipped.length === 1 ? '' : 's'} skipped`
        : ''),
  );
  const { text, images } = r.chunks;
  out.push(
    `features: computed ${text.computed}/${text.total} text chunk${text.total === 1 ? '' : 's'} and ${images.computed}/${images.total} image chunk${images.total === 1 ? '' : 's'}, the rest from the cache (${r.cache.dir})`,
  );
  for (const l of r.layers) {
    const res = l.result;
    const dead = res.dead.reduce((s, v) => s + v, 0);
    const counts = new Map<number, number>();
    for (let k = 0; k < res.nNeurons; k++)
      if (!res.dead[k]) counts.set(res.labels[k], (counts.get(res.labels[k]) ?? 0) + 1);
    const common = [...counts.entries()]
      .sort((a, b) => b[1] - a[1] || a[0] - b[0])
      .slice(0, 5)
      .map(([c, n]) => `${l.concepts[c]} (${n})`);
    out.push(
      `${l.layer}: ${res.nNeurons} neurons${dead ? `, ${dead} dead` : ''}; most frequent labels: ${common.join(', ')}`,
    );
    const order = Array.from(res.scores.keys())
      .filter((k) => !res.dead[k])
      .sort((a, b) => (res.scores[b] || -Infinity) - (res.scores[a] || -Infinity) || a - b)
      .slice(0, 5);
    for (const k of order)
      out.push(
        `  unit ${String(k).padStart(4)}  ${l.concepts[res.labels[k]].slice(0, 40).padEnd(40)}  ${formatFloat32(res.scores[k])}`,
      );
    if (l.trust) out.push(`  ${trustLine(l.trust.summary)}`);
  }
  out.push(...wroteLines(r.files ?? []));
  if (report) out.push(reportSummary(report));
  io.stdout.write(`${out.join('\n')}\n`);
  return 0;
}
