/**
 * The results contract: the types of the files of a results folder (what `dissect --out` and `similarity --out`
 * write) and the version of their format.
 *
 * - `args.json` ({@link ResultsArgs}): how the run was made. `schemaVersion` is the format's version.
 * - `neurons.json` ({@link NeuronsJson}): each neuron's label, score, top concepts and images; `schemaVersion`.
 * - `descriptions.csv` ({@link DescriptionRow}): `layer,unit,description,similarity`, the reference's format
 *   (no version field: the official code reads it).
 * - `images.txt`: the source of each probe row, one a line.
 * - `<layer>.npy`, `image_features.npy`, `text_features.npy`: float32 matrices named by args.json.
 * - `score.json`, `eval.json`, `sanity.json`, `weights.json`, `compose.json`: what the follow-up analyses write
 *   into the folder (or their --out), each starting with an {@link AnalysisHeader}.
 *
 * Versions are `major.minor`: a reader reads every minor version of the majors it knows (a minor version only
 * adds optional fields) and refuses a newer major. Files written before the field existed carry none and
 * read as version 1.0.
 */
import type { ClipDtype } from '../models/onnx-clip-encoder.js';
import type { SimilarityName } from '../numeric/similarity-options.js';
import type { LayerTrust, NeuronTrust } from './trust.js';

/** The format version this code writes into args.json and neurons.json. */
export const RESULTS_SCHEMA_VERSION = '1.0';

/** The first fields of every args.json: the command, library and runtime versions, the date. */
export interface RunHeaderFields {
  command: string;
  /** The library version that wrote the file. */
  version: string;
  node?: string;
  /** The ONNX runtime that ran the networks: 'native' (onnxruntime-node) or 'wasm' (onnxruntime-web). */
  runtime?: string;
  onnxruntime?: string;
  date?: string;
  /** The format version (absent in folders written before it existed: 1.0). */
  schemaVersion?: string;
}

/** A dissected layer in args.json. */
export interface ArgsLayer {
  name: string;
  /** The activations file, relative to the results folder. */
  file: string;
  /** The ONNX tensor that was read. */
  tensor: string;
  kind?: string;
  neurons: number;
  outputShape?: readonly (number | string | null)[];
}

/** A saved matrix of the run, relative to the results folder. */
export interface ArgsMatrixFile {
  file: string;
  shape: [number, number];
}

/** args.json of `clip-dissect dissect`. */
export interface DissectArgs extends RunHeaderFields {
  command: 'dissect';
  /** The folder dissect ran in (relative paths given to it are relative to it); absent in older folders. */
  cwd?: string;
  similarity: SimilarityName;
  /** The similarity hyperparameters the run used. */
  options: Record<string, number>;
  top?: number | null;
  pool?: string;
  token?: string;
  channelsLast?: boolean;
  batchSize?: number;
  runBatchSize?: number | null;
  chunkSize?: number;
  textChunkSize?: number;
  /** Absent in older folders: 'cpu'. */
  device?: 'cpu' | 'cuda';
  threads?: number | null;
  skipBadImages?: boolean;
  inputs: DissectInputs;
  layers: ArgsLayer[];
  files: { imageFeatures: ArgsMatrixFile; textFeatures: ArgsMatrixFile; images?: string };
  skipped?: unknown[];
  /** The feature cache the run used: `dir` is `<cache>/features`. */
  cache?: { dir?: string; enabled?: boolean };
  chunks?: unknown;
  warnings?: string[];
  timings?: Record<string, number>;
}

/** The inputs of a dissection, in args.json. */
export interface DissectInputs {
  target: {
    given?: string;
    /** The .onnx file that was run. */
    model: string;
    /** The classifier's class names (config.json id2label): eval's ground truth. */
    classNames?: { source: string; names: string[] } | null;
    [more: string]: unknown;
  };
  clip: {
    given: string;
    /** The folder the CLIP model was loaded from. */
    dir: string;
    /** Absent in older folders: 'fp32'. */
    dtype?: ClipDtype;
    [more: string]: unknown;
  };
  concepts: {
    /** A built-in name or the concept file (absolute; relative in older folders, see runConceptSource). */
    source: string;
    /** As passed to dissect; absent in older folders (then `source`). */
    given?: string;
    concepts: number;
    duplicatesDropped?: number;
    /** Absent in older folders: '{}'. */
    template?: string;
    /** SHA-256 of the JSON of the concept list. */
    sha256: string;
  };
  probe: {
    given?: string | readonly string[];
    images?: number;
    rows?: number;
    [more: string]: unknown;
  };
}

/** A saved input matrix of `clip-dissect similarity`. */
export interface SimilarityInputMatrix {
  path: string;
  shape: [number, number];
  sha256: string;
}

/** args.json of `clip-dissect similarity`. */
export interface SimilarityArgs extends RunHeaderFields {
  command: 'similarity';
  similarity: SimilarityName;
  options: Record<string, number>;
  top: number;
  layer: string;
  inputs: {
    imageFeatures: SimilarityInputMatrix;
    textFeatures: SimilarityInputMatrix;
    activations: SimilarityInputMatrix;
    concepts: { source: string; concepts: number; duplicatesDropped: number };
  };
}

/** A layer of an activations folder (activations.json). */
export interface ActivationsLayer {
  name: string;
  /** The matrix file, relative to the folder. */
  file: string;
  /** [images, neurons]. */
  shape: [number, number];
  neurons: number;
  tensor: string;
  kind?: string;
  outputShape?: readonly (number | string | null)[];
}

/** activations.json of the folder `clip-dissect activations` writes (one .npy per layer, images.txt). */
export interface ActivationsJson extends RunHeaderFields {
  command: 'activations';
  target: { given?: string; model: string; [more: string]: unknown };
  probe: {
    given?: string | readonly string[];
    images?: number;
    rows: number;
    imagesFile: string;
    [more: string]: unknown;
  };
  layers: ActivationsLayer[];
  [more: string]: unknown;
}

/** args.json of a results folder. */
export type ResultsArgs = DissectArgs | SimilarityArgs;

/** A layer's summary in neurons.json. */
export interface NeuronsLayer {
  layer: string;
  similarity: string;
  options: Record<string, number>;
  nNeurons: number;
  nConcepts: number;
  nImages: number;
  deadNeurons: number;
  /** The trust settings and summary (src/pipeline/trust.ts), when computed. */
  trust?: { settings: LayerTrust['settings']; summary: LayerTrust['summary'] };
}

/** One neuron in neurons.json. */
export interface NeuronRecord {
  layer: string;
  unit: number;
  label: string;
  /** The winning score; null when it was not finite. */
  score: number | null;
  dead: boolean;
  top: { concept: string; index: number; score: number | null }[];
  /** Rows of the top-activating probe images. */
  topImages: number[];
  /** Which labels to trust (src/pipeline/trust.ts), when computed. */
  trust?: Omit<NeuronTrust, 'unit' | 'label'>;
}

/** neurons.json: what was run and one record per neuron. */
export interface NeuronsJson {
  /** The format version (absent in folders written before it existed: 1.0). */
  schemaVersion?: string;
  /** The library version that wrote the file. */
  version: string;
  similarity: string;
  layers: NeuronsLayer[];
  neurons: NeuronRecord[];
}

/** A row of descriptions.csv. */
export interface DescriptionRow {
  layer: string;
  unit: number;
  description: string;
  /** The winning score; NaN for an empty field (pandas' missing value). */
  similarity: number;
}

/** The follow-up analyses that write `<command>.json` into a results folder (or their --out). */
export type AnalysisCommand = 'score' | 'eval' | 'sanity' | 'weights' | 'compose';

/** The first fields of score.json, eval.json, sanity.json, weights.json and compose.json. */
export interface AnalysisHeader {
  schemaVersion: string;
  command: AnalysisCommand;
  /** The library version that wrote the file. */
  version: string;
}
