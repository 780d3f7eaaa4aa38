/**
 * The CLI's flags, declared once: type, value placeholder, help and default (from the library's constants).
 * Commands pick them by group; their help is generated from the definitions (helpText). Internal.
 */
import type { ParseArgsConfig } from 'node:util';
import { DEFAULT_MEMORY_BUDGET } from '../compute/memory-budget.js';
import { DEFAULT_CPU_RUN_BATCH } from '../models/_run-batch.js';
import { DEFAULT_CLIP_MODEL } from '../models/onnx-clip-encoder.js';
import { DEFAULT_SENTENCE_MODEL } from '../models/onnx-sentence-encoder.js';
import { TARGET_DTYPES } from '../models/target-files.js';
import {
  DEFAULT_SIMILARITY,
  SIMILARITY_DEFAULTS,
  SIMILARITY_DESCRIPTIONS,
  SIMILARITY_NAMES,
} from '../numeric/similarity-options.js';
import { DEFAULT_CONCEPTS, DEFAULT_PROBE } from '../pipeline/dissect.js';

/** A byte count as a size flag takes it (_args.ts parseSize's inverse): 768M, 2G, 1536k, 1000. */
export function formatSize(bytes: number): string {
  for (const [unit, size] of [
    ['G', 2 ** 30],
    ['M', 2 ** 20],
    ['k', 2 ** 10],
  ] as const)
    if (bytes >= size && bytes % size === 0) return `${bytes / size}${unit}`;
  return String(bytes);
}

/**
 * --memory-budget's default as the help prints it: the library's DEFAULT_MEMORY_BUDGET (the similarity engine's
 * buffers, and the images decoded at once).
 */
export const DEFAULT_MEMORY_BUDGET_TEXT = formatSize(DEFAULT_MEMORY_BUDGET);

export interface FlagDef {
  type: 'string' | 'boolean';
  /** Repeatable: every value is kept. */
  multiple?: boolean;
  short?: string;
  /** The value's placeholder in the help (N, DIR, SIZE); none for a boolean. */
  arg?: string;
  /**
   * What the flag does, wrapped to the help's width ('\n' is a space there; '\n' and an indent start a new
   * line). The default is appended.
   */
  help: string;
  /** The default as the help prints it. */
  default?: string;
  /** A deprecated spelling of this flag: using it warns and sets this flag. */
  alias?: string;
}

export interface FlagGroup {
  /** The help's heading: Inputs, Method, Resources, … */
  title: string;
  flags: Record<string, FlagDef>;
}

/** A flag with its help (or other fields) changed for one command; type, placeholder and default stay. */
export function flag<const D extends FlagDef, const C extends Partial<FlagDef>>(
  def: D,
  change: C,
): Omit<D, keyof C> & C {
  return { ...def, ...change };
}

type UnionToIntersection<U> = (U extends unknown ? (x: U) => void : never) extends (x: infer I) => void
  ? I
  : never;
type AllFlags<G extends readonly FlagGroup[]> = UnionToIntersection<G[number]['flags']>;
type ValueOf<D> = D extends { type: 'boolean' } ? boolean : D extends { multiple: true } ? string[] : string;

/** The parsed values of a command's flags, typed from its groups: a string, a boolean or repeated strings. */
export type FlagValues<G extends readonly FlagGroup[]> = {
  [K in keyof AllFlags<G> & string]?: ValueOf<AllFlags<G>[K]>;
};

// ---- resources: the same meaning in every command ----
export const CACHE_DIR = {
  type: 'string',
  arg: 'DIR',
  help: 'models, concept and probe sets and features',
  default: '~/.cache/clip-dissect',
} as const satisfies FlagDef;
export const OFFLINE = {
  type: 'boolean',
  help: 'never download: the models and built-in sets must be cached',
} as const satisfies FlagDef;
export const THREADS = {
  type: 'string',
  arg: 'N',
  help: 'onnxruntime threads',
  default: 'all cores',
} as const satisfies FlagDef;
export const MEMORY_BUDGET = {
  type: 'string',
  arg: 'SIZE',
  help: "bound on the similarity engine's buffers, e.g. 512M, 2G",
  default: DEFAULT_MEMORY_BUDGET_TEXT,
} as const satisfies FlagDef;
export const WORKERS = {
  type: 'string',
  arg: 'N',
  help: 'threads that decode and preprocess images meanwhile (0: the main thread, between batches)',
  default: '1 on cpu, cores - 1 on cuda',
} as const satisfies FlagDef;
export const RUNTIME = {
  type: 'string',
  arg: 'auto|native|wasm',
  help: 'ONNX runtime: native (onnxruntime-node, when installed) or wasm (onnxruntime-web)',
  default: 'auto: native when installed, else wasm',
} as const satisfies FlagDef;
export const DEVICE = {
  type: 'string',
  arg: 'cpu|cuda',
  help: "execution provider (cuda needs onnxruntime-node's CUDA build)",
  default: 'cpu',
} as const satisfies FlagDef;
export const BATCH_SIZE = {
  type: 'string',
  arg: 'N',
  help: 'images decoded and preprocessed per step, rounded down to whole runs',
  default: '64',
} as const satisfies FlagDef;
export const RUN_BATCH_SIZE = {
  type: 'string',
  arg: 'N',
  help: 'images per onnxruntime run',
  default: `${DEFAULT_CPU_RUN_BATCH} on cpu, the whole batch on cuda`,
} as const satisfies FlagDef;
export const CHUNK_SIZE = {
  type: 'string',
  arg: 'N',
  help: 'probe images per cache chunk',
  default: '256',
} as const satisfies FlagDef;
export const QUIET = {
  type: 'boolean',
  short: 'q',
  help: 'no progress on stderr',
} as const satisfies FlagDef;
export const JSON_OUTPUT = {
  type: 'boolean',
  help: 'machine-readable output on stdout',
} as const satisfies FlagDef;

// ---- inputs ----
export const TARGET = {
  type: 'string',
  arg: 'MODEL',
  help: 'an .onnx file, a folder with model.onnx or onnx/model.onnx (and preprocessor_config.json,\nconfig.json), or a Hugging Face model id in the transformers.js layout (Xenova/resnet-50),\ndownloaded once into the cache',
} as const satisfies FlagDef;
export const REVISION = {
  type: 'string',
  arg: 'REV',
  help: "the hub target's branch, tag or commit",
  default: 'main',
} as const satisfies FlagDef;
export const TARGET_DTYPE = {
  type: 'string',
  arg: 'NAME',
  help: `the target's weights in the transformers.js layout: ${TARGET_DTYPES.join(', ')}`,
  default: 'fp32',
} as const satisfies FlagDef;
export const RESULTS = {
  type: 'string',
  arg: 'DIR',
  help: 'the output folder of clip-dissect dissect (its --out)',
} as const satisfies FlagDef;
export const CONCEPTS = {
  type: 'string',
  arg: 'FILE|NAME',
  help: 'one concept a line, or a built-in set: 20k, 10k, 3k, broden, imagenet',
  default: DEFAULT_CONCEPTS,
} as const satisfies FlagDef;
/** --concepts of the commands that read a results folder. */
export const RUN_CONCEPTS = {
  type: 'string',
  arg: 'FILE|NAME',
  help: "the run's concept set, if its path in args.json no longer reaches it\n(checked against the run's SHA-256 of the concepts)",
} as const satisfies FlagDef;
export const PROBE = {
  type: 'string',
  arg: 'DIR|NAME',
  help: 'folder(s) of images, CIFAR binaries or a built-in set (cifar100_train, cifar100_val),\ncomma-separated',
  default: DEFAULT_PROBE,
} as const satisfies FlagDef;
export const CLIP = {
  type: 'string',
  arg: 'ID|DIR',
  help: 'CLIP model: a Hugging Face id in the transformers.js layout or a local folder',
  default: DEFAULT_CLIP_MODEL,
} as const satisfies FlagDef;
export const MPNET = {
  type: 'string',
  arg: 'ID|DIR',
  help: 'sentence encoder',
  default: DEFAULT_SENTENCE_MODEL,
} as const satisfies FlagDef;
export const GROUND_TRUTH = {
  type: 'string',
  arg: 'FILE',
  help: 'class names, one a line, line i = the class of unit i',
} as const satisfies FlagDef;
export const OUT = {
  type: 'string',
  arg: 'DIR',
  help: 'where to write the outputs',
} as const satisfies FlagDef;
/** --out of the commands that add a file to a results folder. */
export const RESULTS_OUT = (file: string) =>
  ({
    type: 'string',
    arg: 'DIR',
    help: `where to write ${file}`,
    default: 'the results folder',
  }) as const satisfies FlagDef;
/** --layer: one layer of the results to work on. */
export const LAYER = {
  type: 'string',
  arg: 'NAME',
  help: 'a layer of the run, e.g. layer4',
} as const satisfies FlagDef;
export const SKIP_BAD_IMAGES = {
  type: 'boolean',
  help: 'leave out images that cannot be decoded instead of stopping',
} as const satisfies FlagDef;

// ---- method ----
/** The similarity functions that take --top-k: those with a `topK` option. */
export const TOP_K_FUNCTIONS = SIMILARITY_NAMES.filter((f) => 'topK' in SIMILARITY_DEFAULTS[f]);

export const SIMILARITY = {
  type: 'string',
  arg: 'NAME',
  help: `the similarity function${SIMILARITY_NAMES.map((f) => `\n  ${f}: ${SIMILARITY_DESCRIPTIONS[f]}`).join('')}`,
  default: DEFAULT_SIMILARITY,
} as const satisfies FlagDef;
export const TOP_K = {
  type: 'string',
  arg: 'N',
  help: `images per neuron for ${TOP_K_FUNCTIONS.map((f) => `${f} (default ${(SIMILARITY_DEFAULTS[f] as { topK: number }).topK})`).join(' / ')}`,
} as const satisfies FlagDef;
export const PARAM = {
  type: 'string',
  multiple: true,
  arg: 'KEY=VALUE',
  help: `any hyperparameter, repeatable: ${SIMILARITY_NAMES.filter(
    (f) => Object.keys(SIMILARITY_DEFAULTS[f]).length,
  )
    .map((f) => `${f} ${Object.keys(SIMILARITY_DEFAULTS[f]).join(' ')}`)
    .join('; ')} (snake_case names as in the paper code work too)`,
} as const satisfies FlagDef;
/** --top: concepts kept per neuron (its one meaning). */
export const TOP = {
  type: 'string',
  arg: 'N',
  help: 'concepts kept per neuron in neurons.json',
  default: '5',
} as const satisfies FlagDef;
export const POOL = {
  type: 'string',
  arg: 'avg|max',
  help: "how a conv layer's H×W map becomes one number per channel",
  default: 'avg',
} as const satisfies FlagDef;
export const TOKEN = {
  type: 'string',
  arg: 'cls|mean',
  help: "how a transformer's tokens become one vector",
  default: 'cls',
} as const satisfies FlagDef;
export const CLIP_DTYPE = {
  type: 'string',
  arg: 'fp32|fp16|q8|int8',
  help: 'CLIP weights',
  default: 'fp32',
} as const satisfies FlagDef;
export const CHANNELS_LAST = {
  type: 'boolean',
  help: '4-D activations (and the image input) are NHWC',
} as const satisfies FlagDef;

/** The parseArgs options of `groups`, deprecated aliases included. */
export function parseOptions(groups: readonly FlagGroup[]): NonNullable<ParseArgsConfig['options']> {
  const options: NonNullable<ParseArgsConfig['options']> = {};
  for (const g of groups)
    for (const [name, d] of Object.entries(g.flags)) {
      options[name] = {
        type: d.type,
        ...(d.multiple ? { multiple: true } : {}),
        ...(d.short ? { short: d.short } : {}),
      };
      if (d.alias) options[d.alias] = { type: d.type, ...(d.multiple ? { multiple: true } : {}) };
    }
  return options;
}

/** Deprecated alias → its flag, over `groups`. */
export function aliases(groups: readonly FlagGroup[]): Map<string, string> {
  const m = new Map<string, string>();
  for (const g of groups) for (const [name, d] of Object.entries(g.flags)) if (d.alias) m.set(d.alias, name);
  return m;
}

const COLUMN = 26;
const WIDTH = 108;

/** `line` (its leading indent kept on the first line) broken at spaces into lines of at most `width` characters (a longer word stays whole). */
function wrap(line: string, width: number): string[] {
  const out: string[] = [];
  let cur = '';
  for (const word of line.split(' ')) {
    if (cur !== '' && cur.length + 1 + word.length > width) {
      out.push(cur);
      cur = word;
    } else cur = cur === '' ? word : `${cur} ${word}`;
  }
  out.push(cur);
  return out;
}

/** A group's lines of help: `  --name ARG` then the help at column 26, the default appended. */
function groupHelp(g: FlagGroup): string[] {
  const out = [`${g.title}:`];
  for (const [name, d] of Object.entries(g.flags)) {
    const left = `  ${d.short ? `-${d.short}, ` : ''}--${name}${d.arg ? ` ${d.arg}` : ''}`;
    // the default ends the first paragraph, before any indented lines (e.g. a list of choices)
    const paragraphs = d.help.split(/\n(?= )/);
    if (d.default !== undefined) paragraphs[0] += ` (default ${d.default})`;
    const lines = paragraphs.flatMap((l) => wrap(l.replace(/\n/g, ' '), WIDTH - COLUMN));
    if (left.length <= COLUMN - 2) out.push(`${left.padEnd(COLUMN)}${lines[0]}`);
    else out.push(left, `${' '.repeat(COLUMN)}${lines[0]}`);
    for (const l of lines.slice(1)) out.push(`${' '.repeat(COLUMN)}${l}`);
  }
  const deprecated = Object.entries(g.flags).filter(([, d]) => d.alias);
  for (const [name, d] of deprecated)
    out.push(`${`  --${d.alias}${d.arg ? ` ${d.arg}` : ''}`.padEnd(COLUMN)}deprecated spelling of --${name}`);
  return out;
}

/** A command's help: its usage line(s), its description, then every flag group. */
export function helpText(usage: string, description: string, groups: readonly FlagGroup[]): string {
  const parts = [`Usage: ${usage}`, '', description.trimEnd(), ''];
  for (const g of groups) parts.push(...groupHelp(g), '');
  return `${parts.join('\n').trimEnd()}\n`;
}
