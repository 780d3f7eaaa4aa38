/** The start every CLI command shares: flags, --help, required flags, the progress renderer. Internal. */
import type { ParseArgsConfig } from 'node:util';
import { checkWritableFolder } from '../io/folders.js';
import type { ProgressCallback } from '../progress.js';
import { checkRuntimeDevice, RUNTIME_CHOICES, runtimeLine, selectRuntime } from '../runtime/index.js';
import { type CliIO, choice, type ParsedValues, parse, required, UsageError } from './_args.js';
import { aliases, type FlagGroup, type FlagValues, parseOptions } from './_flags.js';
import { ProgressRenderer } from './progress-renderer.js';

export interface CommandSpec<G extends readonly FlagGroup[] = readonly FlagGroup[]> {
  /** The command's name, as typed after `clip-dissect`. */
  name: string;
  /** Printed on stdout for -h / --help. */
  help: string;
  /** The command's own flags; -h/--help (and -q/--quiet with `progress`) are added. */
  options?: NonNullable<ParseArgsConfig['options']>;
  /** Or its flags as declared in _flags.ts, deprecated aliases included (the help is generated from them). */
  groups?: G;
  /** Flags that must be given. */
  required?: readonly string[];
  /** Whether operands (positional arguments) are allowed. */
  positionals?: boolean;
  /** Whether the command reports progress on stderr (and so takes -q/--quiet). */
  progress?: boolean;
  /** Whether --out and --cache-dir are checked to be writable folders before the command runs (default true). */
  writesFolders?: boolean;
}

export interface CommandStart<V = ParsedValues> {
  /** The flags' values, typed from the command's flag groups. */
  values: V;
  positionals: string[];
  /** Draws progress lines and warnings on stderr. */
  renderer: ProgressRenderer;
  /** The renderer's callback; undefined with --quiet. */
  onProgress: ProgressCallback | undefined;
}

/**
 * Parses `args` for a command. Returns null when the help was printed (the command then exits 0); throws a
 * CliError for unknown flags, bad operands or missing required flags, and an ArgumentError (shown with the
 * flag's name) when --out or --cache-dir cannot be written: a file in the way, no write permission, /proc.
 * These checks come before any work, so that a long run never fails at its end for its output folder.
 */
export async function startCommand<const G extends readonly FlagGroup[] = readonly FlagGroup[]>(
  spec: CommandSpec<G>,
  args: string[],
  io: CliIO,
): Promise<CommandStart<FlagValues<G> & { quiet?: boolean }> | null> {
  const options: NonNullable<ParseArgsConfig['options']> = {
    ...(spec.progress ? { quiet: { type: 'boolean', short: 'q' } } : {}),
    ...spec.options,
    ...(spec.groups ? parseOptions(spec.groups) : {}),
    help: { type: 'boolean', short: 'h' },
  };
  const renamed = aliases(spec.groups ?? []);
  const { values, positionals } = parse(
    spec.name,
    args,
    options,
    spec.positionals ?? false,
    new Set(renamed.keys()),
  );
  if (values.help) {
    io.stdout.write(spec.help);
    return null;
  }
  // a deprecated spelling still works, with a warning naming the new one
  for (const [alias, name] of renamed) {
    if (values[alias] === undefined) continue;
    if (values[name] !== undefined)
      throw new UsageError(`${spec.name}: --${alias} and --${name} are the same flag; give --${name} only`);
    io.stderr.write(`warning: ${spec.name} --${alias} is deprecated; use --${name}\n`);
    values[name] = values[alias];
    delete values[alias];
  }
  if (spec.required) required(values, [...spec.required], spec.name);
  if (spec.writesFolders !== false) {
    if (typeof values.out === 'string') await checkWritableFolder(values.out, 'out', 'output folder');
    if (typeof values['cache-dir'] === 'string')
      await checkWritableFolder(values['cache-dir'], 'cacheDir', 'cache');
  }
  // the ONNX runtime, before any work: a missing native runtime fails here
  if ('runtime' in options) {
    const runtime = await selectRuntime(choice('runtime', values.runtime, RUNTIME_CHOICES) ?? 'auto');
    // said when it is the slower WebAssembly one (with how to get the native one) or was asked for;
    // args.json records it either way
    if (values.quiet !== true && (runtime.name === 'wasm' || values.runtime !== undefined))
      io.stderr.write(`${runtimeLine(runtime)}\n`);
    checkRuntimeDevice(values.device === 'cuda' ? 'cuda' : undefined);
  }
  const renderer = new ProgressRenderer(io.stderr);
  io.signal?.addEventListener('abort', () => renderer.stop(), { once: true });
  const onProgress = spec.progress && values.quiet !== true ? renderer.onProgress : undefined;
  return { values: values as FlagValues<G> & { quiet?: boolean }, positionals, renderer, onProgress };
}

/** The closing lines of a command's summary: `wrote:` and one indented line per file written. */
export function wroteLines(files: readonly string[]): string[] {
  return ['wrote:', ...files.map((f) => `  ${f}`)];
}
