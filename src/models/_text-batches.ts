/**
 * Tokenizing a list of texts for a text encoder and cutting it into length buckets. Internal; shared by the
 * CLIP text tower and the sentence encoder.
 */
import { ArgumentError } from '../numeric/errors.js';

export interface TokenizedTexts {
  /** Token ids of each text, in input order. */
  tokens: number[][];
  /** Indices of the texts that were cut to the model's length. */
  truncated: number[];
}

/** Validates `texts` and `batchSize` and tokenizes every text (errors name the offending index). */
export function tokenizeTexts(
  texts: readonly string[],
  batchSize: number,
  encode: (text: string) => { ids: number[]; truncated: boolean },
): TokenizedTexts {
  if (!Array.isArray(texts))
    throw new ArgumentError(`'texts' must be an array of strings but got ${typeof texts}`);
  if (!(Number.isInteger(batchSize) && batchSize >= 1))
    throw new ArgumentError(`'batchSize' must be a positive integer but got ${batchSize}`);
  const tokens: number[][] = new Array(texts.length);
  const truncated: number[] = [];
  for (let i = 0; i < texts.length; i++) {
    if (typeof texts[i] !== 'string')
      throw new ArgumentError(`texts[${i}] must be a string but got ${typeof texts[i]}`);
    const t = encode(texts[i]);
    tokens[i] = t.ids;
    if (t.truncated) truncated.push(i);
  }
  return { tokens, truncated };
}

/**
 * The order in which to encode: shortest first (stable), so that each batch is padded only to its own longest
 * text; input order when every text is padded to one length anyway.
 */
export function lengthOrder(tokens: readonly number[][], bucket: boolean): number[] {
  const order = Array.from({ length: tokens.length }, (_, i) => i);
  if (bucket) order.sort((a, b) => tokens[a].length - tokens[b].length || a - b);
  return order;
}
