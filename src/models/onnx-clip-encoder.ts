/**
 * A CLIP encoder from ONNX files in the transformers.js (Xenova) layout, run with onnxruntime-node:
 *
 *     config.json, tokenizer.json, tokenizer_config.json, preprocessor_config.json,
 *     onnx/text_model{,_fp16,_quantized}.onnx     input_ids int64 [B, L] (+ attention_mask) -> text_embeds [B, d]
 *     onnx/vision_model{,_fp16,_quantized}.onnx   pixel_values float32 [B, 3, H, W]          -> image_embeds [B, d]
 *
 * from a local folder, or from the Hugging Face hub (downloaded and cached on first use, see ./_hub.ts).
 *
 * Text encoding (CLIP): CLIP's text transformer is causal and pools at the end-of-text token, so tokens after it
 * cannot change the embedding. Texts are therefore sorted by token count and batched, and each batch is padded
 * only to its longest sequence instead of to 77 tokens; rows are returned in input order. The equivalence with
 * 77-token padding is tested on the fixture model.
 *
 * SigLIP (`model_type` 'siglip'): texts are padded to the context length (SigLIP pools the last position), the
 * outputs may be named `pooler_output`, and the embedding size is the text hidden size. Tested only on the
 * configuration logic, not on a real SigLIP export.
 */

import { platform } from '#platform';
import { int8WeightMax } from '../compute/_cpu-features.js';
import { type PreprocessConfig, preprocessorConfigFromHF, preprocessShape } from '../data/preprocess.js';
import { readJson } from '../io/files.js';
import { ArgumentError, ClipDissectError, formatChoices, ShapeError } from '../numeric/errors.js';
import type { Matrix } from '../numeric/matrix.js';
import type { ProgressCallback, RunHooks } from '../progress.js';
import {
  checkDeviceOption,
  checkThreads,
  createSession,
  type Device,
  floatTensor,
  floatTensorValues,
  type InferenceSession,
  Tensor,
} from '../runtime/index.js';
import { ClipTokenizer, type ClipTokenizerSpec, tokenizerSpec } from './_clip-tokenizer.js';
import { type HubOptions, resolveModelFiles } from './_hub.js';
import { checkDevice } from './_onnx-graph-edit.js';
import { hubOptionsWith, openUnder } from './_open-hooks.js';
import { int8TowerBytes } from './_quantize-int8.js';
import { checkRunBatchSize, runBatchFor } from './_run-batch.js';
import { lengthOrder, tokenizeTexts } from './_text-batches.js';
import type { ClipEncoder, EncodeTextOptions, TextEmbeddings } from './clip-encoder.js';

/**
 * Weights to load: fp32 (`text_model.onnx`), fp16 (`text_model_fp16.onnx`), 8-bit (`text_model_quantized.onnx`),
 * or int8: the fp32 files with their MatMul weights quantized to signed int8 per column at load time (no extra
 * files; see ./_quantize-int8.ts). fp32 is the reference; the others are opt-in approximations.
 */
export type ClipDtype = 'fp32' | 'fp16' | 'q8' | 'int8';
export const CLIP_DTYPES: readonly ClipDtype[] = ['fp32', 'fp16', 'q8', 'int8'];

/**
 * How CLIP's images are cropped: 'openai' (default) as OpenAI's `clip.load` and the official CLIP-Dissect code
 * do (torchvision's CenterCrop, the offset of an odd overhang rounded half to even), 'hf' as transformers'
 * CLIPImageProcessor (rounded down: one pixel off where torchvision rounds up). Both read the sizes, filter,
 * mean and std from the model folder's preprocessor_config.json.
 */
export type ClipPreprocess = 'openai' | 'hf';
export const CLIP_PREPROCESS_CHOICES: readonly ClipPreprocess[] = ['openai', 'hf'];

/** The crop rounding of a {@link ClipPreprocess} choice (src/data/preprocess.ts `cropRounding`). */
export function clipCropRounding(choice: ClipPreprocess = 'openai'): 'round' | 'floor' {
  if (!CLIP_PREPROCESS_CHOICES.includes(choice))
    throw new ArgumentError(
      `'clipPreprocess' must be ${formatChoices(CLIP_PREPROCESS_CHOICES)} but got ${JSON.stringify(choice)}`,
    );
  return choice === 'hf' ? 'floor' : 'round';
}
const DTYPE_SUFFIX: Readonly<Record<ClipDtype, string>> = {
  fp32: '',
  fp16: '_fp16',
  q8: '_quantized',
  int8: '',
};

/** The model of the paper's experiments (ViT-B/16), exported by Xenova for transformers.js. */
export const DEFAULT_CLIP_MODEL = 'Xenova/clip-vit-base-patch16';
const DEFAULT_TEXT_BATCH = 256;

export interface OnnxClipEncoderOptions extends HubOptions {
  /** Which ONNX weights (default 'fp32'). */
  dtype?: ClipDtype;
  /** Execution provider; 'cuda' needs onnxruntime-node's CUDA build. Default 'cpu'. */
  device?: Device;
  /** onnxruntime intra-op threads per session; default: all cores. */
  threads?: number;
  /**
   * Images per onnxruntime run of the vision tower: encodeImages splits bigger batches. Default 8 on the CPU
   * (bigger runs are slower there: activations fall out of the caches), the whole batch on CUDA.
   */
  runBatchSize?: number;
  /**
   * Which towers get an onnxruntime session: 'both' (default), or only 'text' / 'vision' (the other's
   * encode method then throws 'ERR_NO_TOWER'). A caller that encodes the concepts first and the images after
   * can release a text-only encoder before opening a vision-only one, whose session then reuses the freed
   * memory: opening the ViT-B/16 vision tower took 1.7 s instead of 3.5 s on the 2-vCPU machine.
   */
  towers?: ClipTowers;
  /** CLIP's image preprocessing semantics (see {@link ClipPreprocess}); default 'openai'. */
  clipPreprocess?: ClipPreprocess;
  /** @deprecated Pass `onProgress` in the hooks, the third argument of {@link createOnnxClipEncoder}. */
  onProgress?: ProgressCallback;
}

export type ClipTowers = 'both' | 'text' | 'vision';
const CLIP_TOWERS: readonly ClipTowers[] = ['both', 'text', 'vision'];

type ModelType = 'clip' | 'siglip';

/**
 * The dtype as cache keys must see it: int8 towers quantize to ±127 or ±63 by CPU (compute/_cpu-features.ts),
 * so their features differ between machines.
 */
export function clipDtypeKey(dtype: ClipDtype): string {
  return dtype === 'int8' ? `int8-q${int8WeightMax()}` : dtype;
}

/** The files of a model folder for a dtype, relative to the folder (downloaded in this order). */
export function clipModelFiles(dtype: ClipDtype = 'fp32'): string[] {
  const s = DTYPE_SUFFIX[dtype];
  return [
    'config.json',
    'tokenizer.json',
    'tokenizer_config.json',
    'preprocessor_config.json',
    `onnx/text_model${s}.onnx`,
    `onnx/vision_model${s}.onnx`,
  ];
}

/** A model folder's JSON object file; ClipDissectErrors name the file. */
export async function readModelJson(path: string): Promise<Record<string, unknown>> {
  const json = await readJson(path, (kind, e) =>
    kind === 'read'
      ? new ClipDissectError('ERR_MODEL_FILES', `cannot read ${path}: ${e.message}`, { cause: e })
      : new ClipDissectError('ERR_MODEL_CONFIG', `${path} is not valid JSON: ${e.message}`, { cause: e }),
  );
  if (json === null || typeof json !== 'object' || Array.isArray(json))
    throw new ClipDissectError('ERR_MODEL_CONFIG', `${path}: expected a JSON object`);
  return json as Record<string, unknown>;
}

function checkOptions(options: OnnxClipEncoderOptions): void {
  if (options.dtype !== undefined && !CLIP_DTYPES.includes(options.dtype))
    throw new ArgumentError(`'dtype' must be ${formatChoices(CLIP_DTYPES)} but got '${options.dtype}'`);
  clipCropRounding(options.clipPreprocess);
  checkDeviceOption(options.device);
  checkThreads(options.threads);
  checkRunBatchSize(options.runBatchSize);
  if (options.towers !== undefined && !CLIP_TOWERS.includes(options.towers))
    throw new ArgumentError(`'towers' must be ${formatChoices(CLIP_TOWERS)} but got '${options.towers}'`);
}

// ---------------------------------------------------------------------------------------------------------
// sessions

interface TowerIO {
  readonly session: InferenceSession;
  readonly path: string;
  /** The input that carries token ids or pixels, and its element type. */
  readonly input: string;
  readonly inputType: string;
  /** For the text tower: the attention_mask input and its type, when the export takes one. */
  readonly mask?: { name: string; type: string };
  readonly output: string;
}

function tensorMeta(meta: readonly InferenceSession.ValueMetadata[], name: string) {
  const m = meta.find((x) => x.name === name);
  return m?.isTensor ? m : undefined;
}

async function openTower(
  path: string,
  tower: 'text' | 'vision',
  options: OnnxClipEncoderOptions,
): Promise<TowerIO> {
  const model = options.dtype === 'int8' ? (await int8TowerBytes(path, int8WeightMax())).bytes : undefined;
  const session = await createSession(
    model ?? path,
    { device: options.device ?? 'cpu', threads: options.threads },
    path,
  );
  try {
    const inputs = session.inputNames;
    const outputs = session.outputNames;
    const want = tower === 'text' ? 'input_ids' : 'pixel_values';
    const known = tower === 'text' ? ['input_ids', 'attention_mask'] : ['pixel_values'];
    const unknown = inputs.filter((n) => !known.includes(n));
    if (!inputs.includes(want) || unknown.length > 0)
      throw new ClipDissectError(
        'ERR_MODEL_CONFIG',
        `${path}: a CLIP ${tower} model takes ${formatChoices(known)} but this one takes ${formatChoices(inputs)}`,
      );
    const outName = [tower === 'text' ? 'text_embeds' : 'image_embeds', 'pooler_output'].find((n) =>
      outputs.includes(n),
    );
    if (outName === undefined)
      throw new ClipDissectError(
        'ERR_MODEL_CONFIG',
        `${path}: a CLIP ${tower} model gives '${tower === 'text' ? 'text_embeds' : 'image_embeds'}' (or 'pooler_output') but this one gives ${formatChoices(outputs)}; export the model with its projection (e.g. CLIP${tower === 'text' ? 'Text' : 'Vision'}ModelWithProjection)`,
      );
    const inMeta = tensorMeta(session.inputMetadata, want);
    const inputType = inMeta?.type ?? (tower === 'text' ? 'int64' : 'float32');
    const okTypes = tower === 'text' ? ['int64', 'int32'] : ['float32', 'float16'];
    if (!okTypes.includes(inputType))
      throw new ClipDissectError(
        'ERR_MODEL_CONFIG',
        `${path}: input '${want}' has type ${inputType} but ${formatChoices(okTypes)} was expected`,
      );
    const maskMeta = inputs.includes('attention_mask')
      ? tensorMeta(session.inputMetadata, 'attention_mask')
      : undefined;
    const mask = inputs.includes('attention_mask')
      ? { name: 'attention_mask', type: maskMeta?.type ?? 'int64' }
      : undefined;
    return { session, path, input: want, inputType, output: outName, ...(mask ? { mask } : {}) };
  } catch (e) {
    await session.release();
    throw e;
  }
}

/** Runs one tower; returns its B×d output as float32. */
async function runTower(
  tower: TowerIO,
  feeds: Record<string, Tensor>,
  batch: number,
  embedDim: number,
): Promise<Float32Array> {
  let res: InferenceSession.ReturnType;
  try {
    res = await tower.session.run(feeds, [tower.output]);
  } catch (e) {
    const shapes = Object.entries(feeds)
      .map(([k, t]) => `${k} [${t.dims.join(', ')}]`)
      .join(', ');
    throw new ClipDissectError(
      'ERR_MODEL_RUN',
      `onnxruntime failed on ${tower.path} with ${shapes}: ${((e as Error).message ?? String(e)).trim()}`,
      { cause: e },
    );
  }
  const t = res[tower.output];
  try {
    if (t.dims.length !== 2 || t.dims[0] !== batch || t.dims[1] !== embedDim)
      throw new ShapeError(
        `${tower.path}: output '${tower.output}' has shape [${t.dims.join(', ')}] but [${batch}, ${embedDim}] (batch × embedding size) was expected`,
      );
    const values = floatTensorValues(t);
    if (values !== null) return values;
    throw new ClipDissectError(
      'ERR_MODEL_CONFIG',
      `${tower.path}: output '${tower.output}' has type ${t.type} but float32 or float16 was expected`,
    );
  } finally {
    t.dispose();
  }
}

// ---------------------------------------------------------------------------------------------------------

interface EncoderParts {
  modelId: string;
  modelType: ModelType;
  embedDim: number;
  preprocess: PreprocessConfig;
  tokenizer: ClipTokenizer;
  text: TowerIO | null;
  vision: TowerIO | null;
  /** Images per vision run. */
  runBatch: number;
}

export class OnnxClipEncoder implements ClipEncoder {
  readonly modelId: string;
  readonly embedDim: number;
  readonly contextLength: number;
  readonly preprocess: PreprocessConfig;
  readonly imageShape: readonly [number, number, number];
  /** 'clip' or 'siglip' (config.json's model_type). */
  readonly modelType: ModelType;
  /** How texts are tokenized and padded. */
  readonly tokenizerSpec: ClipTokenizerSpec;
  private readonly tokenizer: ClipTokenizer;
  private readonly textTower: TowerIO | null;
  private readonly visionTower: TowerIO | null;
  private readonly runBatch: number;
  private released = false;

  /** Use {@link createOnnxClipEncoder}. */
  constructor(parts: EncoderParts) {
    this.modelId = parts.modelId;
    this.modelType = parts.modelType;
    this.embedDim = parts.embedDim;
    this.preprocess = parts.preprocess;
    this.imageShape = preprocessShape(parts.preprocess);
    this.tokenizer = parts.tokenizer;
    this.tokenizerSpec = parts.tokenizer.spec;
    this.contextLength = parts.tokenizer.spec.contextLength;
    this.textTower = parts.text;
    this.visionTower = parts.vision;
    this.runBatch = parts.runBatch;
  }

  private checkLive(): void {
    if (this.released)
      throw new ClipDissectError('ERR_RELEASED', `the CLIP encoder ${this.modelId} was released`);
  }

  private tower(which: 'text' | 'vision'): TowerIO {
    const t = which === 'text' ? this.textTower : this.visionTower;
    if (!t)
      throw new ClipDissectError(
        'ERR_NO_TOWER',
        `the CLIP encoder ${this.modelId} was opened without its ${which} tower (towers: '${which === 'text' ? 'vision' : 'text'}'); open it with towers '${which}' or 'both' to encode ${which === 'text' ? 'texts' : 'images'}`,
      );
    return t;
  }

  /** Token ids of one text as the model sees them (start and end tokens, cut to the context length). */
  tokenize(text: string): { ids: number[]; truncated: boolean } {
    return this.tokenizer.encode(text);
  }

  async encodeText(texts: readonly string[], options: EncodeTextOptions = {}): Promise<TextEmbeddings> {
    this.checkLive();
    const tower = this.tower('text');
    const batchSize = options.batchSize ?? DEFAULT_TEXT_BATCH;
    const { tokens, truncated } = tokenizeTexts(texts, batchSize, (t) => this.tokenizer.encode(t));
    const m = texts.length;
    const d = this.embedDim;
    const spec = this.tokenizer.spec;
    const order = lengthOrder(tokens, spec.padding === 'longest');
    const out = new Float32Array(m * d);
    const total = m;
    options.onProgress?.({ stage: 'text features', done: 0, total, unit: 'texts' });
    for (let start = 0; start < m; start += batchSize) {
      this.checkLive();
      options.signal?.throwIfAborted();
      const idx = order.slice(start, start + batchSize);
      const n = idx.length;
      let len = spec.contextLength;
      if (spec.padding === 'longest') {
        len = 0;
        for (const i of idx) len = Math.max(len, tokens[i].length);
      }
      const int32 = tower.inputType === 'int32';
      const ids = int32 ? new Int32Array(n * len) : new BigInt64Array(n * len);
      const mask = tower.mask ? new Float64Array(n * len) : undefined;
      for (let r = 0; r < n; r++) {
        const row = tokens[idx[r]];
        for (let c = 0; c < len; c++) {
          const v = c < row.length ? row[c] : spec.padId;
          if (int32) (ids as Int32Array)[r * len + c] = v;
          else (ids as BigInt64Array)[r * len + c] = BigInt(v);
          if (mask && c < row.length) mask[r * len + c] = 1;
        }
      }
      const feeds: Record<string, Tensor> = {
        [tower.input]: int32
          ? new Tensor('int32', ids as Int32Array, [n, len])
          : new Tensor('int64', ids as BigInt64Array, [n, len]),
      };
      if (tower.mask && mask) feeds[tower.mask.name] = maskTensor(tower.mask.type, mask, [n, len]);
      const emb = await runTower(tower, feeds, n, d);
      for (let r = 0; r < n; r++) out.set(emb.subarray(r * d, (r + 1) * d), idx[r] * d);
      options.onProgress?.({ stage: 'text features', done: Math.min(start + n, m), total, unit: 'texts' });
    }
    return { rows: m, cols: d, data: out, truncated };
  }

  async encodeImages(batchNCHW: Float32Array, batchSize: number): Promise<Matrix> {
    this.checkLive();
    const tower = this.tower('vision');
    const [c, h, w] = this.imageShape;
    if (!(Number.isInteger(batchSize) && batchSize >= 1))
      throw new ArgumentError(`'batchSize' must be a positive integer but got ${batchSize}`);
    if (!(batchNCHW instanceof Float32Array) || batchNCHW.length !== batchSize * c * h * w)
      throw new ShapeError(
        `encodeImages: the batch must be a Float32Array of ${batchSize}×${c}×${h}×${w} = ${batchSize * c * h * w} values (NCHW, preprocessed with the encoder's 'preprocess') but got ${
          batchNCHW instanceof Float32Array ? `${batchNCHW.length}` : typeof batchNCHW
        }`,
      );
    const per = c * h * w;
    const d = this.embedDim;
    const data = new Float32Array(batchSize * d);
    for (let start = 0; start < batchSize; start += this.runBatch) {
      this.checkLive();
      const n = Math.min(this.runBatch, batchSize - start);
      const x = batchNCHW.subarray(start * per, (start + n) * per);
      const dims = [n, c, h, w];
      const tensor = floatTensor(tower.inputType === 'float16' ? 'float16' : 'float32', x, dims);
      data.set(await runTower(tower, { [tower.input]: tensor }, n, d), start * d);
    }
    return { rows: batchSize, cols: d, data };
  }

  async release(): Promise<void> {
    if (this.released) return;
    this.released = true;
    await Promise.all([this.textTower?.session.release(), this.visionTower?.session.release()]);
  }

  async [Symbol.asyncDispose](): Promise<void> {
    await this.release();
  }
}

function maskTensor(type: string, mask: Float64Array, dims: number[]): Tensor {
  switch (type) {
    case 'int32':
      return new Tensor('int32', Int32Array.from(mask), dims);
    case 'float32':
      return new Tensor('float32', Float32Array.from(mask), dims);
    case 'bool':
      return new Tensor('bool', Uint8Array.from(mask), dims);
    default:
      return new Tensor(
        'int64',
        BigInt64Array.from(mask, (v) => BigInt(v)),
        dims,
      );
  }
}

/** The embedding size d from config.json, or undefined when it does not say. */
function configEmbedDim(modelType: ModelType, config: Record<string, unknown>): number | undefined {
  const v =
    modelType === 'clip'
      ? (config['projection_dim'] ?? 512)
      : ((config['text_config'] as Record<string, unknown> | undefined)?.['hidden_size'] ?? 768);
  return Number.isInteger(v) && (v as number) >= 1 ? (v as number) : undefined;
}

/** The static embedding size of a tower's output, when the ONNX file declares it. */
function declaredEmbedDim(tower: TowerIO): number | undefined {
  const m = tensorMeta(tower.session.outputMetadata, tower.output);
  const dim = m?.shape?.[1];
  return typeof dim === 'number' && dim > 0 ? dim : undefined;
}

/**
 * Opens a CLIP model: a folder in the transformers.js layout, or a Hugging Face hub id (default
 * 'Xenova/clip-vit-base-patch16'), downloaded into `<cacheDir>/models/<id>/` on first use (`offline` forbids
 * that). Errors are ClipDissectErrors: 'ERR_MODEL_FILES' (a missing file, named with its folder),
 * 'ERR_OFFLINE', 'ERR_MODEL_DOWNLOAD', 'ERR_MODEL_CONFIG', 'ERR_MODEL_SESSION', 'ERR_CUDA_UNAVAILABLE'.
 * Hooks: `onProgress` hears the downloads (bytes, one stage per file); `signal` stops a download or the
 * opening between its steps, and the promise rejects with the signal's reason.
 */
export async function createOnnxClipEncoder(
  idOrDir: string = DEFAULT_CLIP_MODEL,
  options: OnnxClipEncoderOptions = {},
  hooks: RunHooks = {},
): Promise<OnnxClipEncoder> {
  checkOptions(options);
  return openUnder(hooks.signal, () => openClipEncoder(idOrDir, options, hooks));
}

async function openClipEncoder(
  idOrDir: string,
  options: OnnxClipEncoderOptions,
  hooks: RunHooks,
): Promise<OnnxClipEncoder> {
  const signal = hooks.signal;
  const dtype = options.dtype ?? 'fp32';
  const files = clipModelFiles(dtype);
  const { dir, hubId } = await resolveModelFiles(idOrDir, files, hubOptionsWith(options, hooks));
  const [configPath, tokPath, tokCfgPath, prePath, textPath, visionPath] = files.map((f) =>
    platform.paths.join(dir, f),
  );

  const config = await readModelJson(configPath);
  const rawType = config['model_type'];
  const modelType: ModelType | undefined =
    rawType === 'clip' ? 'clip' : rawType === 'siglip' ? 'siglip' : undefined;
  if (modelType === undefined)
    throw new ClipDissectError(
      'ERR_MODEL_CONFIG',
      `${configPath}: model_type ${JSON.stringify(rawType)} is not supported; supported are 'clip' and 'siglip'`,
    );
  const preprocess = preprocessorConfigFromHF(
    await readModelJson(prePath),
    prePath,
    clipCropRounding(options.clipPreprocess),
  );
  const tokenizerJson = await readModelJson(tokPath);
  const tokenizerConfig = await readModelJson(tokCfgPath);
  const tokenizer = new ClipTokenizer(
    tokenizerJson,
    tokenizerConfig,
    (tokenId) => tokenizerSpec(modelType, config, tokenizerConfig, tokenId, configPath),
    tokPath,
  );

  await checkDevice({ device: options.device ?? 'cpu', threads: options.threads }, `CLIP model ${idOrDir}`);
  const towers = options.towers ?? 'both';
  signal?.throwIfAborted();
  const text = towers === 'vision' ? null : await openTower(textPath, 'text', options);
  let vision: TowerIO | null = null;
  try {
    signal?.throwIfAborted();
    if (towers !== 'text') vision = await openTower(visionPath, 'vision', options);
  } catch (e) {
    await text?.session.release();
    throw e;
  }
  try {
    const fromConfig = configEmbedDim(modelType, config);
    const dt = text ? declaredEmbedDim(text) : undefined;
    const dv = vision ? declaredEmbedDim(vision) : undefined;
    const embedDim = dt ?? dv ?? fromConfig;
    if (embedDim === undefined)
      throw new ClipDissectError(
        'ERR_MODEL_CONFIG',
        `${configPath}: cannot tell the embedding size (no projection_dim, and the ONNX outputs declare none)`,
      );
    for (const [what, v] of [
      [textPath, dt],
      [visionPath, dv],
    ] as const) {
      if (v !== undefined && v !== embedDim)
        throw new ClipDissectError(
          'ERR_MODEL_CONFIG',
          `${what}: embeddings of size ${v}, but the other tower gives ${embedDim}; both towers must embed into one space`,
        );
    }
    const shape = preprocessShape(preprocess);
    const vin = vision ? tensorMeta(vision.session.inputMetadata, vision.input)?.shape : undefined;
    if (vin && vin.length === 4) {
      const [, vc, vh, vw] = vin;
      const bad = [vc, vh, vw].some((v, i) => typeof v === 'number' && v !== shape[i]);
      if (bad)
        throw new ClipDissectError(
          'ERR_MODEL_CONFIG',
          `${visionPath} takes pixel_values of [${vin.join(', ')}] but ${prePath} makes images of ${shape.join('×')}`,
        );
    }
    return new OnnxClipEncoder({
      modelId: hubId ?? idOrDir,
      modelType,
      embedDim,
      preprocess,
      tokenizer,
      text,
      vision,
      runBatch: runBatchFor(options.device, options.runBatchSize),
    });
  } catch (e) {
    await Promise.all([text?.session.release(), vision?.session.release()]);
    throw e;
  }
}
