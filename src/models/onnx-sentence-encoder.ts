import { platform } from '#platform';
import { ArgumentError, ClipDissectError, formatChoices, ShapeError } from '../numeric/errors.js';
import type { ProgressCallback, RunHooks } from '../progress.js';
import {
  checkDeviceOption,
  checkThreads,
  createSession,
  type Device,
  floatTensorValues,
  type InferenceSession,
  Tensor,
} from '../runtime/index.js';
import { ClipTokenizer } from './_clip-tokenizer.js';
import { type HubOptions, resolveModelFiles } from './_hub.js';
import { checkDevice } from './_onnx-graph-edit.js';
import { hubOptionsWith, openUnder } from './_open-hooks.js';
import { lengthOrder, tokenizeTexts } from './_text-batches.js';
import { readModelJson } from './onnx-clip-encoder.js';
import type { EncodeSentencesOptions, SentenceEmbeddings, SentenceEncoder } from './sentence-encoder.js';

/** The sentence encoder of the paper's evaluation, exported by Xenova for transformers.js. */
export const DEFAULT_SENTENCE_MODEL = 'Xenova/all-mpnet-base-v2';
/** sentence-transformers' max_seq_length of all-mpnet-base-v2. */
const DEFAULT_SENTENCE_MAX_LENGTH = 384;
const DEFAULT_BATCH = 64;
/** Which ONNX weights of a sentence encoder: the hub's files (the CLIP towers' in-memory 'int8' is not offered). */
export type SentenceDtype = 'fp32' | 'fp16' | 'q8';
const SENTENCE_DTYPES: readonly SentenceDtype[] = ['fp32', 'fp16', 'q8'];
const DTYPE_SUFFIX: Readonly<Record<SentenceDtype, string>> = { fp32: '', fp16: '_fp16', q8: '_quantized' };
const INPUTS = ['input_ids', 'attention_mask', 'token_type_ids'];

export interface OnnxSentenceEncoderOptions extends HubOptions {
  /** Which ONNX weights: 'fp32' (`model.onnx`, default), 'fp16', 'q8' (`model_quantized.onnx`). */
  dtype?: SentenceDtype;
  /** Tokens per text at most, start and end tokens included (default 384). */
  maxLength?: number;
  device?: Device;
  /** onnxruntime intra-op threads; default: all cores. */
  threads?: number;
  /** @deprecated Pass `onProgress` in the hooks, the third argument of {@link createOnnxSentenceEncoder}. */
  onProgress?: ProgressCallback;
}

/** The files of a sentence-encoder folder for a dtype, relative to the folder (downloaded in this order). */
function sentenceModelFiles(dtype: SentenceDtype = 'fp32'): string[] {
  return ['config.json', 'tokenizer.json', 'tokenizer_config.json', `onnx/model${DTYPE_SUFFIX[dtype]}.onnx`];
}

function tokenString(v: unknown): string | undefined {
  if (typeof v === 'string') return v;
  if (v !== null && typeof v === 'object' && typeof (v as Record<string, unknown>)['content'] === 'string')
    return (v as Record<string, string>)['content'];
  return undefined;
}

interface Parts {
  modelId: string;
  path: string;
  session: InferenceSession;
  tokenizer: ClipTokenizer;
  padId: number;
  embedDim: number;
  maxLength: number;
  hasTokenTypes: boolean;
  output: string;
}

export class OnnxSentenceEncoder implements SentenceEncoder {
  readonly modelId: string;
  readonly embedDim: number;
  readonly maxLength: number;
  private readonly p: Parts;
  private released = false;

  /** Use {@link createOnnxSentenceEncoder}. */
  constructor(parts: Parts) {
    this.p = parts;
    this.modelId = parts.modelId;
    this.embedDim = parts.embedDim;
    this.maxLength = parts.maxLength;
  }

  /** Token ids of one text as the model sees them (start and end tokens, cut to maxLength). */
  tokenize(text: string): { ids: number[]; truncated: boolean } {
    return this.p.tokenizer.encode(text);
  }

  async encode(texts: readonly string[], options: EncodeSentencesOptions = {}): Promise<SentenceEmbeddings> {
    if (this.released)
      throw new ClipDissectError('ERR_RELEASED', `the sentence encoder ${this.modelId} was released`);
    const batchSize = options.batchSize ?? DEFAULT_BATCH;
    const { tokens, truncated } = tokenizeTexts(texts, batchSize, (t) => this.p.tokenizer.encode(t));
    const m = texts.length;
    const d = this.embedDim;
    const order = lengthOrder(tokens, true);
    const out = new Float32Array(m * d);
    const stage = 'sentence embeddings';
    options.onProgress?.({ stage, done: 0, total: m, unit: 'texts' });
    for (let start = 0; start < m; start += batchSize) {
      options.signal?.throwIfAborted();
      const idx = order.slice(start, start + batchSize);
      const n = idx.length;
      let len = 1;
      for (const i of idx) len = Math.max(len, tokens[i].length);
      const ids = new BigInt64Array(n * len).fill(BigInt(this.p.padId));
      const mask = new BigInt64Array(n * len);
      for (let r = 0; r < n; r++) {
        const row = tokens[idx[r]];
        for (let c = 0; c < row.length; c++) {
          ids[r * len + c] = BigInt(row[c]);
          mask[r * len + c] = 1n;
        }
      }
      const feeds: Record<string, Tensor> = {
        input_ids: new Tensor('int64', ids, [n, len]),
        attention_mask: new Tensor('int64', mask, [n, len]),
      };
      if (this.p.hasTokenTypes)
        feeds['token_type_ids'] = new Tensor('int64', new BigInt64Array(n * len), [n, len]);
      const h = await this.run(feeds, n, len);
      // mean over the attention mask (float64 sums), then L2 normalisation
      const acc = new Float64Array(d);
      for (let r = 0; r < n; r++) {
        acc.fill(0);
        const count = tokens[idx[r]].length;
        for (let c = 0; c < count; c++) {
          const o = (r * len + c) * d;
          for (let j = 0; j < d; j++) acc[j] += h[o + j];
        }
        let ss = 0;
        for (let j = 0; j < d; j++) {
          acc[j] /= Math.max(count, 1e-9);
          ss += acc[j] * acc[j];
        }
        const norm = Math.max(Math.sqrt(ss), 1e-12); // torch.nn.functional.normalize's eps
        const o = idx[r] * d;
        for (let j = 0; j < d; j++) out[o + j] = acc[j] / norm;
      }
      options.onProgress?.({ stage, done: Math.min(start + n, m), total: m, unit: 'texts' });
    }
    return { rows: m, cols: d, data: out, truncated };
  }

  private async run(feeds: Record<string, Tensor>, n: number, len: number): Promise<Float32Array> {
    const { session, path, output, embedDim } = this.p;
    let res: InferenceSession.ReturnType;
    try {
      res = await session.run(feeds, [output]);
    } catch (e) {
      throw new ClipDissectError(
        'ERR_MODEL_RUN',
        `onnxruntime failed on ${path} with input_ids [${n}, ${len}]: ${((e as Error).message ?? String(e)).trim()}`,
        { cause: e },
      );
    }
    const t = res[output];
    try {
      if (t.dims.length !== 3 || t.dims[0] !== n || t.dims[1] !== len || t.dims[2] !== embedDim)
        throw new ShapeError(
          `${path}: output '${output}' has shape [${t.dims.join(', ')}] but [${n}, ${len}, ${embedDim}] (batch × tokens × hidden size) was expected`,
        );
      const values = floatTensorValues(t);
      if (values !== null) return values;
      throw new ClipDissectError(
        'ERR_MODEL_CONFIG',
        `${path}: output '${output}' has type ${t.type} but float32 or float16 was expected`,
      );
    } finally {
      t.dispose();
    }
  }

  async release(): Promise<void> {
    if (this.released) return;
    this.released = true;
    await this.p.session.release();
  }

  async [Symbol.asyncDispose](): Promise<void> {
    await this.release();
  }
}

/**
 * Opens a sentence encoder: a folder in the transformers.js layout, or a Hugging Face hub id (default
 * 'Xenova/all-mpnet-base-v2'), downloaded into `<cacheDir>/models/<id>/` on first use (`offline` forbids
 * that). Errors are ClipDissectErrors: 'ERR_MODEL_FILES', 'ERR_OFFLINE', 'ERR_MODEL_DOWNLOAD',
 * 'ERR_MODEL_CONFIG', 'ERR_MODEL_SESSION', 'ERR_CUDA_UNAVAILABLE'; ArgumentError for bad options.
 * Hooks: `onProgress` hears the downloads (bytes, one stage per file); `signal` stops a download or the
 * opening between its steps, and the promise rejects with the signal's reason.
 */
export async function createOnnxSentenceEncoder(
  idOrDir: string = DEFAULT_SENTENCE_MODEL,
  options: OnnxSentenceEncoderOptions = {},
  hooks: RunHooks = {},
): Promise<OnnxSentenceEncoder> {
  if (options.dtype !== undefined && !SENTENCE_DTYPES.includes(options.dtype))
    throw new ArgumentError(`'dtype' must be ${formatChoices(SENTENCE_DTYPES)} but got '${options.dtype}'`);
  checkDeviceOption(options.device);
  checkThreads(options.threads);
  const maxLength = options.maxLength ?? DEFAULT_SENTENCE_MAX_LENGTH;
  if (!(Number.isInteger(maxLength) && maxLength >= 2))
    throw new ArgumentError(`'maxLength' must be an integer >= 2 but got ${options.maxLength}`);
  return openUnder(hooks.signal, () => openSentenceEncoder(idOrDir, options, maxLength, hooks));
}

async function openSentenceEncoder(
  idOrDir: string,
  options: OnnxSentenceEncoderOptions,
  maxLength: number,
  hooks: RunHooks,
): Promise<OnnxSentenceEncoder> {
  const files = sentenceModelFiles(options.dtype ?? 'fp32');
  const { dir, hubId } = await resolveModelFiles(
    idOrDir,
    files,
    hubOptionsWith({ modelKind: 'sentence-encoder', ...options }, hooks),
  );
  const [configPath, tokPath, tokCfgPath, modelPath] = files.map((f) => platform.paths.join(dir, f));
  const config = await readModelJson(configPath);
  const tokenizerConfig = await readModelJson(tokCfgPath);
  const tokenizerJson = await readModelJson(tokPath);
  // the model's own limit (tokenizer_config's model_max_length; transformers writes 1e30 for "none")
  const mml = tokenizerConfig['model_max_length'];
  const limit =
    Number.isInteger(mml) && (mml as number) >= 2 && (mml as number) < 1e6 ? (mml as number) : Infinity;
  const length = Math.min(maxLength, limit);
  const tokenizer = new ClipTokenizer(
    tokenizerJson,
    tokenizerConfig,
    (tokenId) => {
      const pad = tokenString(tokenizerConfig['pad_token']);
      const padId =
        (pad === undefined ? undefined : tokenId(pad)) ??
        (Number.isInteger(config['pad_token_id']) ? (config['pad_token_id'] as number) : 0);
      return { contextLength: length, padding: 'longest', padId, clean: false };
    },
    tokPath,
  );
  const hidden = config['hidden_size'];

  await checkDevice(
    { device: options.device ?? 'cpu', threads: options.threads },
    `sentence encoder ${idOrDir}`,
  );
  hooks.signal?.throwIfAborted();
  const session = await createSession(
    modelPath,
    { device: options.device ?? 'cpu', threads: options.threads },
    modelPath,
  );
  try {
    const inputs = session.inputNames;
    const unknown = inputs.filter((n) => !INPUTS.includes(n));
    if (!inputs.includes('input_ids') || !inputs.includes('attention_mask') || unknown.length > 0)
      throw new ClipDissectError(
        'ERR_MODEL_CONFIG',
        `${modelPath}: a sentence encoder takes 'input_ids' and 'attention_mask' (and optionally 'token_type_ids') but this one takes ${formatChoices(inputs)}`,
      );
    const output = session.outputNames.includes('last_hidden_state')
      ? 'last_hidden_state'
      : session.outputNames.includes('token_embeddings')
        ? 'token_embeddings'
        : undefined;
    if (output === undefined)
      throw new ClipDissectError(
        'ERR_MODEL_CONFIG',
        `${modelPath}: a sentence encoder gives the token states 'last_hidden_state' (or 'token_embeddings') but this one gives ${formatChoices(session.outputNames)}`,
      );
    const meta = session.outputMetadata.find((m) => m.name === output);
    const declared = meta?.isTensor ? meta.shape[2] : undefined;
    const embedDim =
      typeof declared === 'number' && declared > 0
        ? declared
        : Number.isInteger(hidden) && (hidden as number) > 0
          ? (hidden as number)
          : undefined;
    if (embedDim === undefined)
      throw new ClipDissectError(
        'ERR_MODEL_CONFIG',
        `${configPath}: cannot tell the hidden size (no hidden_size, and ${modelPath} declares none)`,
      );
    return new OnnxSentenceEncoder({
      modelId: hubId ?? idOrDir,
      path: modelPath,
      session,
      tokenizer,
      padId: tokenizer.spec.padId,
      embedDim,
      maxLength: length,
      hasTokenTypes: inputs.includes('token_type_ids'),
      output,
    });
  } catch (e) {
    await session.release();
    throw e;
  }
}
