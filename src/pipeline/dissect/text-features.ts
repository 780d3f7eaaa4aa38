/**
 * dissect's text stage: CLIP's text features of every concept, in chunks of `textChunkSize` texts cached by the
 * texts (src/pipeline/cache.ts). The text tower opens only when some chunk is not cached, and is released at
 * the end of the stage.
 */

import { sha256Hex } from '../../io/sha256.js';
import type { ClipEncoder } from '../../models/clip-encoder.js';
import { clipDtypeKey } from '../../models/onnx-clip-encoder.js';
import { checkFinite, type Matrix } from '../../numeric/matrix.js';
import { VERSION } from '../../version.js';
import { cacheKey, type FeatureCache } from '../cache.js';
import { type ClipTowerOptions, openClipTower } from './clip-tower.js';
import type { ClipHashes } from './inputs.js';
import type { StageContext } from './options.js';

export interface TextFeaturesInput {
  /** The texts embedded, in concept order. */
  texts: readonly string[];
  /** The template the texts were made with (part of the cache key). */
  template: string;
  textChunkSize: number;
  clip: ClipTowerOptions & { id: string; hashes: ClipHashes };
  cache: FeatureCache;
  /** Paused while the text tower runs (it takes every core), e.g. the image workers. */
  pause?: { pause(): void; resume(): void };
}

export interface TextFeatures {
  /** M×d, one row per text. */
  features: Matrix;
  /** Chunks computed (not read from the cache) and in all. */
  chunks: { computed: number; total: number };
}

/**
 * Encodes (or reads from the cache) the texts. Warns once about texts longer than CLIP's context. Errors: the
 * encoder's, ClipDissectError for non-finite features (naming the concept), the signal's reason.
 */
export async function textFeatures(i: TextFeaturesInput, ctx: StageContext): Promise<TextFeatures> {
  const { texts, textChunkSize, cache } = i;
  const t = performance.now();
  const nTextChunks = Math.ceil(texts.length / textChunkSize);
  let textComputed = 0;
  let d = -1;
  const h = i.clip.hashes;
  const textParts = (texts_: readonly string[]) => ({
    what: 'clip-text-features',
    clip: { config: h.config, tokenizer: h.tokenizer, tokenizerConfig: h.tokenizerConfig, text: h.text },
    dtype: clipDtypeKey(i.clip.dtype),
    // CUDA kernels round differently from the CPU ones: features of one device never serve the other
    device: i.clip.device,
    template: i.template,
    texts: sha256Hex(JSON.stringify(texts_)),
    count: texts_.length,
    version: VERSION,
  });
  const textChunks: Matrix[] = [];
  const truncated: { count: number; first?: string; contextLength: number } = {
    count: 0,
    contextLength: 0,
  };
  let enc: ClipEncoder | null = null;
  try {
    ctx.progress?.({ stage: 'text features', done: 0, total: texts.length, unit: 'concepts' });
    for (let c = 0; c < nTextChunks; c++) {
      ctx.signal?.throwIfAborted();
      const chunk = texts.slice(c * textChunkSize, (c + 1) * textChunkSize);
      const parts = textParts(chunk);
      const m = await cache.getOrCompute(
        cacheKey(parts),
        'text',
        async () => {
          textComputed++;
          enc ??= await openClipTower(i.clip, 'text', ctx);
          // onnxruntime takes every core here: the image workers wait (they run while sessions open)
          i.pause?.pause();
          let e: Awaited<ReturnType<ClipEncoder['encodeText']>>;
          try {
            e = await enc.encodeText(chunk);
          } finally {
            i.pause?.resume();
          }
          // counted over the chunks: one warning for the run, after the last chunk
          truncated.count += e.truncated.length;
          if (e.truncated.length && truncated.first === undefined) truncated.first = chunk[e.truncated[0]];
          truncated.contextLength = enc.contextLength;
          return { rows: e.rows, cols: e.cols, data: e.data };
        },
        parts,
      );
      d = m.cols;
      textChunks.push(m);
      ctx.progress?.({
        stage: 'text features',
        done: Math.min(texts.length, (c + 1) * textChunkSize),
        total: texts.length,
        unit: 'concepts',
      });
    }
    if (truncated.count)
      ctx.warn(
        `${truncated.count} concept text${truncated.count === 1 ? ' was' : 's were'} longer than CLIP's ${truncated.contextLength} tokens and cut (first: ${JSON.stringify(truncated.first)})`,
      );
    const features: Matrix = { rows: texts.length, cols: d, data: new Float32Array(texts.length * d) };
    let off = 0;
    for (const m of textChunks) {
      features.data.set(m.data, off);
      off += m.data.length;
    }
    textChunks.length = 0;
    checkFinite(
      features,
      `CLIP text features computed by ${i.clip.id}`,
      (r) => `concept ${JSON.stringify(texts[r])}`,
    );
    await (enc as ClipEncoder | null)?.release();
    enc = null;
    ctx.time('textFeatures', performance.now() - t);
    return { features, chunks: { computed: textComputed, total: nTextChunks } };
  } finally {
    await (enc as ClipEncoder | null)?.release();
  }
}
