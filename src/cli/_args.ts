/** Shared argument handling of the CLI commands. */
import { constants } from 'node:os';
import { type ParseArgsConfig, parseArgs } from 'node:util';
import { type ArgumentError, ClipDissectError, formatChoices } from '../numeric/errors.js';
import { SIMILARITY_DEFAULTS, type SimilarityName } from '../numeric/similarity-options.js';
import { editDistance } from '../numeric/strings.js';
import { TOP_K_FUNCTIONS } from './_flags.js';

/** Exit status of a usage error: an unknown command or flag, a flag without its value, a missing flag. */
export const EXIT_USAGE = 2;
/** Exit status of bad input: a value out of range, a file that cannot be read. */
export const EXIT_BAD_INPUT = 1;

/** Exit status of an internal error (a bug: please report it), as sysexits' EX_SOFTWARE. */
export const EXIT_INTERNAL = 70;

/** Exit status after a signal stopped the run: 128 + its number (130 for SIGINT). */
export function interruptedExitCode(signal: string): number {
  return 128 + (constants.signals[signal as NodeJS.Signals] ?? constants.signals.SIGINT);
}

/** A bad flag value or input the CLI checks itself. Exit code 1 (bad input) unless told otherwise. */
export class CliError extends ClipDissectError {
  readonly exitCode: number;
  constructor(message: string, exitCode = EXIT_BAD_INPUT) {
    super('ERR_USAGE', message);
    this.exitCode = exitCode;
  }
}

/** A usage error: the command line itself is wrong (unknown command or flag, missing value). Exit code 2. */
export class UsageError extends CliError {
  constructor(message: string) {
    super(message, EXIT_USAGE);
  }
}

/**
 * ` (did you mean --top-k?)` for a mistyped name: the closest of `candidates` (dashes and underscores left
 * out, so topk finds top-k before top) within an edit distance of a third of its length (at least 1, at
 * most 3); '' when none is that close.
 */
export function didYouMean(name: string, candidates: readonly string[], prefix = ''): string {
  const bare = (s: string) => s.replace(/[-_]/g, '');
  const limit = Math.min(3, Math.max(1, Math.floor(name.length / 3)));
  let best: { c: string; d: number; raw: number } | undefined;
  for (const c of candidates) {
    const d = editDistance(bare(name), bare(c));
    const raw = editDistance(name, c);
    if (d <= limit && (best === undefined || d < best.d || (d === best.d && raw < best.raw)))
      best = { c, d, raw };
  }
  return best === undefined ? '' : ` (did you mean ${prefix}${best.c}?)`;
}

export interface CliIO {
  stdout: { write(s: string): void };
  stderr: { write(s: string): void; isTTY?: boolean; columns?: number };
  /** Aborted on Ctrl-C (its reason: the signal's name); long commands stop at their next check of it. */
  signal?: AbortSignal;
}

export function parseNumber(
  flag: string,
  value: string,
  opts: { integer?: boolean; min?: number } = {},
): number {
  const v = Number(value);
  if (
    value.trim() === '' ||
    !Number.isFinite(v) ||
    (opts.integer && !Number.isInteger(v)) ||
    (opts.min !== undefined && v < opts.min)
  ) {
    const what = opts.integer ? 'an integer' : 'a number';
    throw new CliError(
      `--${flag} must be ${what}${opts.min !== undefined ? ` >= ${opts.min}` : ''} but got '${value}'`,
    );
  }
  return v;
}

/** '512M', '2G', '1.5g', '1048576' → bytes. */
function parseSize(flag: string, value: string): number {
  const m = /^\s*(\d+(?:\.\d+)?)\s*([kKmMgG]i?[bB]?)?\s*$/.exec(value);
  if (!m) throw new CliError(`--${flag} must be a size such as 512M or 2G but got '${value}'`);
  const mult: Record<string, number> = { k: 2 ** 10, m: 2 ** 20, g: 2 ** 30 };
  return Math.round(Number(m[1]) * (m[2] ? mult[m[2][0].toLowerCase()] : 1));
}

/** '30d', '12h', '2w', '90m', '45s' (a number and a unit: s, m, h, d or w) → milliseconds. */
export function parseDuration(flag: string, value: string): number {
  const m = /^\s*(\d+(?:\.\d+)?)\s*([smhdw])\s*$/.exec(value);
  if (!m) throw new CliError(`--${flag} must be a duration such as 30d, 12h or 2w but got '${value}'`);
  const unit: Record<string, number> = { s: 1e3, m: 60e3, h: 3600e3, d: 86400e3, w: 7 * 86400e3 };
  return Number(m[1]) * unit[m[2]];
}

export function required(values: Record<string, unknown>, names: string[], command: string): void {
  const missing = names.filter((n) => values[n] === undefined);
  if (missing.length) {
    throw new UsageError(
      `${command}: missing ${missing.map((n) => `--${n}`).join(', ')} (see clip-dissect help ${command})`,
    );
  }
}

export type ParsedValues = Record<string, string | boolean | (string | boolean)[] | undefined>;

/**
 * Parses a command's flags (and, with `positionals`, its operands); unknown flags are usage errors, with the
 * closest of the flags (but the `deprecated` spellings) suggested.
 */
export function parse(
  command: string,
  args: string[],
  options: NonNullable<ParseArgsConfig['options']>,
  positionals = false,
  deprecated: ReadonlySet<string> = new Set(),
): { values: ParsedValues; positionals: string[] } {
  try {
    return parseArgs({ args, options, allowPositionals: positionals, strict: true });
  } catch (e) {
    const msg = (e as Error).message.replace(/\. To specify a positional argument.*$/, '');
    const unknown = /^Unknown option '--([^'=]+)/.exec(msg);
    const names = Object.keys(options).filter((n) => !deprecated.has(n));
    const hint = unknown ? didYouMean(unknown[1], names, '--') : '';
    throw new UsageError(`${command}: ${msg}${hint} (see clip-dissect help ${command})`);
  }
}

/** A flag that must be one of `choices` (undefined when absent). */
export function choice<T extends string>(flag: string, value: unknown, choices: readonly T[]): T | undefined {
  if (value === undefined) return undefined;
  if (!(choices as readonly string[]).includes(value as string)) {
    throw new CliError(`--${flag} must be ${formatChoices(choices)} but got '${String(value)}'`);
  }
  return value as T;
}

/** Sets params.topK from --top-k (when given); refused for a function without a topK option. */
export function applyTopK(
  similarity: SimilarityName | undefined,
  value: unknown,
  params: Record<string, number>,
): void {
  if (value === undefined || similarity === undefined) return;
  if (!(TOP_K_FUNCTIONS as readonly string[]).includes(similarity)) {
    const hint =
      'topFraction' in SIMILARITY_DEFAULTS[similarity]
        ? ` (use --param topFraction=… for ${similarity})`
        : '';
    throw new CliError(`--top-k applies to ${TOP_K_FUNCTIONS.join(' and ')}, not ${similarity}${hint}`);
  }
  params.topK = optionalInt('top-k', value) as number;
}

/** An integer flag >= min (undefined when absent). */
export function optionalInt(flag: string, value: unknown, min = 1): number | undefined {
  return value === undefined ? undefined : parseNumber(flag, value as string, { integer: true, min });
}

/** A size flag such as 512M or 2G, in bytes (undefined when absent). */
export function optionalSize(flag: string, value: unknown): number | undefined {
  return value === undefined ? undefined : parseSize(flag, value as string);
}

/** The paper code's snake_case hyperparameter names, accepted by --param. */
const PARAM_ALIASES: Record<string, string> = {
  top_k: 'topK',
  lam: 'lambda',
  min_prob: 'minProb',
  p_start: 'pStart',
  p_end: 'pEnd',
  top_fraction: 'topFraction',
  scale_p: 'scaleP',
  min_norm: 'minNorm',
};

/** `--param KEY=VALUE` flags (repeatable) → similarity hyperparameters. */
export function parseParams(values: readonly string[]): Record<string, number> {
  const out: Record<string, number> = {};
  for (const kv of values) {
    const eq = kv.indexOf('=');
    if (eq <= 0)
      throw new CliError(`--param must look like KEY=VALUE (e.g. --param topK=50) but got '${kv}'`);
    const rawKey = kv.slice(0, eq).trim();
    out[PARAM_ALIASES[rawKey] ?? rawKey] = parseNumber(`param ${rawKey}`, kv.slice(eq + 1));
  }
  return out;
}

/** Control characters (but tab and newline) and the Unicode ones that reorder or break lines. */
// biome-ignore lint/suspicious/noControlCharactersInRegex: finding control characters is the point
const UNPRINTABLE = /[\x00-\x08\x0b-\x1f\x7f-\x9f\u2028\u2029\u202a-\u202e\u2066-\u2069]/g;

/**
 * Text from files (concepts, file names, layer names) as it may be shown on a terminal: control characters
 * escaped as `\u001b`, `\u202e` (the form JSON and JavaScript read back, so JSON output stays valid), so that
 * an ESC sequence in a concept cannot clear the screen or fake output. Tabs and newlines stay.
 */
export function printable(s: string): string {
  return s.replace(UNPRINTABLE, (c) => `\\u${c.charCodeAt(0).toString(16).padStart(4, '0')}`);
}

/** Hyperparameters of the similarity functions: the CLI sets them with --param KEY=VALUE. */
const PARAM_NAMES = new Set(Object.values(SIMILARITY_DEFAULTS).flatMap((d) => Object.keys(d)));

/**
 * An ArgumentError's message as the CLI says it: the library option it names (`'cacheDir'`, `'topK'`) becomes
 * the command's flag (`--cache-dir`, `--top-k`; a similarity hyperparameter without its own flag
 * `--param minProb`), looked up in the command's help, which lists every flag it takes.
 */
export function cliArgumentMessage(e: ArgumentError, help: string): string {
  if (e.option === undefined) return e.message;
  const kebab = e.option.replace(/[A-Z]/g, (c) => `-${c.toLowerCase()}`);
  let flag: string | undefined;
  if (new RegExp(`--${kebab}(?![\\w-])`).test(help)) flag = `--${kebab}`;
  else if (PARAM_NAMES.has(e.option) && help.includes('--param')) flag = `--param ${e.option}`;
  if (flag === undefined) return e.message;
  // the library's own hint for CLI users is redundant once the flag is named
  return e.message.replace(` (CLI: --param ${e.option}=…)`, '').replaceAll(`'${e.option}'`, flag);
}
