/**
 * A sentence encoder (sentence-transformers style): texts → L2-normalised embeddings whose dot products are
 * cosine similarities. The evaluation uses `all-mpnet-base-v2` to score how close a neuron's label is to its
 * ground truth (paper Sec. 4.2). Runtime types stay inside src/models; everything here is plain data.
 */
import type { Matrix } from '../numeric/matrix.js';
import type { ProgressCallback } from '../progress.js';

export interface EncodeSentencesOptions {
  /** Texts per model run (default 64). Results do not depend on it beyond float rounding. */
  batchSize?: number;
  /** Called after each batch with `{ stage: 'sentence embeddings', done, total, unit: 'texts' }`. */
  onProgress?: ProgressCallback;
  /** Stops before the next batch: the promise rejects with the signal's reason. */
  signal?: AbortSignal;
}

/** Sentence embeddings: M×d, one unit-norm row per input text in input order. */
export interface SentenceEmbeddings extends Matrix {
  /** Indices of the texts longer than `maxLength` tokens, cut to it (as sentence-transformers does). */
  readonly truncated: readonly number[];
}

export interface SentenceEncoder {
  /** The hub id or the folder the model was loaded from. */
  readonly modelId: string;
  /** Embedding size d. */
  readonly embedDim: number;
  /** Tokens per text at most, special tokens included (sentence-transformers' max_seq_length). */
  readonly maxLength: number;
  /** Embeds texts: mean of the token states over the attention mask, L2-normalised; M×d in input order. */
  encode(texts: readonly string[], options?: EncodeSentencesOptions): Promise<SentenceEmbeddings>;
  release(): Promise<void>;
  [Symbol.asyncDispose](): Promise<void>;
}
