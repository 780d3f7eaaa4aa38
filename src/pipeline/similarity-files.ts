/**
 * `clip-dissect similarity`: label one layer's neurons from saved features — CLIP image features,
 * CLIP text features and target activations as .npy files plus a concept set — and write the result
 * files. The library entry point behind the CLI command.
 */

import { computeSimilarity, type SimilarityResult } from '../compute/similarity/index.js';
import { loadConceptSet } from '../data/builtin-concepts.js';
import { type ConceptSet, duplicateWarnings } from '../data/concepts.js';
import { fsErrorCode } from '../io/files.js';
import { checkWritableFolder, withFolderLock } from '../io/folders.js';
import { npyToMatrix, parseNpy } from '../io/npy.js';
import { readRegularFile } from '../io/regular-file.js';
import { sha256Hex } from '../io/sha256.js';
import { ArgumentError, ClipDissectError, ShapeError } from '../numeric/errors.js';
import { checkFinite, type Matrix } from '../numeric/matrix.js';
import { checkSimilarityName, type SimilarityName } from '../numeric/similarity-options.js';
import type { RunHooks } from '../progress.js';
import { type LayerResult, neuronsJsonBody } from '../results/descriptions.js';
import {
  runHeader,
  type SimilarityArgs,
  writeArgsJson,
  writeDescriptionsCsv,
  writeNeuronsJson,
  writeResultsMatrix,
} from '../results/index.js';
import { VERSION } from '../version.js';

export interface SimilarityFilesOptions {
  /** N×d CLIP image features (.npy). */
  imageFeatures: string;
  /** M×d CLIP text features (.npy), one row per concept. */
  textFeatures: string;
  /** N×K activations of one layer (.npy). */
  activations: string;
  /** A concept file (one a line) or a built-in set name. */
  concepts: string;
  /** Output folder. */
  out: string;
  similarity?: SimilarityName;
  /** The layer name written to the outputs. Default 'layer'. */
  layer?: string;
  /** Hyperparameters of the similarity function. */
  options?: Record<string, number>;
  /** Concepts kept per neuron. Default 5. */
  top?: number;
  /** Also write the K×M score matrix as similarity.npy. */
  saveMatrix?: boolean;
  memoryBudget?: number;
  threads?: number;
  cacheDir?: string;
  offline?: boolean;
}

export interface SimilarityFilesResult {
  layer: LayerResult;
  files: string[];
}

interface LoadedMatrix {
  matrix: Matrix;
  sha256: string;
  path: string;
}

async function loadMatrix(path: string, what: string): Promise<LoadedMatrix> {
  let bytes: Uint8Array;
  try {
    bytes = await readRegularFile(path);
  } catch (e) {
    if (e instanceof ClipDissectError) throw new ArgumentError(`${what}: ${e.message}`);
    throw new ArgumentError(`${what} '${path}' cannot be read (${fsErrorCode(e) ?? (e as Error).message})`);
  }
  const matrix = npyToMatrix(parseNpy(bytes, path), path);
  checkFinite(matrix, `${what} ${path}`);
  return { matrix, sha256: sha256Hex(bytes), path };
}

const shape = (m: Matrix) => `${m.rows}×${m.cols}`;

/** Rows of text features for a concept set: one per unique concept, or one per non-blank line. */
function alignText(T: LoadedMatrix, set: ConceptSet): Matrix {
  const unique = set.concepts.length;
  if (T.matrix.rows === unique) return T.matrix;
  if (T.matrix.rows === set.nonBlankLines) {
    // computed on every non-blank line (the reference keeps duplicates): keep each concept's first row
    const firstRow = new Int32Array(unique).fill(-1);
    for (let r = 0; r < set.lineToConcept.length; r++)
      if (firstRow[set.lineToConcept[r]] < 0) firstRow[set.lineToConcept[r]] = r;
    const d = T.matrix.cols;
    const data = new Float32Array(unique * d);
    for (let c = 0; c < unique; c++)
      data.set(T.matrix.data.subarray(firstRow[c] * d, (firstRow[c] + 1) * d), c * d);
    return { rows: unique, cols: d, data };
  }
  const dup = set.duplicates.length;
  throw new ShapeError(
    `text features ${T.path} have ${T.matrix.rows} rows (${shape(T.matrix)}) but concept set ${set.source} has ${unique} concepts${dup ? ` (${set.nonBlankLines} non-blank lines with ${dup} duplicates)` : ''}; they need one row per concept, in file order`,
  );
}

/**
 * Labels one layer from saved features and writes the results into `o.out`, holding the folder's lock (see
 * lockFolder: a second run on the same folder fails at once).
 */
export async function runSimilarityFiles(
  o: SimilarityFilesOptions,
  hooks: RunHooks = {},
): Promise<SimilarityFilesResult> {
  await checkWritableFolder(o?.out, 'out', 'output folder');
  return withFolderLock(o.out, 'similarity', hooks.onWarning, () => similarityFiles(o, hooks));
}

async function similarityFiles(o: SimilarityFilesOptions, hooks: RunHooks): Promise<SimilarityFilesResult> {
  const similarity = checkSimilarityName(o.similarity ?? 'soft_wpmi');
  const [I, T, A] = [
    await loadMatrix(o.imageFeatures, 'image features'),
    await loadMatrix(o.textFeatures, 'text features'),
    await loadMatrix(o.activations, 'activations'),
  ];
  const set = await loadConceptSet(
    o.concepts,
    { cacheDir: o.cacheDir, offline: o.offline },
    { onProgress: hooks.onProgress, signal: hooks.signal },
  );
  for (const w of duplicateWarnings(set)) hooks.onWarning?.(w);
  if (I.matrix.cols !== T.matrix.cols) {
    throw new ShapeError(
      `image features ${I.path} (${shape(I.matrix)}) and text features ${T.path} (${shape(T.matrix)}) have different feature dimensions (${I.matrix.cols} vs ${T.matrix.cols}); both must come from the same CLIP model`,
    );
  }
  if (I.matrix.rows !== A.matrix.rows) {
    throw new ShapeError(
      `image features ${I.path} have ${I.matrix.rows} rows (${shape(I.matrix)}) but activations ${A.path} have ${A.matrix.rows} (${shape(A.matrix)}); both need one row per probe image, in the same order`,
    );
  }
  const textFeatures = alignText(T, set);
  let result: SimilarityResult;
  try {
    result = await computeSimilarity(
      similarity,
      { imageFeatures: I.matrix, textFeatures, activations: A.matrix },
      {
        options: o.options as never,
        top: o.top,
        keepMatrix: o.saveMatrix,
        memoryBudget: o.memoryBudget,
        threads: o.threads,
      },
      hooks,
    );
  } catch (e) {
    if (e instanceof ArgumentError && /must be <= nImages/.test(e.message)) {
      throw new ArgumentError(`${e.message}: the probe set in ${A.path} has only ${A.matrix.rows} images`);
    }
    throw e;
  }
  const layer: LayerResult = { layer: o.layer ?? 'layer', result, concepts: set.concepts };
  const files = [await writeDescriptionsCsv(o.out, [layer])];
  const args: SimilarityArgs = {
    ...runHeader('similarity'),
    command: 'similarity',
    similarity,
    options: result.options,
    top: result.top,
    layer: layer.layer,
    inputs: {
      imageFeatures: { path: I.path, shape: [I.matrix.rows, I.matrix.cols], sha256: I.sha256 },
      textFeatures: { path: T.path, shape: [T.matrix.rows, T.matrix.cols], sha256: T.sha256 },
      activations: { path: A.path, shape: [A.matrix.rows, A.matrix.cols], sha256: A.sha256 },
      concepts: {
        source: set.source,
        concepts: set.concepts.length,
        duplicatesDropped: set.duplicates.length,
      },
    },
  };
  files.push(await writeNeuronsJson(o.out, neuronsJsonBody([layer], { version: VERSION, similarity })));
  files.push(await writeArgsJson(o.out, args));
  if (o.saveMatrix && result.matrix)
    files.push(await writeResultsMatrix(o.out, 'similarity.npy', result.matrix));
  return { layer, files };
}
