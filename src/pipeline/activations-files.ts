/**
 * `clip-dissect activations`: run the target network over a probe set and save the pooled activations, the
 * library entry point behind the CLI command. Writes into `out`:
 *
 * - `<layer>.npy`: N×K float32, one row per image of images.txt (numpy reads it; the similarity command's
 *   `--activations`). The file name is the layer name with `/ \ : * ? " < > |` replaced by `_` (raw ONNX tensor
 *   names start with '/'); activations.json maps names to files.
 * - `images.txt`: the source of each row (the image file's absolute path, or `cifar:FILE#i`), one a line.
 * - `activations.json`: layers (file, tensor, kind, shape), pooling, preprocessing, the probe set, skipped images,
 *   the model's exporter and warnings, timings and versions.
 *
 * Every file is written atomically (readers never see a partial file).
 */

import { checkOutputsOutsideProbe } from '../data/probe-dataset.js';
import { checkWritableFolder, withFolderLock } from '../io/folders.js';
import { ArgumentError } from '../numeric/errors.js';
import type { RunHooks } from '../progress.js';
import {
  type ActivationsJson,
  layerFileNames,
  runHeader,
  writeActivationsJson,
  writeImagesTxt,
  writeResultsMatrix,
} from '../results/index.js';
import { type ActivationsResult, type ExtractActivationsOptions, extractActivations } from './activations.js';

export interface ActivationsFilesOptions extends ExtractActivationsOptions {
  /** Output folder (created if missing). */
  out: string;
}

export interface ActivationsFilesResult {
  result: ActivationsResult;
  /** Paths written, in order: the .npy files, images.txt, activations.json. */
  files: string[];
  /** Layer name → .npy file name (inside `out`). */
  layerFiles: Map<string, string>;
}

/**
 * Runs extractActivations and writes its results into `o.out`, holding the folder's lock (see lockFolder: a
 * second run on the same folder fails at once).
 */
export async function runActivationsFiles(
  o: ActivationsFilesOptions,
  hooks: RunHooks = {},
): Promise<ActivationsFilesResult> {
  if (typeof o?.out !== 'string' || o.out === '')
    throw new ArgumentError(`'out' must be the output folder but got ${JSON.stringify(o?.out)}`);
  await checkWritableFolder(o.out, 'out', 'output folder');
  return withFolderLock(o.out, 'activations', undefined, () => writeActivationsFiles(o, hooks));
}

async function writeActivationsFiles(
  o: ActivationsFilesOptions,
  hooks: RunHooks,
): Promise<ActivationsFilesResult> {
  const { out, ...options } = o;
  await checkOutputsOutsideProbe(o.probe, [
    { what: "the output folder ('out' / --out)", path: out },
    o.cacheDir === undefined
      ? undefined
      : { what: "the cache folder ('cacheDir' / --cache-dir)", path: o.cacheDir },
  ]);
  const result = await extractActivations(options, hooks);
  const files: string[] = [];
  const layerFiles = layerFileNames(result.layers.map((l) => l.name));
  const tWrite = performance.now();
  for (const l of result.layers)
    files.push(await writeResultsMatrix(out, layerFiles.get(l.name) as string, l.matrix));
  files.push(
    await writeImagesTxt(
      out,
      result.images.map((im) => im.source),
    ),
  );

  const timings = { ...result.timings, write: Math.round(performance.now() - tWrite) / 1000 };
  const json: ActivationsJson = {
    ...runHeader('activations'),
    command: 'activations',
    target: {
      given: o.target,
      model: result.model.path,
      exporter: result.model.exporter,
      inputShape: result.model.inputShape,
      device: result.model.device,
      threads: result.model.threads ?? null,
    },
    probe: {
      given: o.probe,
      sources: result.probe.sources,
      images: result.probe.images,
      rows: result.images.length,
      imagesFile: 'images.txt',
    },
    layers: result.layers.map((l) => ({
      name: l.name,
      file: layerFiles.get(l.name) as string,
      shape: [l.matrix.rows, l.matrix.cols],
      neurons: l.neurons,
      tensor: l.tensor,
      kind: l.kind,
      outputShape: l.shape,
    })),
    pool: result.pool,
    token: o.token ?? 'cls',
    channelsLast: o.channelsLast ?? false,
    batchSize: result.batchSize,
    workers: result.workers,
    preprocessing: { source: result.preprocess.source, ...result.preprocess.config },
    skipped: result.skipped,
    warnings: result.warnings,
    timings,
  };
  files.push(await writeActivationsJson(out, json));
  return { result, files, layerFiles };
}
