/**
 * `clip-dissect eval`: how well a layer's labels match known ground truths — the final-layer evaluation of the
 * paper (Sec. 4.2, Tables 1–3), computed as the reference notebooks do (experiments/table1.ipynb, table3.ipynb):
 *
 * - ground truth of unit i = line i of a class-name file, whole (ImageNet: `tench, Tinca tinca`), no template;
 * - CLIP cos: per unit, the cosine between the CLIP text embeddings (the run's CLIP model, normalised) of the
 *   predicted label and of the ground truth; the mean over units;
 * - mpnet cos: the same with sentence embeddings of all-mpnet-base-v2 (mean pooling, L2-normalised);
 * - when every ground truth is a concept of the run (matched by exact string, e.g. the concept set is the class
 *   names themselves): the neurons × concepts similarity of the layer is recomputed from the saved features
 *   with the run's similarity function and hyperparameters, and from it top-1 / top-5 accuracy (the unit's
 *   class ranked first / among the first five), mean and median rank of the class (median =
 *   `sorted(ranks)[K // 2]` as the notebook) and the ROC-AUC of the winning score as a predictor of top-1
 *   correctness. Ties in a row are ordered by concept index (the label is the first maximum).
 *
 * Other methods' labels (NetDissect, MILAN, plain CSV; see src/data/labels-files.ts) are scored against the same
 * ground truths with the same encoders, so the methods can be put side by side as in Table 1.
 */
import { platform } from '#platform';
import { computeSimilarity } from '../compute/similarity/index.js';
import { loadConceptSet } from '../data/builtin-concepts.js';
import { type MethodLabels, readClassNames, readMethodLabels } from '../data/labels-files.js';
import { readResultsMatrix, resultsFilePath } from '../io/results-folder.js';
import { sha256Hex } from '../io/sha256.js';
import { type ClipDtype, createOnnxClipEncoder, DEFAULT_CLIP_MODEL } from '../models/onnx-clip-encoder.js';
import { createOnnxSentenceEncoder, DEFAULT_SENTENCE_MODEL } from '../models/onnx-sentence-encoder.js';
import { ArgumentError, ClipDissectError, ShapeError } from '../numeric/errors.js';
import { mean, rocAuc, rowCosines, targetRanks, topKAccuracy, upperMedian } from '../numeric/eval-metrics.js';
import type { Matrix } from '../numeric/matrix.js';
import type { RunHooks } from '../progress.js';
import {
  layerDescriptions,
  readDescriptionsCsv,
  readDissectArgs,
  writeAnalysisJson,
} from '../results/index.js';
import { VERSION } from '../version.js';
import { embedDistinct, loadRunConceptSet, runConceptSource } from './_results.js';

const { basename, join } = platform.paths;

export interface EvalOptions {
  /** The output folder of `clip-dissect dissect` (args.json, descriptions.csv, the .npy files). */
  results: string;
  /** The layer to evaluate, as named in the run (e.g. 'fc'). */
  layer: string;
  /**
   * Class names, line i = ground truth of unit i (e.g. imagenet_labels.txt). Default: the target's class
   * names recorded by dissect (its config.json `id2label`), when the layer has one neuron per class.
   */
  groundTruth?: string;
  /** The CLIP model for the CLIP cosine: default the run's (args.json). */
  clip?: string;
  /** CLIP weights; default the run's. */
  dtype?: ClipDtype;
  /** The sentence encoder: default 'Xenova/all-mpnet-base-v2'. */
  mpnet?: string;
  /** The run's concept set, when args.json's path no longer reaches it (checked against its SHA-256). */
  concepts?: string;
  /** Other methods' label files (NetDissect tally.csv, MILAN csv, layer,unit,description csv). */
  compare?: readonly string[];
  /** Where eval.json goes; default the results folder. */
  out?: string;
  device?: 'cpu' | 'cuda';
  threads?: number;
  memoryBudget?: number;
  cacheDir?: string;
  offline?: boolean;
}

/** Scores of one method's labels. */
export interface MethodScores {
  /** 'CLIP-Dissect' for the run's own labels, else the file's name. */
  method: string;
  source: string;
  layout: MethodLabels['layout'] | 'clip-dissect';
  /** Mean over units of the CLIP text-space cosine of label and ground truth. */
  clipCos: number;
  /** Mean over units of the all-mpnet-base-v2 cosine of label and ground truth. */
  mpnetCos: number;
  labels: string[];
  clipCosPerUnit: Float64Array;
  mpnetCosPerUnit: Float64Array;
}

export interface AccuracyScores {
  /** Fractions in [0, 1]. */
  top1: number;
  top5: number;
  meanRank: number;
  medianRank: number;
  /** null when every unit is correct or every unit wrong (one class only: undefined). */
  auc: number | null;
  /** Per unit: the 1-based rank of its class, and the index of its class among the concepts. */
  ranks: Int32Array;
  classConcepts: Int32Array;
  /** Units whose recomputed label differs from descriptions.csv's (should be 0). */
  labelMismatches: number;
}

export interface EvalResult {
  layer: string;
  units: number;
  groundTruth: { source: string; classes: string[] };
  clipModel: string;
  mpnetModel: string;
  similarity: string;
  concepts: { source: string; count: number };
  methods: MethodScores[];
  /** null when the ground truths are not all concepts of the run (see accuracyNote). */
  accuracy: AccuracyScores | null;
  accuracyNote?: string;
  warnings: string[];
  files: string[];
}

/**
 * Evaluates one layer of a dissection against ground-truth class names (and other methods' labels on the same
 * ground truths). Writes eval.json to `out` (default: the results folder).
 */
export async function evaluate(o: EvalOptions, hooks: RunHooks = {}): Promise<EvalResult> {
  for (const k of ['results', 'layer'] as const)
    if (typeof o?.[k] !== 'string' || o[k] === '')
      throw new ArgumentError(`'${k}' is required but got ${JSON.stringify(o?.[k])}`);
  if (o.groundTruth !== undefined && (typeof o.groundTruth !== 'string' || o.groundTruth === ''))
    throw new ArgumentError(
      `'groundTruth' must be a file of class names but got ${JSON.stringify(o.groundTruth)}`,
    );
  const warnings: string[] = [];
  const warn = (w: string) => {
    warnings.push(w);
    hooks.onWarning?.(w);
  };
  const progress = hooks.onProgress;
  hooks.signal?.throwIfAborted();

  // --- the run
  const argsPath = join(o.results, 'args.json');
  const args = await readDissectArgs(o.results);
  const layers = args.layers;
  const entry = layers.find((l) => l.name === o.layer);
  if (!entry)
    throw new ArgumentError(
      `layer '${o.layer}' is not in the run ${o.results}; its layers are ${layers.map((l) => `'${l.name}'`).join(', ')}`,
    );
  await resultsFilePath(o.results, entry.file, `the activations file of layer '${o.layer}'`, argsPath);
  const K = entry.neurons;
  const clipInfo = args.inputs.clip;
  const conceptInfo = args.inputs.concepts;
  const similarity = args.similarity;

  let classes: string[];
  let gtSource: string;
  if (o.groundTruth !== undefined) {
    classes = await readClassNames(o.groundTruth);
    gtSource = o.groundTruth;
    if (classes.length !== K)
      throw new ShapeError(
        `ground truth ${o.groundTruth} has ${classes.length} class names but layer '${o.layer}' has ${K} neurons; line i must name the class of unit i`,
      );
  } else {
    // the target's class names, as dissect recorded them (config.json id2label)
    const recorded = args.inputs.target.classNames ?? null;
    const names = recorded?.names;
    if (!Array.isArray(names) || !names.every((n) => typeof n === 'string'))
      throw new ArgumentError(
        `no ground truth for layer '${o.layer}': the run ${o.results} recorded no class names of its target (a config.json with id2label next to the model, as Hugging Face models have); pass a file of class names, line i = the class of unit i`,
      );
    if (names.length !== K)
      throw new ShapeError(
        `the target's class names (${String(recorded?.source)}) are ${names.length} but layer '${o.layer}' has ${K} neurons; evaluate the classifier layer (one neuron per class) or pass a file of class names`,
      );
    classes = names as string[];
    gtSource = String(recorded?.source ?? 'the target (id2label)');
  }

  const descPath = join(o.results, 'descriptions.csv');
  const own: MethodLabels = {
    source: descPath,
    layout: 'layer-unit-description',
    labels: layerDescriptions(await readDescriptionsCsv(o.results), o.layer, K, o.results),
  };
  const others: MethodLabels[] = [];
  for (const f of o.compare ?? []) others.push(await readMethodLabels(f, o.layer, K));

  // --- accuracy over the concepts, when the class names are concepts of the run
  let accuracy: AccuracyScores | null = null;
  let accuracyNote: string | undefined;
  const conceptSource = o.concepts ?? runConceptSource(args);
  let conceptCount = conceptInfo.concepts;
  let concepts: string[] | null = null;
  try {
    const loadOptions = { cacheDir: o.cacheDir, offline: o.offline };
    const loadHooks = { onProgress: progress, signal: hooks.signal };
    const set =
      o.concepts !== undefined
        ? await loadConceptSet(conceptSource, loadOptions, loadHooks)
        : await loadRunConceptSet(conceptSource, argsPath, loadOptions, loadHooks);
    if (conceptInfo.sha256 !== undefined && sha256Hex(JSON.stringify(set.concepts)) !== conceptInfo.sha256)
      throw new ClipDissectError(
        'ERR_RESULTS',
        o.concepts !== undefined
          ? `the concept set ${conceptSource} is not the run's: its concepts do not match the SHA-256 in ${argsPath}`
          : `the concept set ${conceptSource} has changed since the run (its concepts no longer match the SHA-256 in ${argsPath})`,
      );
    concepts = set.concepts;
    conceptCount = set.concepts.length;
  } catch (e) {
    if (o.concepts !== undefined) throw e;
    accuracyNote = `no accuracy: ${(e as Error).message}`;
    warn(accuracyNote);
  }
  if (concepts) {
    const index = new Map<string, number>();
    concepts.forEach((c, i) => {
      if (!index.has(c)) index.set(c, i);
    });
    const classConcepts = Int32Array.from(classes, (c) => index.get(c) ?? -1);
    const missing = classes.filter((_, i) => classConcepts[i] < 0);
    if (missing.length > 0) {
      accuracyNote = `no accuracy: ${missing.length} of the ${K} ground-truth classes are not concepts of the run (first: ${JSON.stringify(missing[0])}); top-k accuracy and ranks need a concept set holding every class name`;
    } else {
      const [I, T, A] = [
        await readResultsMatrix(o.results, 'image_features.npy'),
        await readResultsMatrix(o.results, 'text_features.npy'),
        await readResultsMatrix(o.results, entry.file),
      ];
      if (T.rows !== concepts.length)
        throw new ShapeError(
          `${join(o.results, 'text_features.npy')} has ${T.rows} rows but the concept set ${conceptSource} has ${concepts.length} concepts`,
        );
      const r = await computeSimilarity(
        similarity,
        { imageFeatures: I, textFeatures: T, activations: A },
        {
          options: (args.options ?? {}) as never,
          top: 1,
          topImages: 0,
          keepMatrix: true,
          memoryBudget: o.memoryBudget,
          threads: o.threads,
        },
        {
          onProgress: progress ? (e) => progress({ ...e, stage: `similarity ${o.layer}` }) : undefined,
          signal: hooks.signal,
        },
      );
      const S = r.matrix as Matrix;
      const ranks = targetRanks(S, classConcepts);
      let labelMismatches = 0;
      for (let k = 0; k < K; k++) if (concepts[r.labels[k]] !== own.labels[k]) labelMismatches++;
      if (labelMismatches > 0)
        warn(
          `${labelMismatches} of ${K} labels recomputed from the saved features differ from ${descPath} (was the folder edited?)`,
        );
      // the notebook: max score per neuron as the predictor, correct = argmax is the unit's class
      const correct = Uint8Array.from(ranks, (rk) => (rk === 1 ? 1 : 0));
      const auc = rocAuc(r.scores, correct);
      accuracy = {
        top1: topKAccuracy(ranks, 1),
        top5: topKAccuracy(ranks, 5),
        meanRank: mean(ranks),
        medianRank: upperMedian(ranks),
        auc: Number.isNaN(auc) ? null : auc,
        ranks,
        classConcepts,
        labelMismatches,
      };
    }
  }

  // --- cosine similarities in CLIP's and mpnet's text spaces
  const clipId = o.clip ?? String(clipInfo['hubId'] ?? clipInfo.dir ?? clipInfo.given ?? DEFAULT_CLIP_MODEL);
  const mpnetId = o.mpnet ?? DEFAULT_SENTENCE_MODEL;
  const allLabels = [own, ...others].flatMap((m) => m.labels);
  const texts = [...classes, ...allLabels];
  hooks.signal?.throwIfAborted();
  const clip = await createOnnxClipEncoder(
    clipId,
    {
      dtype: o.dtype ?? clipInfo.dtype ?? 'fp32',
      device: o.device,
      threads: o.threads,
      cacheDir: o.cacheDir,
      offline: o.offline,
    },
    { onProgress: progress, signal: hooks.signal },
  );
  let clipRows: (list: readonly string[]) => Matrix;
  try {
    clipRows = await embedDistinct(texts, async (t) => {
      const e = await clip.encodeText(t, { onProgress: progress, signal: hooks.signal });
      if (e.truncated.length)
        warn(
          `${e.truncated.length} text${e.truncated.length === 1 ? ' was' : 's were'} longer than CLIP's ${clip.contextLength} tokens and cut (first: ${JSON.stringify(t[e.truncated[0]])})`,
        );
      return e;
    });
  } finally {
    await clip.release();
  }
  hooks.signal?.throwIfAborted();
  const mpnet = await createOnnxSentenceEncoder(
    mpnetId,
    { device: o.device, threads: o.threads, cacheDir: o.cacheDir, offline: o.offline },
    { onProgress: progress, signal: hooks.signal },
  );
  let mpnetRows: (list: readonly string[]) => Matrix;
  try {
    mpnetRows = await embedDistinct(texts, (t) =>
      mpnet.encode(t, { onProgress: progress, signal: hooks.signal }),
    );
  } finally {
    await mpnet.release();
  }
  const clipGt = clipRows(classes);
  const mpnetGt = mpnetRows(classes);
  const score = (m: MethodLabels, method: string, layout: MethodScores['layout']): MethodScores => {
    const c = rowCosines(clipRows(m.labels), clipGt);
    const s = rowCosines(mpnetRows(m.labels), mpnetGt);
    return {
      method,
      source: m.source,
      layout,
      clipCos: mean(c),
      mpnetCos: mean(s),
      labels: m.labels,
      clipCosPerUnit: c,
      mpnetCosPerUnit: s,
    };
  };
  const names = new Set(['CLIP-Dissect']);
  const methods = [score(own, 'CLIP-Dissect', 'clip-dissect')];
  for (const m of others) {
    // a method is named by its file name, or by its path when two files share a name
    const name = names.has(basename(m.source)) ? m.source : basename(m.source);
    names.add(name);
    methods.push(score(m, name, m.layout));
  }

  const result: EvalResult = {
    layer: o.layer,
    units: K,
    groundTruth: { source: gtSource, classes },
    clipModel: clipId,
    mpnetModel: mpnetId,
    similarity,
    concepts: { source: conceptSource, count: conceptCount },
    methods,
    accuracy,
    ...(accuracyNote ? { accuracyNote } : {}),
    warnings,
    files: [],
  };
  result.files.push(await writeAnalysisJson(o.out ?? o.results, 'eval', evalJson(result, args)));
  return result;
}

const round = (x: number, digits = 6) => (Number.isFinite(x) ? Number(x.toFixed(digits)) : null);

/** eval.json: summary figures first, then one record per unit. */
export function evalJson(
  r: EvalResult,
  args: { options?: Record<string, number> } = {},
): Record<string, unknown> {
  const a = r.accuracy;
  return {
    command: 'eval',
    version: VERSION,
    date: new Date().toISOString(),
    layer: r.layer,
    units: r.units,
    groundTruth: r.groundTruth.source,
    clipModel: r.clipModel,
    mpnetModel: r.mpnetModel,
    run: { similarity: r.similarity, options: args.options ?? {}, concepts: r.concepts },
    methods: r.methods.map((m) => ({
      method: m.method,
      source: m.source,
      layout: m.layout,
      clipCos: round(m.clipCos),
      mpnetCos: round(m.mpnetCos),
    })),
    accuracy: a
      ? {
          top1: round(a.top1),
          top5: round(a.top5),
          meanRank: round(a.meanRank),
          medianRank: a.medianRank,
          auc: a.auc === null ? null : round(a.auc),
          labelMismatches: a.labelMismatches,
        }
      : null,
    ...(r.accuracyNote ? { accuracyNote: r.accuracyNote } : {}),
    warnings: r.warnings,
    perUnit: r.groundTruth.classes.map((gt, i) => ({
      unit: i,
      groundTruth: gt,
      ...(a ? { rank: a.ranks[i] } : {}),
      labels: Object.fromEntries(
        r.methods.map((m) => [
          m.method,
          { label: m.labels[i], clipCos: round(m.clipCosPerUnit[i]), mpnetCos: round(m.mpnetCosPerUnit[i]) },
        ]),
      ),
    })),
  };
}
