/**
 * The runtime gateway, Node adapter: the one module that imports onnxruntime-node. Every ONNX session of the
 * library (target networks, CLIP towers, the sentence encoder, the compute engine's graphs) is opened by
 * `createSession` with the options of `sessionOptions`, and a model onnxruntime cannot open is reported the
 * same way for all of them ('ERR_MODEL_SESSION', or 'ERR_CUDA_UNAVAILABLE' with one install hint).
 * `runtimeVersions()` gives the native runtimes' versions that results record. Internal: callers use only
 * these exports (a browser build would supply onnxruntime-web behind them).
 */

import { availableParallelism } from 'node:os';
import * as ort from 'onnxruntime-node';
import sharp from 'sharp';
import { ArgumentError, ClipDissectError, formatChoices } from '../numeric/errors.js';
import { float16ToFloat32, float32ToFloat16 } from '../numeric/float16.js';

export type { InferenceSession } from 'onnxruntime-node';
export { Tensor } from 'onnxruntime-node';

/** An execution provider: 'cuda' needs onnxruntime-node's CUDA build (see the README, GPU). */
export type Device = 'cpu' | 'cuda';
export const DEVICES: readonly Device[] = ['cpu', 'cuda'];

/** Checks a `device` option (ArgumentError naming the choices). */
export function checkDeviceOption(device: unknown): void {
  if (device !== undefined && !DEVICES.includes(device as Device))
    throw new ArgumentError(`'device' must be ${formatChoices(DEVICES)} but got '${String(device)}'`);
}

/**
 * The most onnxruntime threads accepted: 4 × the cores. Each thread costs its stack and start-up; far more
 * threads than cores only slow a run down.
 */
export function maxThreads(): number {
  return 4 * availableParallelism();
}

/** Checks an onnxruntime thread count: an integer from 1 to maxThreads() (ArgumentError with option 'threads'). */
export function checkThreads(threads: number | undefined): void {
  if (threads === undefined) return;
  const max = maxThreads();
  if (!Number.isInteger(threads) || threads < 1 || threads > max)
    throw new ArgumentError(
      `'threads' must be an integer from 1 to ${max} (4 × the ${max / 4} cores of this machine) but got ${threads}`,
      { option: 'threads' },
    );
}

export interface SessionConfig {
  readonly device: Device;
  /** onnxruntime intra-op threads; default: all cores (onnxruntime's own default may take 1). */
  readonly threads?: number;
  /** onnxruntime graph optimisations; default 'all'. A session run once or twice (the shape probe) is
   * created faster with 'basic'. */
  readonly optimization?: 'disabled' | 'basic' | 'extended' | 'all';
}

/** The onnxruntime session options of every session. */
export function sessionOptions(config: SessionConfig): ort.InferenceSession.SessionOptions {
  return {
    graphOptimizationLevel: config.optimization ?? 'all',
    executionMode: 'sequential',
    logSeverityLevel: 4, // fatal only: failures reach the caller as errors, not as native log lines
    executionProviders: config.device === 'cuda' ? ['cuda', 'cpu'] : ['cpu'],
    intraOpNumThreads: config.threads ?? availableParallelism(),
  };
}

const CUDA_HELP =
  'the onnxruntime-node npm package ships CPU binaries only; on a Linux x64 machine with an NVIDIA driver, ' +
  'CUDA 12 and cuDNN 9, fetch its CUDA provider once (from api.nuget.org) by running ' +
  '`ONNXRUNTIME_NODE_INSTALL=cuda12 node node_modules/onnxruntime-node/script/install.js` in the project folder ' +
  "(this works where the project's install skipped that script), or use device 'cpu'";

/** An external data file handed to onnxruntime in memory, under the `location` the model's tensors name. */
export interface ExternalDataFile {
  readonly path: string;
  readonly data: Uint8Array;
}

/**
 * Opens an onnxruntime session on a model file or serialised model. `what` names the model in messages
 * (e.g. `target model 'x.onnx'`). Throws ClipDissectError 'ERR_CUDA_UNAVAILABLE' when device 'cuda' cannot
 * load its execution provider, 'ERR_MODEL_SESSION' when onnxruntime cannot open the model.
 */
export async function createSession(
  model: string | Uint8Array,
  config: SessionConfig,
  what: string,
  externalData: readonly ExternalDataFile[] = [],
): Promise<ort.InferenceSession> {
  const so: ort.InferenceSession.SessionOptions = {
    ...sessionOptions(config),
    ...(externalData.length > 0 ? { externalData: [...externalData] } : {}),
  };
  try {
    return typeof model === 'string'
      ? await ort.InferenceSession.create(model, so)
      : await ort.InferenceSession.create(model, so);
  } catch (e) {
    const msg = ((e as Error).message ?? String(e)).trim();
    if (config.device === 'cuda' && /cuda|shared library|provider/i.test(msg))
      throw new ClipDissectError(
        'ERR_CUDA_UNAVAILABLE',
        `device 'cuda' was requested for ${what} but onnxruntime cannot load its CUDA execution provider (${msg}); ${CUDA_HELP}`,
        { cause: e },
      );
    throw new ClipDissectError('ERR_MODEL_SESSION', `onnxruntime cannot load ${what}: ${msg}`, { cause: e });
  }
}

/** A float32 or float16 input tensor of float32 values (fp16 exports take float16 tensors). */
export function floatTensor(
  type: 'float32' | 'float16',
  data: Float32Array,
  dims: readonly number[],
): ort.Tensor {
  return type === 'float16'
    ? new ort.Tensor('float16', float32ToFloat16(data), dims)
    : new ort.Tensor('float32', data, dims);
}

/** The values of a float32 or float16 output tensor as float32, copied; null for any other element type. */
export function floatTensorValues(t: ort.Tensor): Float32Array | null {
  if (t.type === 'float32') return (t.data as Float32Array).slice();
  if (t.type !== 'float16') return null;
  const d = t.data as unknown; // float16 bits; a Float16Array where the runtime has one
  return d instanceof Uint16Array ? float16ToFloat32(d) : Float32Array.from(d as ArrayLike<number>);
}

/** The versions of the native runtimes, as results record them. */
export interface RuntimeVersions {
  readonly onnxruntime: string;
  readonly sharp: string;
  readonly libvips: string;
}

export function runtimeVersions(): RuntimeVersions {
  return {
    onnxruntime: ort.env.versions?.node ?? 'unknown',
    sharp: sharp.versions.sharp,
    libvips: sharp.versions.vips,
  };
}
