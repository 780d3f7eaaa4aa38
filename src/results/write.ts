/**
 * Writers of the results contract (src/results/schema.ts): one per file, each atomic (src/io/atomic.ts: a
 * reader never sees a partial file) and returning the path written. args.json and neurons.json get the
 * current RESULTS_SCHEMA_VERSION.
 */
import { platform } from '#platform';
import { writeFileAtomic } from '../io/atomic.js';
import { matrixToNpy, writeNpy } from '../io/npy.js';
import type { Matrix } from '../numeric/matrix.js';
import { descriptionsCsv, type LayerResult } from '../results/descriptions.js';
import { runtimeVersions } from '../runtime/index.js';
import { VERSION } from '../version.js';
import {
  type ActivationsJson,
  type AnalysisCommand,
  type NeuronsJson,
  RESULTS_SCHEMA_VERSION,
  type ResultsArgs,
} from './schema.js';

const { join } = platform.paths;

/**
 * Writes `dir`/`name` as JSON (indented by `indent`, values through `replacer`), its `schemaVersion` first and
 * set to the current one.
 */
async function writeVersionedJson(
  dir: string,
  name: string,
  body: { schemaVersion?: string },
  indent: number,
  replacer?: (key: string, value: unknown) => unknown,
): Promise<string> {
  const path = join(dir, name);
  const { schemaVersion: _old, ...rest } = body;
  await writeFileAtomic(
    path,
    `${JSON.stringify({ schemaVersion: RESULTS_SCHEMA_VERSION, ...rest }, replacer, indent)}\n`,
  );
  return path;
}

/** Writes `dir`/args.json (dissect's or similarity's); `schemaVersion` is set to the current version. */
export function writeArgsJson(dir: string, args: ResultsArgs): Promise<string> {
  return writeVersionedJson(dir, 'args.json', args, 2);
}

/**
 * Writes `dir`/neurons.json; `schemaVersion` is set to the current version. dissect's body:
 * `neuronsJsonBody(layers, { version: VERSION, similarity })` (src/report/descriptions.ts).
 */
export function writeNeuronsJson(dir: string, body: NeuronsJson): Promise<string> {
  return writeVersionedJson(dir, 'neurons.json', body, 1);
}

/** Writes `dir`/activations.json (the record of an activations folder); `schemaVersion` is set to the current version. */
export function writeActivationsJson(dir: string, body: ActivationsJson): Promise<string> {
  return writeVersionedJson(dir, 'activations.json', body, 2);
}

/** Writes `dir`/descriptions.csv (`layer,unit,description,similarity`) of the labelled layers. */
export async function writeDescriptionsCsv(dir: string, layers: readonly LayerResult[]): Promise<string> {
  const path = join(dir, 'descriptions.csv');
  await writeFileAtomic(path, descriptionsCsv(layers));
  return path;
}

/** Writes `dir`/images.txt: the source of each probe row, one a line. */
export async function writeImagesTxt(dir: string, sources: readonly string[]): Promise<string> {
  const path = join(dir, 'images.txt');
  await writeFileAtomic(path, sources.map((s) => `${s}\n`).join(''));
  return path;
}

/** Writes a float32 matrix of the folder (`file` relative to `dir`: `<layer>.npy`, `image_features.npy` ...). */
export async function writeResultsMatrix(dir: string, file: string, m: Matrix): Promise<string> {
  const path = join(dir, file);
  await writeNpy(path, matrixToNpy(m));
  return path;
}

/**
 * Writes `dir`/`<command>.json`, a follow-up analysis's output: the AnalysisHeader (schemaVersion, command,
 * library version), then `body` (`replacer` as JSON.stringify's, e.g. for non-finite numbers).
 */
export function writeAnalysisJson(
  dir: string,
  command: AnalysisCommand,
  body: Record<string, unknown>,
  replacer?: (key: string, value: unknown) => unknown,
): Promise<string> {
  const json: Record<string, unknown> = { command, version: VERSION, ...body };
  return writeVersionedJson(dir, `${command}.json`, json, 1, replacer);
}

/** The first fields of every args.json and activations.json: the command, library and runtime versions, the date. */
export function runHeader(command: string): {
  command: string;
  version: string;
  date: string;
  [runtime: string]: string;
} {
  return {
    command,
    version: VERSION,
    ...platform.host.runtimeVersions,
    ...runtimeVersions(),
    date: new Date().toISOString(),
  };
}

/** The file name of a layer's activations: unsafe characters replaced; a clash gets `_2`, `_3` … */
export function layerFileNames(names: readonly string[]): Map<string, string> {
  const out = new Map<string, string>();
  const taken = new Set<string>(['images', 'activations']);
  for (const name of names) {
    const base = name.replace(/[/\\:*?"<>|\p{Cc}]/gu, '_').replace(/^\.+$/, '_') || '_';
    let stem = base;
    for (let k = 2; taken.has(stem.toLowerCase()); k++) stem = `${base}_${k}`;
    taken.add(stem.toLowerCase());
    out.set(name, `${stem}.npy`);
  }
  return out;
}
