/**
 * The CLIP model of CLIP-Dissect: it embeds concept texts and probe images into one space, where their cosine
 * similarities (P = normalise(I)·normalise(T)ᵀ) say how well a concept describes an image. Runtime types stay
 * inside src/models; everything here is plain data.
 */
import type { PreprocessConfig } from '../data/preprocess.js';
import type { Matrix } from '../numeric/matrix.js';
import type { ProgressCallback } from '../progress.js';

export interface EncodeTextOptions {
  /** Texts per model run (default 256). Results do not depend on it. */
  batchSize?: number;
  /** Called after each batch with `{ stage: 'text features', done, total, unit: 'texts' }`. */
  onProgress?: ProgressCallback;
  /** Stops before the next batch: the promise rejects with the signal's reason. */
  signal?: AbortSignal;
}

/** Text embeddings: M×d, one row per input text in input order, not normalised. */
export interface TextEmbeddings extends Matrix {
  /**
   * Indices of the texts that had more tokens than the model's context length and were cut to it, keeping the
   * end token (as `clip.tokenize(..., truncate=True)`; the official CLIP-Dissect calls `clip.tokenize` without
   * `truncate` and fails on such texts instead).
   */
  readonly truncated: readonly number[];
}

/** A CLIP-like image/text encoder. Holds native memory: call `release()` (or use `await using`). */
export interface ClipEncoder {
  /** The hub id or the folder the model was loaded from. */
  readonly modelId: string;
  /** Embedding size d (columns of both encoders' outputs). */
  readonly embedDim: number;
  /** Tokens per text the text encoder takes, start and end tokens included (77 for CLIP). */
  readonly contextLength: number;
  /** The image transform the vision encoder expects (from the model's preprocessor_config.json). */
  readonly preprocess: PreprocessConfig;
  /** Per image: [3, height, width], the shape `encodeImages` takes (the preprocess crop size). */
  readonly imageShape: readonly [number, number, number];
  /** Embeds texts (tokenized as the model's reference tokenizer does): M×d, unnormalised, in input order. */
  encodeText(texts: readonly string[], options?: EncodeTextOptions): Promise<TextEmbeddings>;
  /** Embeds a batch of preprocessed images, NCHW float32 of batchSize×3×H×W: batchSize×d, unnormalised. */
  encodeImages(batchNCHW: Float32Array, batchSize: number): Promise<Matrix>;
  release(): Promise<void>;
  [Symbol.asyncDispose](): Promise<void>;
}
