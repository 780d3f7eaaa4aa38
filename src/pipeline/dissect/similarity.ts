/** dissect's similarity stage: each layer's neurons labelled by the similarity function (src/compute). */
import { computeSimilarity, type SimilarityResult } from '../../compute/similarity/index.js';
import type { LayerInfo } from '../../models/target-model.js';
import { ArgumentError, ClipDissectError } from '../../numeric/errors.js';
import type { Matrix } from '../../numeric/matrix.js';
import type { SimilarityName } from '../../numeric/similarity-options.js';
import type { LayerResult } from '../../results/descriptions.js';
import type { StageContext } from './options.js';

/** A topK larger than the usable images: the message says how to lower it. */
export function explainTopK(e: unknown, rows: number): unknown {
  if (e instanceof ArgumentError && /must be <= nImages/.test(e.message))
    return new ArgumentError(
      `${e.message}: the probe set has only ${rows} usable images (lower 'topK', e.g. to ${Math.max(1, Math.floor(rows / 2))})`,
      { option: e.option, cause: e },
    );
  return e;
}

export interface SimilarityInput {
  similarity: SimilarityName;
  /** rows×d CLIP image features and M×d text features. */
  imageFeatures: Matrix;
  textFeatures: Matrix;
  /** rows×K per layer name. */
  activations: ReadonlyMap<string, Matrix>;
  /** The layers, in result order. */
  infos: readonly Pick<LayerInfo, 'name'>[];
  concepts: readonly string[];
  options?: Record<string, number>;
  top?: number;
  topImages?: number;
  memoryBudget?: number;
  threads?: number;
}

/**
 * One LayerResult per layer. Errors: ClipDissectError 'ERR_MODEL_CONFIG' when the image and text features
 * differ in width; ArgumentError for options the usable images cannot satisfy (a topK above them, with
 * advice); the engine's errors; the signal's reason.
 */
export async function layerSimilarities(i: SimilarityInput, ctx: StageContext): Promise<LayerResult[]> {
  const I = i.imageFeatures;
  const T = i.textFeatures;
  if (I.cols !== T.cols)
    throw new ClipDissectError(
      'ERR_MODEL_CONFIG',
      `CLIP image features have ${I.cols} columns but text features ${T.cols}`,
    );
  const t = performance.now();
  const layers: LayerResult[] = [];
  const progress = ctx.progress;
  for (const info of i.infos) {
    ctx.signal?.throwIfAborted();
    const stage = `similarity ${info.name}`;
    let result: SimilarityResult;
    try {
      result = await computeSimilarity(
        i.similarity,
        { imageFeatures: I, textFeatures: T, activations: i.activations.get(info.name) as Matrix },
        {
          options: i.options as never,
          top: i.top,
          topImages: i.topImages,
          memoryBudget: i.memoryBudget,
          threads: i.threads,
        },
        { onProgress: progress ? (e) => progress({ ...e, stage }) : undefined, signal: ctx.signal },
      );
    } catch (e) {
      throw explainTopK(e, I.rows);
    }
    layers.push({ layer: info.name, result, concepts: i.concepts });
  }
  ctx.time('similarity', performance.now() - t);
  return layers;
}
