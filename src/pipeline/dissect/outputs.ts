/**
 * dissect's outputs stage: the result files of a results folder (descriptions.csv, neurons.json, one .npy per
 * layer, image_features.npy, text_features.npy, images.txt, args.json), each written atomically, and the record
 * of the inputs that args.json keeps.
 */
import { platform } from '#platform';
import type { ProbeDataset } from '../../data/probe-dataset.js';
import { runBatchFor } from '../../models/_run-batch.js';
import type { ClipPreprocess } from '../../models/onnx-clip-encoder.js';
import type { LayerInfo, PoolMode, TokenMode } from '../../models/target-model.js';
import type { Matrix } from '../../numeric/matrix.js';
import type { SimilarityName } from '../../numeric/similarity-options.js';
import { neuronsJsonBody } from '../../results/descriptions.js';
import {
  type DissectInputs as ArgsInputs,
  type DissectArgs,
  layerFileNames,
  runHeader,
  writeArgsJson,
  writeDescriptionsCsv,
  writeImagesTxt,
  writeNeuronsJson,
  writeResultsMatrix,
} from '../../results/index.js';
import { VERSION } from '../../version.js';
import type { ClipHashes, DissectInputs } from './inputs.js';
import { DEFAULT_BATCH, type DissectOptions, type DissectResult } from './options.js';

/** The inputs of a run as args.json records them: what was given, the files used, their hashes. */
export function inputsRecord(
  o: DissectOptions,
  inp: DissectInputs,
  found: {
    targetSha: string;
    exporter: string;
    clipHashes: ClipHashes;
    clipPreprocess: ClipPreprocess;
    clipPre: object;
    template: string;
    probe: string | readonly string[];
    dataset: ProbeDataset;
    manifestSha: string;
    rows: number;
    skipped: number;
  },
): ArgsInputs {
  const { target, pre, classNames, clip, concepts } = inp;
  return {
    target: {
      given: o.target,
      hubId: target.hubId ?? null,
      revision: target.revision ?? null,
      dtype: o.targetDtype ?? 'fp32',
      model: target.model,
      sha256: found.targetSha,
      exporter: found.exporter,
      preprocessing: { source: pre.source, ...pre.config },
      // the ground truth of eval: unit i of the classifier = class i
      classNames: classNames ? { source: `${target.config} (id2label)`, names: classNames } : null,
    },
    clip: {
      given: clip.id,
      hubId: clip.hubId ?? null,
      dir: clip.dir,
      dtype: clip.dtype,
      sha256: found.clipHashes,
      preprocess: found.clipPreprocess,
      preprocessing: { source: clip.preprocessorFile, ...found.clipPre },
    },
    concepts: {
      source: concepts.source,
      given: concepts.name,
      concepts: concepts.set.concepts.length,
      duplicatesDropped: concepts.set.duplicates.length,
      template: found.template,
      sha256: concepts.sha256,
    },
    probe: {
      given: found.probe,
      sources: found.dataset.sources,
      images: found.dataset.images.length,
      rows: found.rows,
      manifestSha256: found.manifestSha,
      skipped: found.skipped,
    },
  };
}

export async function writeResults(
  o: DissectOptions,
  r: DissectResult,
  meta: {
    similarity: SimilarityName;
    pool: PoolMode;
    token: TokenMode;
    chunkSize: number;
    textChunkSize: number;
    infos: LayerInfo[];
  },
): Promise<string[]> {
  const out = o.out as string;
  const files: string[] = [];
  files.push(await writeDescriptionsCsv(out, r.layers));
  files.push(
    await writeNeuronsJson(out, neuronsJsonBody(r.layers, { version: VERSION, similarity: meta.similarity })),
  );
  // reserved names first, so that a layer called 'image_features' gets image_features_2.npy
  const names = layerFileNames(['image_features', 'text_features', ...meta.infos.map((i) => i.name)]);
  const fileOf = (layer: string) => names.get(layer) as string;
  for (const info of meta.infos)
    files.push(await writeResultsMatrix(out, fileOf(info.name), r.activations.get(info.name) as Matrix));
  files.push(await writeResultsMatrix(out, 'image_features.npy', r.imageFeatures));
  files.push(await writeResultsMatrix(out, 'text_features.npy', r.textFeatures));
  files.push(
    await writeImagesTxt(
      out,
      r.images.map((im) => im.source),
    ),
  );
  const first = r.layers[0]?.result;
  const runBatch = runBatchFor(o.device, o.runBatchSize);
  const args: DissectArgs = {
    ...runHeader('dissect'),
    command: 'dissect',
    // the folder dissect ran in: relative paths given to it (probe, target) are relative to it
    cwd: platform.host.cwd(),
    similarity: meta.similarity,
    options: (first?.options ?? {}) as Record<string, number>,
    top: first?.top ?? null,
    pool: meta.pool,
    token: meta.token,
    channelsLast: o.channelsLast ?? false,
    batchSize: o.batchSize ?? DEFAULT_BATCH,
    runBatchSize: Number.isFinite(runBatch) ? runBatch : null, // no limit on CUDA
    chunkSize: meta.chunkSize,
    textChunkSize: meta.textChunkSize,
    device: o.device ?? 'cpu',
    threads: o.threads ?? null,
    skipBadImages: o.skipBadImages ?? false,
    inputs: r.inputs,
    layers: meta.infos.map((i) => ({
      name: i.name,
      file: fileOf(i.name),
      tensor: i.tensor,
      kind: i.kind,
      neurons: i.neurons,
      outputShape: i.shape,
    })),
    files: {
      imageFeatures: { file: 'image_features.npy', shape: [r.imageFeatures.rows, r.imageFeatures.cols] },
      textFeatures: { file: 'text_features.npy', shape: [r.textFeatures.rows, r.textFeatures.cols] },
      images: 'images.txt',
    },
    skipped: r.skipped,
    cache: r.cache,
    chunks: r.chunks,
    warnings: r.warnings,
    timings: r.timings,
  };
  files.push(await writeArgsJson(out, args));
  return files;
}
