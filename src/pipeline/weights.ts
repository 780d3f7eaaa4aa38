/**
 * `clip-dissect weights`: do neurons connected by a high weight encode similar concepts? (paper Sec. 5,
 * Figure 6; the official experiments/fig5_use_case.ipynb.)
 *
 * From a dissection's results: the weight matrix W[to, from] between two layers (read from the target's ONNX
 * initializers), the concept of each `from` neuron (its label in neurons.json) and the class name of each `to`
 * unit (a ground-truth file, one name a line). The similarity of a weight is the cosine, in a text-embedding
 * space, between its two texts; as in the notebook, labels and class names are embedded as they are (no
 * template). The default space is all-mpnet-base-v2's, the one the notebook correlates with the weights
 * (`stats.pearsonr(top_weights[:].cpu(), sorted_mpnet_sims[:].cpu())`, the paper's r = 0.120); 'clip' uses the
 * run's CLIP text encoder (the notebook's "CLIP cos", its other curve of Figure 6b). Reported, following the
 * notebook:
 * - the top-k weights with both concepts and their similarity (torch.sort of W.view(-1), descending);
 * - Pearson r and p between weight and similarity over all weights and over the `topWeights` largest;
 * - the mean similarity of the top-k weights for k = 4, 8, …, 2^20 (those below the number of weights) and all
 *   weights (Figure 6b), as weights.svg;
 * - Pearson r between each `from` neuron's winning score and its largest outgoing weight.
 */
import { platform } from '#platform';
import { writeFileAtomic } from '../io/atomic.js';
import { readTextInput } from '../io/regular-file.js';
import { linearWeightsBetween } from '../models/_onnx-weights.js';
import { createOnnxSentenceEncoder, DEFAULT_SENTENCE_MODEL } from '../models/onnx-sentence-encoder.js';
import { ArgumentError, formatChoices } from '../numeric/errors.js';
import type { Matrix } from '../numeric/matrix.js';
import { matmulTransB, normalizeRows } from '../numeric/reductions.js';
import { type PearsonResult, pearson } from '../numeric/stats.js';
import type { RunHooks } from '../progress.js';
import { writeAnalysisJson } from '../results/index.js';
import { linePlotSvg } from '../results/line-plot-svg.js';
import { type DissectRun, embedDistinct, loadDissectRun, openRunClip, runLayer } from './_results.js';

const { join } = platform.paths;

/** Embeds texts into a space where cosine similarity compares them (rows need not be normalised). */
export type TextEmbedder = (texts: readonly string[]) => Promise<Matrix>;

/**
 * Text spaces for concept similarity, the default first. 'mpnet': a sentence encoder (default
 * all-mpnet-base-v2, the notebook's "mpnet cos", which gives the paper's r values); 'clip': the run's CLIP
 * text encoder (the notebook's "CLIP cos").
 */
export const WEIGHT_TEXT_SPACES = ['mpnet', 'clip'] as const;
export type WeightTextSpace = (typeof WEIGHT_TEXT_SPACES)[number];

export interface WeightsOptions {
  /** A `dissect` output folder. */
  results: string;
  /** The layer whose neurons feed the weights (dissected in the run), e.g. 'layer4'. */
  from: string;
  /** The layer the weights feed, e.g. 'fc' (a module or tensor of the target model). */
  to: string;
  /** Class names of the `to` units: a file with one name a line, or the names. */
  groundTruth: string | readonly string[];
  /** Weights listed, largest first. Default 20. */
  top?: number;
  /** The "highest weights" subset of the second correlation. Default 50000 (the paper's). */
  topWeights?: number;
  /** Default 'mpnet'. */
  textSpace?: WeightTextSpace;
  /** The sentence encoder of the 'mpnet' space: a hub id or a folder (default 'Xenova/all-mpnet-base-v2'). */
  mpnet?: string;
  /** Where hub models are cached (default ~/.cache/clip-dissect), for the 'mpnet' space. */
  cacheDir?: string;
  /** Never download: the sentence encoder must be a folder or cached. */
  offline?: boolean;
  /** A custom embedder; overrides textSpace (named `textSpaceName` in the outputs). */
  embedder?: TextEmbedder;
  textSpaceName?: string;
  threads?: number;
  /** Where to write weights.json and weights.svg; default the results folder; null writes nothing. */
  out?: string | null;
}

export interface WeightEntry {
  rank: number;
  fromUnit: number;
  fromConcept: string;
  /** The from neuron's winning score (its "similarity to its concept"). */
  fromScore: number | null;
  toUnit: number;
  toClass: string;
  weight: number;
  similarity: number;
}

export interface WeightsResult {
  from: string;
  to: string;
  textSpace: string;
  /** The text encoder: the sentence encoder's id or folder, the run's CLIP folder, or 'custom'. */
  textModel: string;
  /** nTo × nFrom. */
  shape: [number, number];
  node: string;
  weightTensor: string;
  path: string[];
  top: WeightEntry[];
  /** Pearson r of weight vs similarity over all weights. */
  correlationAll: PearsonResult;
  /** Over the `topWeights` largest weights. */
  correlationTop: PearsonResult;
  topWeights: number;
  /** Mean similarity (and mean weight) of the top k weights. */
  curve: { k: number; meanSimilarity: number; meanWeight: number }[];
  /** Pearson r between a from neuron's winning score and its largest outgoing weight (neurons with a score). */
  scoreVsMaxWeight: PearsonResult;
  files: string[];
}

async function readGroundTruth(gt: string | readonly string[], n: number, to: string): Promise<string[]> {
  let names: string[];
  if (typeof gt === 'string') {
    const text = await readTextInput(gt, 'ground-truth file');
    names = text.replace(/\r\n/g, '\n').split('\n');
    if (names.length > 0 && names[names.length - 1] === '') names.pop();
  } else names = [...gt];
  if (names.length !== n)
    throw new ArgumentError(
      `the ground truth has ${names.length} class names but layer '${to}' has ${n} units; give one name per line, in unit order`,
    );
  return names;
}

/** Encodes the distinct texts once; rows of the result follow `texts`. */
async function embedTexts(embed: TextEmbedder, texts: readonly string[]): Promise<Matrix> {
  return normalizeRows((await embedDistinct(texts, embed))(texts));
}

/** k = 4, 8, …, 2^20 below `total`, then `total` (the notebook's grid, without repeats of the last point). */
export function topKGrid(total: number): number[] {
  const ks: number[] = [];
  for (let i = 2; i <= 20; i++) if (2 ** i < total) ks.push(2 ** i);
  ks.push(total);
  return ks;
}

export async function analyseWeights(o: WeightsOptions, hooks: RunHooks = {}): Promise<WeightsResult> {
  if (typeof o.from !== 'string' || o.from === '' || typeof o.to !== 'string' || o.to === '')
    throw new ArgumentError(`'from' and 'to' are required layer names but got ${o.from} and ${o.to}`);
  const top = o.top ?? 20;
  const topWeights = o.topWeights ?? 50000;
  for (const [k, v] of [
    ['top', top],
    ['topWeights', topWeights],
  ] as const)
    if (!Number.isInteger(v) || v < 1)
      throw new ArgumentError(`'${k}' must be a positive integer but got ${v}`);
  const run: DissectRun = await loadDissectRun(o.results);
  const fromLayer = runLayer(run, o.from, 'from');
  const neurons = run.neurons.get(o.from) ?? [];

  const lw = await linearWeightsBetween(
    run.targetModel,
    { name: fromLayer.name, tensor: fromLayer.tensor },
    { name: o.to },
  );
  const W = lw.weight;
  const nTo = W.rows;
  const nFrom = W.cols;
  if (nFrom !== fromLayer.neurons || neurons.length !== nFrom)
    throw new ArgumentError(
      `the weights of '${lw.node}' take ${nFrom} inputs but layer '${o.from}' has ${fromLayer.neurons} neurons (${neurons.length} in neurons.json); the linear layer does not read '${o.from}' channel by channel`,
    );
  const classes = await readGroundTruth(o.groundTruth, nTo, o.to);
  const concepts = neurons.map((n) => n.label);

  // similarity[t, f] = cos(class t, concept of f)
  let embed = o.embedder;
  let textModel = 'custom';
  let release: (() => Promise<void>) | null = null;
  const textSpace = o.embedder ? (o.textSpaceName ?? 'custom') : (o.textSpace ?? 'mpnet');
  if (!embed) {
    if (!(WEIGHT_TEXT_SPACES as readonly string[]).includes(textSpace))
      throw new ArgumentError(
        `'textSpace' must be ${formatChoices(WEIGHT_TEXT_SPACES)} but got '${textSpace}'`,
      );
    if (textSpace === 'clip') {
      const clip = await openRunClip(run, { threads: o.threads });
      textModel = run.clip.dir;
      release = () => clip.release();
      embed = async (texts) => clip.encodeText(texts, { onProgress: hooks.onProgress, signal: hooks.signal });
    } else {
      textModel = o.mpnet ?? DEFAULT_SENTENCE_MODEL;
      const mpnet = await createOnnxSentenceEncoder(
        textModel,
        { device: run.device, threads: o.threads, cacheDir: o.cacheDir, offline: o.offline },
        { onProgress: hooks.onProgress, signal: hooks.signal },
      );
      release = () => mpnet.release();
      embed = async (texts) => mpnet.encode(texts, { onProgress: hooks.onProgress, signal: hooks.signal });
    }
  }
  let C: Matrix;
  let G: Matrix;
  try {
    hooks.signal?.throwIfAborted();
    C = await embedTexts(embed, concepts);
    hooks.signal?.throwIfAborted();
    G = await embedTexts(embed, classes);
  } finally {
    await release?.();
  }
  const total = nTo * nFrom;
  const sim = matmulTransB(G, C).data; // [to, from], as W

  // weights sorted descending (ties: lower flat index first), as torch.sort(W.view(-1), descending=True)
  const order = new Int32Array(total);
  for (let i = 0; i < total; i++) order[i] = i;
  const w = W.data;
  order.sort((a, b) => w[b] - w[a] || a - b);
  const sw = new Float64Array(total);
  const ss = new Float64Array(total);
  for (let i = 0; i < total; i++) {
    sw[i] = w[order[i]];
    ss[i] = sim[order[i]];
  }
  const entries: WeightEntry[] = [];
  for (let r = 0; r < Math.min(top, total); r++) {
    const t = Math.floor(order[r] / nFrom);
    const f = order[r] % nFrom;
    entries.push({
      rank: r + 1,
      fromUnit: f,
      fromConcept: concepts[f],
      fromScore: neurons[f].score,
      toUnit: t,
      toClass: classes[t],
      weight: sw[r],
      similarity: ss[r],
    });
  }
  const correlationAll = pearson(sw, ss);
  const nTop = Math.min(topWeights, total);
  const correlationTop = pearson(sw, ss, nTop);
  const curve: WeightsResult['curve'] = [];
  {
    let cs = 0;
    let cw = 0;
    let i = 0;
    for (const k of topKGrid(total)) {
      for (; i < k; i++) {
        cs += ss[i];
        cw += sw[i];
      }
      curve.push({ k, meanSimilarity: cs / k, meanWeight: cw / k });
    }
  }
  // each from neuron: winning score vs largest outgoing weight (neurons without a finite score left out)
  const scores: number[] = [];
  const maxW: number[] = [];
  for (let f = 0; f < nFrom; f++) {
    const s = neurons[f].score;
    if (s === null || !Number.isFinite(s)) continue;
    let m = Number.NEGATIVE_INFINITY;
    for (let t = 0; t < nTo; t++) m = Math.max(m, w[t * nFrom + f]);
    scores.push(s);
    maxW.push(m);
  }
  const scoreVsMaxWeight = pearson(scores, maxW);

  const result: WeightsResult = {
    from: o.from,
    to: o.to,
    textSpace,
    textModel,
    shape: [nTo, nFrom],
    node: lw.node,
    weightTensor: lw.weightTensor,
    path: lw.path,
    top: entries,
    correlationAll,
    correlationTop,
    topWeights: nTop,
    curve,
    scoreVsMaxWeight,
    files: [],
  };
  const out = o.out === undefined ? run.dir : o.out;
  if (out !== null) {
    const json = {
      results: run.dir,
      targetModel: run.targetModel,
      ...result,
      files: undefined,
    };
    const jsonNum = (_k: string, v: unknown) =>
      typeof v === 'number' && !Number.isFinite(v) ? (Number.isNaN(v) ? null : String(v)) : v;
    const jsonPath = await writeAnalysisJson(out, 'weights', json, jsonNum);
    const svg = linePlotSvg(
      [
        {
          label: `${textSpace} cos similarity`,
          x: curve.map((c) => c.k),
          y: curve.map((c) => c.meanSimilarity),
        },
      ],
      {
        title: `Concept similarity of the neurons joined by the top k weights (${o.from} → ${o.to})`,
        xLabel: 'k (weights, largest first; log scale)',
        yLabel: 'mean cosine similarity of the top k',
        logX: true,
      },
    );
    await writeFileAtomic(join(out, 'weights.svg'), svg);
    result.files = [jsonPath, join(out, 'weights.svg')];
  }
  return result;
}
