/** `clip-dissect activations`: pooled activations of a target network's layers over a probe set, as .npy. */

import { IMAGENET_PREPROCESS, type PreprocessConfig } from '../../data/preprocess.js';
import { RESAMPLE_FILTERS, type ResampleFilter } from '../../data/resize.js';
import { resolveTargetSource, TARGET_DTYPES, type TargetDtype } from '../../models/target-files.js';
import { POOL_MODES, type PoolMode, TOKEN_MODES, type TokenMode } from '../../models/target-model.js';
import { runActivationsFiles } from '../../pipeline/activations-files.js';
import { loadPreprocessConfig } from '../../pipeline/preprocess-config.js';
import { CliError, type CliIO, choice, optionalInt, optionalSize, type ParsedValues } from '../_args.js';
import { startCommand, wroteLines } from '../_command.js';
import {
  BATCH_SIZE,
  CACHE_DIR,
  CHANNELS_LAST,
  DEVICE,
  type FlagGroup,
  flag,
  helpText,
  JSON_OUTPUT,
  MEMORY_BUDGET,
  OFFLINE,
  OUT,
  POOL,
  PROBE,
  QUIET,
  REVISION,
  RUN_BATCH_SIZE,
  RUNTIME,
  SKIP_BAD_IMAGES,
  TARGET,
  TARGET_DTYPE,
  THREADS,
  TOKEN,
  WORKERS,
} from '../_flags.js';
import { jsonText } from '../_json.js';

export const GROUPS = [
  {
    title: 'Inputs',
    flags: {
      target: flag(TARGET, {
        help: 'an .onnx file, or a folder with model.onnx (and preprocessor_config.json, whose preprocessing is then used), or a Hugging Face model id in the transformers.js layout (Xenova/resnet-50), downloaded once into the cache',
      }),
      revision: REVISION,
      'target-dtype': TARGET_DTYPE,
      layers: {
        type: 'string',
        arg: 'L1,L2,…',
        help: 'layers named as in PyTorch (conv1,layer1,layer2,layer3,layer4, features.43, encoder.layers.encoder_layer_11) or ONNX tensor names; clip-dissect layers MODEL lists them',
      },
      probe: flag(PROBE, {
        help: 'a folder of images, a folder of class folders (ImageFolder order), CIFAR binary files, a built-in set (cifar100_train, cifar100_val); several, comma-separated',
        default: undefined,
      }),
      out: flag(OUT, { help: 'where to write <layer>.npy (N×K float32), images.txt and activations.json' }),
    },
  },
  {
    title: 'Method',
    flags: {
      pool: POOL,
      token: flag(TOKEN, { help: "how a transformer's tokens become one vector (cls: the class token)" }),
      preprocess: {
        type: 'string',
        arg: 'FILE',
        help: 'preprocessing JSON: {"resize": 256, "crop": 224, "interpolation": "bilinear", "mean": [...], "std": [...]} (resize = shorter side) or a Hugging Face preprocessor_config.json (cropped as torchvision does; "cropRounding": "floor" in ours crops as Hugging Face does). Its crop must be the model\'s input size.',
        default: "torchvision's ImageNet transform: Resize 256 bilinear, CenterCrop 224, ImageNet mean/std",
      },
      resize: { type: 'string', arg: 'N|HxW', help: "override the preprocessing's resize (shorter side)" },
      crop: { type: 'string', arg: 'N|HxW', help: "override the preprocessing's center crop" },
      interpolation: {
        type: 'string',
        arg: 'bilinear|bicubic|nearest',
        help: "override the preprocessing's resize filter",
      },
      mean: { type: 'string', arg: 'R,G,B', help: "override the preprocessing's mean" },
      std: { type: 'string', arg: 'R,G,B', help: "override the preprocessing's std" },
      'channels-last': CHANNELS_LAST,
      'skip-bad-images': flag(SKIP_BAD_IMAGES, {
        help: 'leave out images that cannot be decoded (listed in activations.json) instead of stopping at the first',
      }),
    },
  },
  {
    title: 'Resources',
    flags: {
      'batch-size': BATCH_SIZE,
      'run-batch-size': RUN_BATCH_SIZE,
      device: DEVICE,
      threads: THREADS,
      runtime: RUNTIME,
      workers: WORKERS,
      'memory-budget': flag(MEMORY_BUDGET, {
        help: 'bound on the images decoded at once, one per worker, e.g. 2G: larger images are refused (or skipped with --skip-bad-images)',
      }),
      'cache-dir': flag(CACHE_DIR, { help: 'cache for hub targets and built-in probe sets' }),
      offline: flag(OFFLINE, {
        help: 'never download; a hub target and a built-in probe set must be cached already',
      }),
      quiet: QUIET,
      json: flag(JSON_OUTPUT, {
        help: 'print the layers, image counts and files as JSON instead of the table',
      }),
    },
  },
] as const satisfies readonly FlagGroup[];

export const ACTIVATIONS_HELP = helpText(
  'clip-dissect activations --target MODEL --layers L1,L2,… --probe DIR|NAME --out DIR [options]',
  `Runs the target network over the probe images and saves, per layer, one row per image and one column per
neuron (channels of conv layers pooled over height and width, as the official CLIP-Dissect does).`,
  GROUPS,
);

function size(flag: string, v: string): number | [number, number] {
  const m = /^(\d+)(?:x(\d+))?$/.exec(v.trim());
  if (!m || Number(m[1]) < 1 || (m[2] !== undefined && Number(m[2]) < 1)) {
    throw new CliError(`--${flag} must be a size such as 224 or 224x224 (height x width) but got '${v}'`);
  }
  return m[2] === undefined ? Number(m[1]) : [Number(m[1]), Number(m[2])];
}

function triple(flag: string, v: string): [number, number, number] {
  const parts = v.split(',').map((x) => Number(x.trim()));
  if (parts.length !== 3 || parts.some((x) => !Number.isFinite(x))) {
    throw new CliError(`--${flag} must be three numbers R,G,B such as 0.485,0.456,0.406 but got '${v}'`);
  }
  return parts as [number, number, number];
}

/**
 * The preprocessing: --preprocess FILE (or the target folder's preprocessor_config.json, or torchvision's
 * ImageNet transform) with single fields overridden by --resize/--crop/--interpolation/--mean/--std.
 */
async function preprocessFromFlags(values: ParsedValues): Promise<PreprocessConfig | string | undefined> {
  const file = values.preprocess as string | undefined;
  const overrides: Partial<PreprocessConfig> = {};
  if (values.resize !== undefined) overrides.resize = size('resize', values.resize as string);
  if (values.crop !== undefined) overrides.crop = size('crop', values.crop as string);
  if (values.interpolation !== undefined) {
    overrides.interpolation = choice<ResampleFilter>('interpolation', values.interpolation, RESAMPLE_FILTERS);
  }
  if (values.mean !== undefined) overrides.mean = triple('mean', values.mean as string);
  if (values.std !== undefined) overrides.std = triple('std', values.std as string);
  if (Object.keys(overrides).length === 0) return file;
  let base: PreprocessConfig = { ...IMAGENET_PREPROCESS };
  if (file) base = await loadPreprocessConfig(file);
  else {
    const { preprocessorConfig } = await resolveTargetSource(values.target as string, {
      cacheDir: values['cache-dir'] as string | undefined,
      offline: values.offline === true,
      revision: values.revision as string | undefined,
      dtype: choice<TargetDtype>('target-dtype', values['target-dtype'], TARGET_DTYPES),
    });
    if (preprocessorConfig) base = await loadPreprocessConfig(preprocessorConfig);
  }
  return { ...base, ...overrides };
}

export async function activationsCommand(args: string[], io: CliIO): Promise<number> {
  const start = await startCommand(
    {
      name: 'activations',
      help: ACTIVATIONS_HELP,
      groups: GROUPS,
      required: ['target', 'layers', 'probe', 'out'],
      progress: true,
    },
    args,
    io,
  );
  if (!start) return 0;
  const { values, renderer, onProgress } = start;
  const pool = choice<PoolMode>('pool', values.pool, POOL_MODES);
  const token = choice<TokenMode>('token', values.token, TOKEN_MODES);
  const device = choice('device', values.device, ['cpu', 'cuda'] as const);
  const t0 = performance.now();
  const { result, files } = await runActivationsFiles(
    {
      target: values.target as string,
      revision: values.revision as string | undefined,
      targetDtype: choice<TargetDtype>('target-dtype', values['target-dtype'], TARGET_DTYPES),
      layers: values.layers as string,
      probe: values.probe as string,
      out: values.out as string,
      pool,
      token,
      device,
      preprocess: await preprocessFromFlags(values),
      channelsLast: values['channels-last'] === true,
      skipBadImages: values['skip-bad-images'] === true,
      batchSize: optionalInt('batch-size', values['batch-size'], 1),
      runBatchSize: optionalInt('run-batch-size', values['run-batch-size'], 1),
      threads: optionalInt('threads', values.threads, 1),
      workers: optionalInt('workers', values.workers, 0),
      memoryBudget: optionalSize('memory-budget', values['memory-budget']),
      cacheDir: values['cache-dir'] as string | undefined,
      offline: values.offline === true,
    },
    { onProgress, signal: io.signal },
  );
  renderer.finishLine();
  for (const w of result.warnings) renderer.warning(w);
  if (values.json) {
    io.stdout.write(
      jsonText({
        pool: result.pool,
        layers: result.layers.map((l) => ({ layer: l.name, neurons: l.neurons })),
        images: result.images.length,
        skipped: result.skipped.map((s) => s.message),
        files,
      }),
    );
    return 0;
  }

  const secs = (performance.now() - t0) / 1000;
  const n = result.images.length;
  const out: string[] = [];
  out.push(
    `activations (${result.pool} pooling) of ${result.layers.length} layer${result.layers.length === 1 ? '' : 's'} over ${n} images in ${secs.toFixed(1)}s (${(n / secs).toFixed(1)} images/s)` +
      (result.skipped.length
        ? `; ${result.skipped.length} unreadable image${result.skipped.length === 1 ? '' : 's'} skipped`
        : ''),
  );
  const w = Math.max(5, ...result.layers.map((l) => l.name.length));
  out.push(`  ${'layer'.padEnd(w)}  neurons`);
  for (const l of result.layers) out.push(`  ${l.name.padEnd(w)}  ${String(l.neurons).padStart(7)}`);
  if (result.skipped.length) {
    out.push('skipped:');
    for (const s of result.skipped.slice(0, 5)) out.push(`  ${s.message}`);
    if (result.skipped.length > 5)
      out.push(`  … and ${result.skipped.length - 5} more (see activations.json)`);
  }
  out.push(...wroteLines(files));
  io.stdout.write(`${out.join('\n')}\n`);
  return 0;
}
