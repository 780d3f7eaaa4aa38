/**
 * Readers of the results contract (src/results/schema.ts): one per file, each checking what it reads. A file
 * that breaks the contract is a ClipDissectError 'ERR_RESULTS' naming the file, the field, the value found and
 * what was expected; a newer major format version than this code knows is refused; a missing file is an
 * ArgumentError naming it.
 */
import { platform } from '#platform';
import { parseCsv } from '../data/labels-files.js';
import { readTextInput } from '../io/regular-file.js';
import { ClipDissectError } from '../numeric/errors.js';
import { checkSimilarityName } from '../numeric/similarity-options.js';
import {
  type ActivationsJson,
  type DescriptionRow,
  type DissectArgs,
  type NeuronsJson,
  RESULTS_SCHEMA_VERSION,
  type ResultsArgs,
} from './schema.js';

const { join } = platform.paths;

export { readResultsMatrix, resultsFilePath } from '../io/results-folder.js';

const HINT = "; --results must be a folder written by 'clip-dissect dissect --out'";

/** A short JSON rendering of a value for an error message. */
function shown(v: unknown): string {
  const s = v === undefined ? 'undefined' : JSON.stringify(v);
  return s.length > 80 ? `${s.slice(0, 77)}...` : s;
}

/** The error of a field that breaks the contract. */
function badField(path: string, field: string, value: unknown, expected: string): ClipDissectError {
  return new ClipDissectError(
    'ERR_RESULTS',
    `${path}: field '${field}' is ${shown(value)} but must be ${expected}`,
  );
}

type Kind = 'string' | 'number' | 'integer' | 'boolean' | 'array' | 'object';
const EXPECTED: Record<Kind, string> = {
  string: 'a string',
  number: 'a number',
  integer: 'a non-negative integer',
  boolean: 'true or false',
  array: 'an array',
  object: 'an object',
};

function isKind(v: unknown, kind: Kind): boolean {
  switch (kind) {
    case 'array':
      return Array.isArray(v);
    case 'object':
      return typeof v === 'object' && v !== null && !Array.isArray(v);
    case 'integer':
      return Number.isSafeInteger(v) && (v as number) >= 0;
    default:
      return typeof v === kind;
  }
}

/** Checks the fields of `obj` (named `at` in `path`): `name?` marks an optional field (absent, or null). */
function checkFields(path: string, at: string, obj: unknown, fields: Record<string, Kind>): void {
  if (!isKind(obj, 'object')) throw badField(path, at, obj, 'an object');
  const o = obj as Record<string, unknown>;
  for (const [key, kind] of Object.entries(fields)) {
    const optional = key.endsWith('?');
    const name = optional ? key.slice(0, -1) : key;
    const v = o[name];
    if (optional && (v === undefined || v === null)) continue;
    if (!isKind(v, kind)) throw badField(path, at === '' ? name : `${at}.${name}`, v, EXPECTED[kind]);
  }
}

/**
 * Checks a file's `schemaVersion` (absent: 1.0): a newer major version than RESULTS_SCHEMA_VERSION is
 * refused, a newer minor one read (it only adds fields).
 */
export function checkSchemaVersion(path: string, version: unknown): void {
  if (version === undefined) return;
  const m = typeof version === 'string' ? /^(\d+)\.(\d+)$/.exec(version) : null;
  if (!m) throw badField(path, 'schemaVersion', version, "a version 'major.minor' such as '1.0'");
  const known = Number(RESULTS_SCHEMA_VERSION.split('.')[0]);
  if (Number(m[1]) > known)
    throw new ClipDissectError(
      'ERR_RESULTS',
      `${path}: results format version ${version} is newer than this clip-dissect reads (${known}.x); upgrade clip-dissect to read this folder`,
    );
}

/** A JSON file of a results folder: an ArgumentError when it cannot be read, ERR_RESULTS when it is not JSON. */
async function readResultsJson(path: string, what: string): Promise<Record<string, unknown>> {
  const text = await readTextInput(path, what, HINT);
  let v: unknown;
  try {
    v = JSON.parse(text);
  } catch (e) {
    throw new ClipDissectError('ERR_RESULTS', `${what} '${path}' is not valid JSON: ${(e as Error).message}`);
  }
  if (!isKind(v, 'object')) throw new ClipDissectError('ERR_RESULTS', `${path}: expected a JSON object`);
  checkSchemaVersion(path, (v as Record<string, unknown>).schemaVersion);
  return v as Record<string, unknown>;
}

/** Checks the similarity name of a results file. */
function checkSimilarity(path: string, v: unknown): void {
  try {
    checkSimilarityName(v as string);
  } catch {
    throw badField(path, 'similarity', v, 'a similarity function name');
  }
}

/** args.json of the results folder `dir`, checked: a dissect or a similarity run's. */
export async function readArgsJson(dir: string): Promise<ResultsArgs> {
  const path = join(dir, 'args.json');
  const a = await readResultsJson(path, 'args.json');
  checkFields(path, '', a, { command: 'string', version: 'string', 'options?': 'object' });
  checkSimilarity(path, a.similarity);
  if (a.command === 'dissect') {
    checkFields(path, '', a, {
      'cwd?': 'string',
      'device?': 'string',
      inputs: 'object',
      layers: 'array',
      files: 'object',
      'cache?': 'object',
    });
    for (const [i, l] of (a.layers as unknown[]).entries())
      checkFields(path, `layers[${i}]`, l, {
        name: 'string',
        file: 'string',
        tensor: 'string',
        neurons: 'integer',
      });
    const files = a.files as Record<string, unknown>;
    checkFields(path, 'files.imageFeatures', files.imageFeatures, { file: 'string' });
    checkFields(path, 'files.textFeatures', files.textFeatures, { file: 'string' });
    const inputs = a.inputs as Record<string, unknown>;
    checkFields(path, 'inputs.target', inputs.target, { model: 'string', 'classNames?': 'object' });
    checkFields(path, 'inputs.clip', inputs.clip, { given: 'string', dir: 'string', 'dtype?': 'string' });
    checkFields(path, 'inputs.concepts', inputs.concepts, {
      source: 'string',
      'given?': 'string',
      concepts: 'integer',
      'template?': 'string',
      sha256: 'string',
    });
    if (a.device !== undefined && a.device !== 'cpu' && a.device !== 'cuda')
      throw badField(path, 'device', a.device, "'cpu' or 'cuda'");
  } else if (a.command === 'similarity') {
    checkFields(path, '', a, { layer: 'string', top: 'integer', inputs: 'object' });
  } else {
    throw badField(
      path,
      'command',
      a.command,
      "'dissect' or 'similarity' (the commands that write a results folder)",
    );
  }
  return a as unknown as ResultsArgs;
}

/** args.json of a `dissect` results folder: ERR_RESULTS naming the command when another one wrote it. */
/** Reads `dir`/activations.json (an activations folder), checking the fields that locate its matrices. */
export async function readActivationsJson(dir: string): Promise<ActivationsJson> {
  const path = join(dir, 'activations.json');
  const a = await readResultsJson(path, 'activations.json');
  checkFields(path, '', a, {
    command: 'string',
    version: 'string',
    target: 'object',
    probe: 'object',
    layers: 'array',
  });
  if (a.command !== 'activations') throw badField(path, 'command', a.command, "'activations'");
  checkFields(path, 'target', a.target, { model: 'string' });
  checkFields(path, 'probe', a.probe, { rows: 'integer', imagesFile: 'string' });
  for (const [i, l] of (a.layers as unknown[]).entries())
    checkFields(path, `layers[${i}]`, l, {
      name: 'string',
      file: 'string',
      shape: 'array',
      neurons: 'integer',
      tensor: 'string',
    });
  return a as unknown as ActivationsJson;
}

export async function readDissectArgs(dir: string): Promise<DissectArgs> {
  const a = await readArgsJson(dir);
  if (a.command !== 'dissect')
    throw new ClipDissectError(
      'ERR_RESULTS',
      `'${join(dir, 'args.json')}' was written by '${a.command}', not by 'dissect'; this reads the output folder of clip-dissect dissect`,
    );
  return a;
}

/** neurons.json of the results folder `dir`, checked record by record. */
export async function readNeuronsJson(dir: string): Promise<NeuronsJson> {
  const path = join(dir, 'neurons.json');
  const n = await readResultsJson(path, 'neurons.json');
  checkFields(path, '', n, { version: 'string', similarity: 'string', layers: 'array', neurons: 'array' });
  for (const [i, l] of (n.layers as unknown[]).entries())
    checkFields(path, `layers[${i}]`, l, { layer: 'string', nNeurons: 'integer', 'trust?': 'object' });
  for (const [i, r] of (n.neurons as unknown[]).entries()) {
    const at = `neurons[${i}]`;
    checkFields(path, at, r, {
      layer: 'string',
      unit: 'integer',
      label: 'string',
      'score?': 'number',
      dead: 'boolean',
      top: 'array',
      topImages: 'array',
      'trust?': 'object',
    });
    const rec = r as { top: unknown[]; topImages: unknown[] };
    for (const [j, t] of rec.top.entries())
      checkFields(path, `${at}.top[${j}]`, t, { concept: 'string', index: 'integer', 'score?': 'number' });
    for (const [j, x] of rec.topImages.entries())
      if (!isKind(x, 'integer')) throw badField(path, `${at}.topImages[${j}]`, x, 'a row of images.txt');
  }
  return n as unknown as NeuronsJson;
}

const DESCRIPTIONS_HEADER = 'layer,unit,description,similarity';

/** descriptions.csv of the results folder `dir` (`layer,unit,description,similarity`), row by row. */
export async function readDescriptionsCsv(dir: string): Promise<DescriptionRow[]> {
  const path = join(dir, 'descriptions.csv');
  const rows = parseCsv(await readTextInput(path, 'descriptions.csv', HINT), path).filter(
    (r) => !(r.length === 1 && r[0] === ''),
  );
  if (rows[0]?.join(',') !== DESCRIPTIONS_HEADER)
    throw new ClipDissectError(
      'ERR_RESULTS',
      `${path}: header is ${shown(rows[0]?.join(',') ?? '')} but must be '${DESCRIPTIONS_HEADER}'`,
    );
  return rows.slice(1).map((r, i) => {
    const line = `line ${i + 2}`;
    if (r.length !== 4) throw badField(path, line, r, 'four fields: layer,unit,description,similarity');
    if (!/^\d+$/.test(r[1])) throw badField(path, `${line} unit`, r[1], 'a non-negative integer');
    const s =
      r[3] === '' ? Number.NaN : r[3] === 'inf' ? Infinity : r[3] === '-inf' ? -Infinity : Number(r[3]);
    if (r[3] !== '' && Number.isNaN(s)) throw badField(path, `${line} similarity`, r[3], 'a number or empty');
    return { layer: r[0], unit: Number(r[1]), description: r[2], similarity: s };
  });
}

/**
 * The labels of `layer` (K units) from descriptions.csv's rows: ERR_RESULTS when the layer is absent or a
 * unit is missing, repeated or out of range.
 */
export function layerDescriptions(
  rows: readonly DescriptionRow[],
  layer: string,
  units: number,
  dir: string,
): string[] {
  const path = join(dir, 'descriptions.csv');
  if (!rows.some((r) => r.layer === layer)) {
    const present = [...new Set(rows.map((r) => `'${r.layer}'`))].join(', ') || '(none)';
    throw new ClipDissectError(
      'ERR_RESULTS',
      `${path}: no rows of layer '${layer}'; its layers are ${present}`,
    );
  }
  const labels: (string | undefined)[] = new Array(units).fill(undefined);
  for (const r of rows) {
    if (r.layer !== layer) continue;
    if (r.unit >= units || labels[r.unit] !== undefined)
      throw badField(path, `unit of layer '${layer}'`, r.unit, `each of 0…${units - 1} once`);
    labels[r.unit] = r.description;
  }
  const missing = labels.indexOf(undefined);
  if (missing >= 0)
    throw new ClipDissectError(
      'ERR_RESULTS',
      `${path}: layer '${layer}' has no row for unit ${missing} (of ${units}); every unit needs one`,
    );
  return labels as string[];
}

/** images.txt of the results folder `dir`: the source of each probe row. */
export async function readImagesTxt(dir: string): Promise<string[]> {
  const text = await readTextInput(join(dir, 'images.txt'), 'images.txt', HINT);
  return text.split('\n').filter((l) => l !== '');
}
