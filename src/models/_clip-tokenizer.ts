/**
 * Tokenization for CLIP-like text encoders: a Hugging Face `tokenizer.json` run by `@huggingface/tokenizers`,
 * preceded (for OpenAI CLIP's tokenizer) by the reference's text cleaning (./_clip-text-clean.ts), and cut to
 * the model's context length keeping the end token, as `clip.tokenize(..., truncate=True)` does.
 */
import { Tokenizer } from '@huggingface/tokenizers';
import { ClipDissectError } from '../numeric/errors.js';
import { clipCleanText } from './_clip-text-clean.js';

/** How a batch of token sequences is padded: to its longest sequence (CLIP, causal text tower pooled at the
 * end token) or always to the context length (SigLIP, which pools the last position). */
export type TextPadding = 'longest' | 'max_length';

export interface ClipTokenizerSpec {
  /** Tokens per text the model takes, start and end tokens included (CLIP 77, SigLIP 64). */
  readonly contextLength: number;
  readonly padding: TextPadding;
  /** Id written into padded positions. */
  readonly padId: number;
  /** Apply OpenAI CLIP's cleaning (ftfy subset, HTML unescape, whitespace collapse, lower case) first. */
  readonly clean: boolean;
}

export interface TokenizedText {
  readonly ids: number[];
  /** The text had more tokens than the context length and was cut (its end token kept). */
  readonly truncated: boolean;
}

function fail(where: string, message: string): never {
  throw new ClipDissectError('ERR_MODEL_CONFIG', `${where}: ${message}`);
}

function asObject(json: unknown, where: string): Record<string, unknown> {
  if (json === null || typeof json !== 'object' || Array.isArray(json)) fail(where, 'expected a JSON object');
  return json as Record<string, unknown>;
}

/** A token given as a string or as `{ "content": string }` (AddedToken) in tokenizer_config.json. */
function tokenContent(v: unknown): string | undefined {
  if (typeof v === 'string') return v;
  if (v !== null && typeof v === 'object' && typeof (v as Record<string, unknown>)['content'] === 'string')
    return (v as Record<string, string>)['content'];
  return undefined;
}

export class ClipTokenizer {
  private readonly tokenizer: Tokenizer;
  readonly spec: ClipTokenizerSpec;

  /** `spec` may be a function of the token-id lookup (to find the pad token's id). */
  constructor(
    tokenizerJson: unknown,
    tokenizerConfig: unknown,
    spec: ClipTokenizerSpec | ((tokenId: (token: string) => number | undefined) => ClipTokenizerSpec),
    where = 'tokenizer.json',
  ) {
    const json = asObject(tokenizerJson, where);
    if (json['model'] === undefined) fail(where, "has no 'model': not a Hugging Face tokenizer.json");
    try {
      this.tokenizer = new Tokenizer(json, asObject(tokenizerConfig, `${where} (tokenizer_config.json)`));
    } catch (e) {
      throw new ClipDissectError(
        'ERR_MODEL_CONFIG',
        `${where}: @huggingface/tokenizers cannot load it: ${(e as Error).message}`,
        { cause: e },
      );
    }
    this.spec = typeof spec === 'function' ? spec((t) => this.tokenId(t)) : spec;
    if (!(Number.isInteger(this.spec.contextLength) && this.spec.contextLength >= 2))
      fail(where, `the context length must be an integer >= 2 but got ${this.spec.contextLength}`);
  }

  /** The id of a token string, or undefined. */
  tokenId(token: string): number | undefined {
    return this.tokenizer.token_to_id(token);
  }

  /** The ids of one text with the start and end tokens, cut to the context length (end token kept). */
  encode(text: string): TokenizedText {
    const input = this.spec.clean ? clipCleanText(text) : text;
    const ids = this.tokenizer.encode(input).ids;
    const n = this.spec.contextLength;
    if (ids.length <= n) return { ids, truncated: false };
    const cut = ids.slice(0, n);
    cut[n - 1] = ids[ids.length - 1];
    return { ids: cut, truncated: true };
  }
}

/** The tokenizer settings of a model, from its config.json and tokenizer_config.json. */
export function tokenizerSpec(
  modelType: 'clip' | 'siglip',
  config: Record<string, unknown>,
  tokenizerConfig: Record<string, unknown>,
  tokenId: (token: string) => number | undefined,
  where: string,
): ClipTokenizerSpec {
  const text = (config['text_config'] ?? {}) as Record<string, unknown>;
  const lengths: number[] = [];
  const maxPos = text['max_position_embeddings'];
  if (maxPos !== undefined) {
    if (!(Number.isInteger(maxPos) && (maxPos as number) >= 2))
      fail(
        where,
        `text_config.max_position_embeddings must be an integer >= 2 but got ${JSON.stringify(maxPos)}`,
      );
    lengths.push(maxPos as number);
  }
  const mml = tokenizerConfig['model_max_length'];
  // transformers writes a huge sentinel (1e30) when the tokenizer sets no limit.
  if (Number.isInteger(mml) && (mml as number) >= 2 && (mml as number) < 1e6) lengths.push(mml as number);
  const contextLength = lengths.length > 0 ? Math.min(...lengths) : modelType === 'clip' ? 77 : 64;

  const padToken = tokenContent(tokenizerConfig['pad_token']);
  let padId = padToken === undefined ? undefined : tokenId(padToken);
  if (padId === undefined && Number.isInteger(text['pad_token_id'])) padId = text['pad_token_id'] as number;
  if (modelType === 'siglip' && padId === undefined)
    fail(where, 'SigLIP pads every text to its context length, but no pad token is given');
  const cls = tokenizerConfig['tokenizer_class'];
  return {
    contextLength,
    padding: modelType === 'clip' ? 'longest' : 'max_length',
    padId: padId ?? 0,
    clean:
      modelType === 'clip' && (cls === undefined || (typeof cls === 'string' && /^CLIPTokenizer/.test(cls))),
  };
}
