/**
 * Reading back what `dissect` wrote into its output folder (internal to src/pipeline): args.json (how the run
 * was made: target model, CLIP model, concepts, similarity function, layers and their files), neurons.json
 * (each neuron's label and score) and the feature / activation .npy files, through the results contract's
 * readers (src/results). Used by the follow-up analyses (`compose`, `weights`, `score`, `sanity`, `eval`),
 * which must reuse the run's CLIP model, template and similarity function.
 */
import { platform } from '#platform';
import { BUILTIN_CONCEPT_SETS, type LoadConceptsOptions, loadConceptSet } from '../data/builtin-concepts.js';
import type { ConceptSet } from '../data/concepts.js';
import type { ClipEncoder } from '../models/clip-encoder.js';
import { type ClipDtype, createOnnxClipEncoder } from '../models/onnx-clip-encoder.js';
import { ArgumentError, ClipDissectError, formatChoices } from '../numeric/errors.js';
import type { Matrix } from '../numeric/matrix.js';
import type { SimilarityName } from '../numeric/similarity-options.js';
import type { RunHooks } from '../progress.js';
import {
  type ArgsLayer,
  type DissectArgs,
  type NeuronRecord,
  readDissectArgs,
  readNeuronsJson,
  readResultsMatrix,
  resultsFilePath,
} from '../results/index.js';

const { basename, dirname, isAbsolute, join, resolve } = platform.paths;
const { stat } = platform.files;

/** A dissected layer (args.json). */
export type RunLayer = ArgsLayer;

/** A neuron's record (neurons.json). */
export type RunNeuron = NeuronRecord;

/** A dissection's results folder, read back. */
export interface DissectRun {
  dir: string;
  similarity: SimilarityName;
  /** The similarity hyperparameters the run used. */
  options: Record<string, number>;
  template: string;
  /** source: a built-in name or the concept file (see runConceptSource); given: as passed to dissect. */
  concepts: { source: string; given: string; count: number; sha256: string };
  /** The folder dissect ran in, when recorded. */
  cwd: string | undefined;
  clip: { dir: string; given: string; dtype: ClipDtype };
  device: 'cpu' | 'cuda';
  targetModel: string;
  /** The cache folder the run used (models, concept sets, features), when recorded. */
  cacheDir: string | undefined;
  layers: RunLayer[];
  imageFeaturesFile: string;
  textFeaturesFile: string;
  /** neurons.json records by layer name, in unit order. */
  neurons: Map<string, RunNeuron[]>;
}

function runCacheDir(cache: { dir?: string } | undefined): string | undefined {
  const d = cache?.dir;
  if (typeof d !== 'string') return undefined;
  return basename(d) === 'features' ? dirname(d) : undefined;
}

/**
 * Where a run's concept set is, from its args.json: a built-in name, or a file. dissect records a file by its
 * absolute path; a relative one (written by older versions) is resolved against the recorded `cwd` (the
 * folder dissect ran in) when there is one, else left relative to the current folder.
 */
export function runConceptSource(args: DissectArgs): string {
  const source = args.inputs.concepts.source;
  if (source === '') return '';
  if (isAbsolute(source) || Object.hasOwn(BUILTIN_CONCEPT_SETS, source)) return source;
  return args.cwd !== undefined ? resolve(args.cwd, source) : source;
}

/**
 * Loads the concept set a run recorded (`source`, from runConceptSource); when it cannot be read, a
 * ClipDissectError naming the file, where it was recorded and that --concepts / 'concepts' overrides it.
 */
export async function loadRunConceptSet(
  source: string,
  argsPath: string,
  options: LoadConceptsOptions = {},
  hooks: RunHooks = {},
): Promise<ConceptSet> {
  try {
    return await loadConceptSet(source, options, hooks);
  } catch (e) {
    const builtin = Object.hasOwn(BUILTIN_CONCEPT_SETS, source);
    const missing = !builtin && (await stat(source).catch(() => null)) === null;
    const what = builtin ? `built-in concept set '${source}'` : `concept file '${source}'`;
    const why = missing ? 'it does not exist (moved or deleted since the dissection?)' : (e as Error).message;
    throw new ClipDissectError(
      'ERR_RESULTS',
      `the run's ${what} (recorded in ${argsPath}) cannot be read: ${why}; give the set with --concepts (library: 'concepts'), it is checked against the run's SHA-256`,
      { cause: e },
    );
  }
}

/** Reads args.json and neurons.json of a `dissect` output folder. */
export async function loadDissectRun(dir: string): Promise<DissectRun> {
  if (typeof dir !== 'string' || dir === '')
    throw new ArgumentError(`'results' must be a dissect output folder but got ${JSON.stringify(dir)}`);
  const isDir = (await stat(dir).catch(() => null))?.isDirectory() === true;
  if (!isDir) throw new ArgumentError(`results folder '${dir}' does not exist or is not a folder`);
  const args = await readDissectArgs(dir);
  const argsPath = join(dir, 'args.json');
  for (const l of args.layers)
    await resultsFilePath(dir, l.file, `the activations file of layer '${l.name}'`, argsPath);
  await resultsFilePath(dir, args.files.imageFeatures.file, 'the image features file', argsPath);
  await resultsFilePath(dir, args.files.textFeatures.file, 'the text features file', argsPath);
  const neurons = new Map<string, RunNeuron[]>();
  for (const n of (await readNeuronsJson(dir)).neurons) {
    let list = neurons.get(n.layer);
    if (!list) {
      list = [];
      neurons.set(n.layer, list);
    }
    list[n.unit] = n;
  }
  const { inputs } = args;
  return {
    dir,
    similarity: args.similarity,
    options: args.options ?? {},
    template: inputs.concepts.template ?? '{}',
    concepts: {
      source: runConceptSource(args),
      given: inputs.concepts.given ?? inputs.concepts.source,
      count: inputs.concepts.concepts,
      sha256: inputs.concepts.sha256,
    },
    clip: { dir: inputs.clip.dir, given: inputs.clip.given, dtype: inputs.clip.dtype ?? 'fp32' },
    cwd: args.cwd,
    device: args.device ?? 'cpu',
    targetModel: inputs.target.model,
    cacheDir: runCacheDir(args.cache),
    layers: args.layers,
    imageFeaturesFile: args.files.imageFeatures.file,
    textFeaturesFile: args.files.textFeatures.file,
    neurons,
  };
}

/** The run's layer called `name`, or an ArgumentError listing the dissected layers. */
export function runLayer(run: DissectRun, name: string, flag = 'layer'): RunLayer {
  const l = run.layers.find((x) => x.name === name);
  if (!l)
    throw new ArgumentError(
      `'${flag}' '${name}' was not dissected in '${run.dir}'; its layers are ${formatChoices(run.layers.map((x) => x.name))}`,
    );
  return l;
}

export async function readRunMatrix(run: DissectRun, file: string): Promise<Matrix> {
  return readResultsMatrix(run.dir, file);
}

/** The run's CLIP model (from the folder it was loaded from, never downloading). */
export async function openRunClip(run: DissectRun, opts: { threads?: number } = {}): Promise<ClipEncoder> {
  const isDir = (await stat(run.clip.dir).catch(() => null))?.isDirectory() === true;
  if (!isDir)
    throw new ClipDissectError(
      'ERR_RESULTS',
      `the run's CLIP model folder '${run.clip.dir}' (from '${run.clip.given}') no longer exists; the analysis needs the same CLIP model as the dissection`,
    );
  return createOnnxClipEncoder(run.clip.dir, {
    dtype: run.clip.dtype,
    device: run.device,
    threads: opts.threads,
    offline: true,
  });
}

/**
 * Embeds each distinct text of `texts` once; returns the rows of any list of those texts, in its order (eval and
 * weights embed label lists full of repeats).
 */
export async function embedDistinct(
  texts: readonly string[],
  encode: (t: string[]) => Promise<Matrix>,
): Promise<(list: readonly string[]) => Matrix> {
  const unique = [...new Set(texts)];
  const index = new Map(unique.map((t, i) => [t, i]));
  const m = await encode(unique);
  return (list) => {
    const data = new Float32Array(list.length * m.cols);
    list.forEach((t, r) => {
      const i = index.get(t) as number;
      data.set(m.data.subarray(i * m.cols, (i + 1) * m.cols), r * m.cols);
    });
    return { rows: list.length, cols: m.cols, data };
  };
}
