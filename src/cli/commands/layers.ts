/** `clip-dissect layers`: the module tree of an ONNX model, as PyTorch names it. */

import { createOnnxTargetModel } from '../../models/onnx-target-model.js';
import { resolveTargetSource, TARGET_DTYPES, type TargetDtype } from '../../models/target-files.js';
import { TOKEN_MODES, type TokenMode, topLevelBlocks } from '../../models/target-model.js';
import { type CliIO, choice, optionalInt, UsageError } from '../_args.js';
import { startCommand } from '../_command.js';
import {
  CACHE_DIR,
  CHANNELS_LAST,
  type FlagGroup,
  flag,
  helpText,
  JSON_OUTPUT,
  OFFLINE,
  QUIET,
  REVISION,
  RUNTIME,
  TARGET,
  TARGET_DTYPE,
  THREADS,
  TOKEN,
} from '../_flags.js';
import { jsonText } from '../_json.js';

export const GROUPS = [
  {
    title: 'Inputs',
    flags: {
      target: flag(TARGET, {
        help: 'the model: an .onnx file, a folder in the transformers.js layout or a Hugging Face model id; or give it as the operand',
      }),
      revision: flag(REVISION, { help: "a hub model's branch, tag or commit" }),
      'target-dtype': flag(TARGET_DTYPE, { help: 'which weights of a hub model or transformers.js folder' }),
    },
  },
  {
    title: 'Options',
    flags: {
      all: { type: 'boolean', help: 'also list layers that cannot be dissected (with the reason)' },
      'channels-last': CHANNELS_LAST,
      token: TOKEN,
      'image-size': {
        type: 'string',
        arg: 'N',
        help: 'image size for models exported with symbolic height/width',
      },
      threads: THREADS,
      runtime: RUNTIME,
      'cache-dir': flag(CACHE_DIR, { help: 'where hub models are cached' }),
      offline: flag(OFFLINE, { help: 'never download: a hub model must be cached' }),
      quiet: flag(QUIET, { help: 'no download progress on stderr' }),
      json: JSON_OUTPUT,
    },
  },
] as const satisfies readonly FlagGroup[];

export const LAYERS_HELP = helpText(
  'clip-dissect layers MODEL.onnx|DIR|HUB_ID [options]\n       clip-dissect layers --target MODEL [options]',
  `Lists every module of the network whose output could be found in the ONNX graph, named as in PyTorch
(conv1, layer4, layer4.1.conv2, fc, encoder.layers.encoder_layer_11), with its output tensor, its shape
(batch axis symbolic) and its neuron count. Works for torch.onnx.export with the TorchScript exporter
(dynamo=False) and the dynamo exporter, and for Hugging Face exports. The model may be a folder in the
transformers.js layout or a Hugging Face model id (Xenova/resnet-50), downloaded once into the cache.
The last line names the top-level blocks that dissect uses when --layers is not given.`,
  GROUPS,
);

export async function layersCommand(args: string[], io: CliIO): Promise<number> {
  const start = await startCommand(
    {
      name: 'layers',
      help: LAYERS_HELP,
      groups: GROUPS,
      positionals: true,
      progress: true,
    },
    args,
    io,
  );
  if (!start) return 0;
  const { values, renderer, onProgress } = start;
  const positionals = [
    ...(values.target === undefined ? [] : [values.target as string]),
    ...start.positionals,
  ];
  if (positionals.length !== 1) {
    throw new UsageError(
      `layers: expected one ONNX model file, folder or hub id (--target MODEL) but got ${positionals.length} (see clip-dissect help layers)`,
    );
  }
  const token = choice<TokenMode>('token', values.token ?? 'cls', TOKEN_MODES);
  const source = await resolveTargetSource(positionals[0], {
    revision: values.revision as string | undefined,
    dtype: choice<TargetDtype>('target-dtype', values['target-dtype'], TARGET_DTYPES),
    cacheDir: values['cache-dir'] as string | undefined,
    offline: values.offline === true,
    onProgress,
  });
  renderer.finishLine();
  const model = await createOnnxTargetModel(
    source.model,
    {
      channelsLast: values['channels-last'] === true,
      token,
      imageSize: optionalInt('image-size', values['image-size']),
      threads: optionalInt('threads', values.threads),
    },
    { signal: io.signal },
  );
  try {
    const layers = model.layers().filter((l) => values.all === true || l.kind !== 'unsupported');
    if (values.json) {
      io.stdout.write(
        jsonText({
          model: positionals[0],
          file: source.model,
          exporter: model.exporter,
          inputShape: model.inputShape,
          warnings: model.warnings,
          layers: layers.map((l) => ({ ...l })),
          topLevelBlocks: topLevelBlocks(layers),
        }),
      );
      return 0;
    }
    const out: string[] = [];
    out.push(
      `${positionals[0]}: ${model.exporter} export, input ${model.inputShape.join('×')}, ${layers.length} dissectable module outputs`,
    );
    const nameW = Math.min(
      48,
      Math.max(6, ...layers.map((l) => l.name.length + 2 * (l.name.split('.').length - 1))),
    );
    const shapeW = Math.max(5, ...layers.map((l) => `[${l.shape.join(', ')}]`.length));
    out.push(
      `${'module'.padEnd(nameW)}  ${'kind'.padEnd(7)}  ${'neurons'.padStart(7)}  ${'shape'.padEnd(shapeW)}  tensor`,
    );
    for (const l of layers) {
      const depth = l.name.split('.').length - 1;
      const name = `${'  '.repeat(depth)}${l.name}`;
      const shape = `[${l.shape.join(', ')}]`;
      out.push(
        `${name.padEnd(nameW)}  ${l.kind.padEnd(7)}  ${String(l.neurons).padStart(7)}  ${shape.padEnd(shapeW)}  ${l.tensor}${l.reason ? `  (${l.reason})` : ''}`,
      );
    }
    // one line for every BatchNorm folded into its conv, instead of one per conv
    const folded = layers
      .filter((l) => l.warnings.some((w) => /folded the BatchNorm/.test(w)))
      .map((l) => l.name);
    const others = layers.flatMap((l) =>
      l.warnings.filter((w) => !/folded the BatchNorm/.test(w)).map((w) => `${l.name}: ${w}`),
    );
    const modelWarnings = folded.length
      ? model.warnings.filter((w) => !/BatchNorm/.test(w))
      : [...model.warnings];
    const warnings = [...modelWarnings, ...others];
    if (folded.length) {
      const shown = folded.slice(0, 6).join(', ');
      warnings.unshift(
        `the exporter folded ${folded.length} BatchNorm${folded.length === 1 ? '' : 's'} into the convs before them (${shown}${folded.length > 6 ? ', …' : ''}): those layers read bn(conv(x)), not what a forward hook on the conv sees; re-export with torch.onnx.export(..., do_constant_folding=False) or training=torch.onnx.TrainingMode.PRESERVE to keep them apart`,
      );
    }
    const blocks = topLevelBlocks(layers);
    if (blocks.length) out.push('', `top-level blocks (dissect's default layers): ${blocks.join(',')}`);
    const unique = [...new Set(warnings)];
    if (unique.length) {
      out.push('');
      for (const w of unique.slice(0, 12)) out.push(`warning: ${w}`);
      if (unique.length > 12) out.push(`… and ${unique.length - 12} more warnings (--json lists all)`);
    }
    io.stdout.write(`${out.join('\n')}\n`);
    return 0;
  } finally {
    await model.release();
  }
}
