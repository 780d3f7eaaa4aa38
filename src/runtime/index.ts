/**
 * The runtime gateway: the one room that imports onnxruntime. Every ONNX session of the library (target
 * networks, CLIP towers, the sentence encoder, the compute engine's graphs) is opened by `createSession` with
 * the options of `sessionOptions`, and a model onnxruntime cannot open is reported the same way for all of
 * them ('ERR_MODEL_SESSION', or 'ERR_CUDA_UNAVAILABLE' with one install hint).
 *
 * Two runtimes sit behind it, one per process at a time (`selectRuntime`):
 * - 'native': onnxruntime-node, an optional peer dependency (CPU binaries, the CUDA provider on request);
 * - 'wasm': onnxruntime-web's WebAssembly build, a plain dependency that installs without any script.
 * 'auto' (the default) takes the native runtime when onnxruntime-node can be imported, else WebAssembly.
 * Tensors are made with `Tensor` after the runtime is chosen (the first session chooses 'auto' at the
 * latest); they belong to that runtime. `runtimeVersions()` gives what results record. Internal: callers use
 * only these exports.
 */

import type * as Ort from 'onnxruntime-web';
import { platform } from '#platform';
import { ArgumentError, ClipDissectError, formatChoices } from '../numeric/errors.js';
import { float16ToFloat32, float32ToFloat16 } from '../numeric/float16.js';
import { loadNative } from './_native.js';
import { loadWasm, type WasmRuntime } from './_wasm.js';

export type { InferenceSession } from 'onnxruntime-web';

/** An execution provider: 'cuda' needs the native runtime with onnxruntime-node's CUDA provider (see the README, GPU). */
export type Device = 'cpu' | 'cuda';
export const DEVICES: readonly Device[] = ['cpu', 'cuda'];

/** The ONNX runtime that runs every session: onnxruntime-node ('native') or onnxruntime-web ('wasm'). */
export type RuntimeName = 'native' | 'wasm';
/** 'auto': native when onnxruntime-node is installed, else wasm. */
export type RuntimeChoice = 'auto' | RuntimeName;
export const RUNTIME_CHOICES: readonly RuntimeChoice[] = ['auto', 'native', 'wasm'];

/** The onnxruntime-node version this package is built and tested against (its optional peer dependency). */
export const NATIVE_VERSION = '1.31.1';

/** How to get the native runtime, for messages. */
export const NATIVE_INSTALL_HINT =
  `install the native runtime next to clip-dissect: \`ONNXRUNTIME_NODE_INSTALL=skip npm i onnxruntime-node@${NATIVE_VERSION}\` ` +
  `for the CPU, or \`npm i onnxruntime-node@${NATIVE_VERSION}\` (on Linux x64 it downloads the CUDA 12 provider from api.nuget.org) for CUDA`;

/** The runtime in use: its name, onnxruntime version and why it was chosen. */
export interface RuntimeInfo {
  readonly name: RuntimeName;
  readonly version: string;
  /** Why: 'requested', 'onnxruntime-node is installed', 'onnxruntime-node is not installed', … */
  readonly reason: string;
}

interface LoadedRuntime extends RuntimeInfo {
  readonly ort: typeof Ort;
  /** wasm only: its thread count, fixed by the first session. */
  readonly wasm?: WasmRuntime;
}

let current: LoadedRuntime | undefined;

/** Checks a `runtime` option (ArgumentError naming the choices). */
export function checkRuntimeOption(runtime: unknown): void {
  if (runtime !== undefined && !RUNTIME_CHOICES.includes(runtime as RuntimeChoice))
    throw new ArgumentError(
      `'runtime' must be ${formatChoices(RUNTIME_CHOICES)} but got '${String(runtime)}'`,
      {
        option: 'runtime',
      },
    );
}

/**
 * Chooses the runtime of the sessions opened from now on (default 'auto'; the first session calls it when
 * nothing was chosen). Throws ClipDissectError 'ERR_RUNTIME_UNAVAILABLE' for 'native' when onnxruntime-node cannot be
 * imported. Sessions and tensors of the runtime chosen before stay usable with each other.
 */
export async function selectRuntime(choice: RuntimeChoice = 'auto'): Promise<RuntimeInfo> {
  checkRuntimeOption(choice);
  if (current && choice === current.name) return info(current);
  if (choice !== 'wasm') {
    const native = await loadNative();
    if (native.ort) {
      if (current?.name === 'native') return info(current);
      current = {
        name: 'native',
        ort: native.ort,
        version: native.version,
        reason: choice === 'native' ? 'requested' : 'onnxruntime-node is installed',
      };
      return info(current);
    }
    if (choice === 'native')
      throw new ClipDissectError(
        'ERR_RUNTIME_UNAVAILABLE',
        `runtime 'native' was requested but onnxruntime-node cannot be imported (${native.problem}); ${NATIVE_INSTALL_HINT}, or use runtime 'wasm'`,
      );
    if (current?.name === 'wasm') return info(current);
    const wasm = await loadWasm();
    current = { name: 'wasm', ort: wasm.ort, version: wasm.version, reason: native.problem, wasm };
    return info(current);
  }
  const wasm = await loadWasm();
  current = { name: 'wasm', ort: wasm.ort, version: wasm.version, reason: 'requested', wasm };
  return info(current);
}

function info(r: LoadedRuntime): RuntimeInfo {
  return { name: r.name, version: r.version, reason: r.reason };
}

/** The runtime chosen so far, or undefined before the first session or `selectRuntime`. */
export function currentRuntime(): RuntimeInfo | undefined {
  return current && info(current);
}

/** One line for the start of a run: the runtime, and with wasm how to get the native one. */
export function runtimeLine(r: RuntimeInfo): string {
  return r.name === 'native'
    ? `runtime: native (onnxruntime-node ${r.version}; ${r.reason})`
    : `runtime: wasm (onnxruntime-web ${r.version}, WebAssembly; ${r.reason}); for the faster native runtime, ${NATIVE_INSTALL_HINT}`;
}

/**
 * Checks that the runtime chosen can run on `device`: ClipDissectError 'ERR_CUDA_UNAVAILABLE' for 'cuda' on
 * the wasm runtime, saying how to install the native one. `forWhat` (' for target model …') goes into the message.
 */
export function checkRuntimeDevice(device: Device | undefined, forWhat = ''): void {
  if (device === 'cuda' && current?.name === 'wasm')
    throw new ClipDissectError(
      'ERR_CUDA_UNAVAILABLE',
      `device 'cuda' was requested${forWhat} but the runtime is wasm (onnxruntime-web ${current.version}), which has no CUDA execution provider; ${NATIVE_INSTALL_HINT}; or use device 'cpu'`,
    );
}

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
  return 4 * platform.host.availableParallelism();
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
  /** onnxruntime intra-op threads; default: all cores (onnxruntime's own default may take 1). The wasm
   * runtime has one thread pool per process: the first session's count holds for all. */
  readonly threads?: number;
  /** onnxruntime graph optimisations; default 'all'. A session run once or twice (the shape probe) is
   * created faster with 'basic'. */
  readonly optimization?: 'disabled' | 'basic' | 'extended' | 'all';
}

/** The onnxruntime session options of every session (execution providers of the native runtime). */
export function sessionOptions(config: SessionConfig): Ort.InferenceSession.SessionOptions {
  return {
    graphOptimizationLevel: config.optimization ?? 'all',
    executionMode: 'sequential',
    logSeverityLevel: 4, // fatal only: failures reach the caller as errors, not as native log lines
    executionProviders: config.device === 'cuda' ? ['cuda', 'cpu'] : ['cpu'],
    intraOpNumThreads: config.threads ?? platform.host.availableParallelism(),
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
 * Opens an onnxruntime session on a model file or serialised model, with the runtime chosen (see
 * selectRuntime; 'auto' if none yet). `what` names the model in messages (e.g. `target model 'x.onnx'`).
 * Throws ClipDissectError 'ERR_CUDA_UNAVAILABLE' when device 'cuda' cannot load its execution provider (or
 * the runtime is wasm), 'ERR_MODEL_SESSION' when onnxruntime cannot open the model.
 */
export async function createSession(
  model: string | Uint8Array,
  config: SessionConfig,
  what: string,
  externalData: readonly ExternalDataFile[] = [],
): Promise<Ort.InferenceSession> {
  if (!current) await selectRuntime('auto');
  const rt = current!;
  if (rt.wasm) {
    checkRuntimeDevice(config.device, ` for ${what}`);
    rt.wasm.threads(config.threads ?? platform.host.availableParallelism());
  }
  const so: Ort.InferenceSession.SessionOptions = {
    ...(rt.wasm ? wasmSessionOptions(config) : sessionOptions(config)),
    ...(externalData.length > 0 ? { externalData: [...externalData] } : {}),
  };
  try {
    // the wasm runtime opens bytes: a path is read here, not by onnxruntime-web's own file loader
    const session =
      typeof model === 'string'
        ? rt.wasm
          ? await wasmSessionFromFile(rt.ort, model, so, what)
          : await rt.ort.InferenceSession.create(model, so)
        : await rt.ort.InferenceSession.create(model, so);
    if (rt.wasm) {
      unknownDimsAsNative(session);
      outputsIntoGivenTensors(session);
    }
    return session;
  } catch (e) {
    if (e instanceof ClipDissectError) throw e;
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

/**
 * A wasm session on a model file: onnxruntime-web opens bytes and finds external data only in
 * `externalData`, so the file is read here, and each external-data file it asks for (by its location,
 * relative to the model's folder) is read and handed over, until the model opens.
 */
async function wasmSessionFromFile(
  ort: typeof Ort,
  path: string,
  so: Ort.InferenceSession.SessionOptions,
  what: string,
): Promise<Ort.InferenceSession> {
  const bytes = await platform.files.readFile(path);
  const external = [...(so.externalData ?? [])];
  for (;;) {
    try {
      return await ort.InferenceSession.create(bytes, { ...so, externalData: external });
    } catch (e) {
      const location = /Failed to load external data file "+([^"]+)"+/.exec(
        String((e as Error).message),
      )?.[1];
      if (location === undefined || external.some((f) => (f as { path?: string }).path === location)) throw e;
      const norm = platform.paths.normalize(location);
      if (platform.paths.isAbsolute(location) || norm === '..' || norm.startsWith(`..${platform.paths.sep}`))
        throw new ClipDissectError(
          'ERR_MODEL_EXTERNAL_DATA',
          `${what} has external data location '${location}'; it must be a path relative to the model's folder, inside it`,
        );
      const file = platform.paths.join(platform.paths.dirname(path), norm);
      const data = await platform.files.readFile(file).catch((err: unknown) => {
        throw new ClipDissectError(
          'ERR_MODEL_EXTERNAL_DATA',
          `${what} keeps its weights in '${location}', but '${file}' cannot be read (${(err as { code?: string }).code ?? (err as Error).message}); copy it next to the model`,
          { cause: err },
        );
      });
      external.push({ path: location, data });
    }
  }
}

/**
 * onnxruntime-web reports a dimension that shape inference left unknown as 2^32 - 1 (an unsigned -1), the
 * native runtime as -1: the wasm session's metadata is given the native form.
 */
function unknownDimsAsNative(session: Ort.InferenceSession): void {
  const fix = (meta: readonly Ort.InferenceSession.ValueMetadata[]) =>
    meta.map((m) =>
      m.isTensor
        ? { ...m, shape: m.shape.map((d) => (typeof d === 'number' && d > 0x7fffffff ? -1 : d)) }
        : m,
    );
  const inputs = fix(session.inputMetadata);
  const outputs = fix(session.outputMetadata);
  Object.defineProperty(session, 'inputMetadata', { value: inputs });
  Object.defineProperty(session, 'outputMetadata', { value: outputs });
}

/**
 * onnxruntime-web leaves pre-allocated CPU output tensors (`run(feeds, { y: tensor })`) unwritten: the wasm
 * session's `run` computes those outputs as new tensors and copies them into the given ones, which it returns,
 * as the native runtime does.
 */
function outputsIntoGivenTensors(session: Ort.InferenceSession): void {
  const run = session.run.bind(session) as (...a: unknown[]) => Promise<Ort.InferenceSession.ReturnType>;
  const value = async (feeds: unknown, fetches?: unknown, options?: unknown) => {
    const given =
      fetches && typeof fetches === 'object' && !Array.isArray(fetches)
        ? session.outputNames.flatMap((n) => {
            const t = (fetches as Record<string, unknown>)[n];
            return t && typeof t === 'object' && 'data' in t ? [[n, t as Ort.Tensor] as const] : [];
          })
        : [];
    if (given.length === 0) return run(feeds, fetches, options);
    const names = session.outputNames.filter((n) => n in (fetches as object));
    const res = await run(feeds, Object.fromEntries(names.map((n) => [n, null])), options);
    for (const [name, t] of given) {
      const out = res[name].data as Float32Array;
      const into = t.data as Float32Array;
      if (out.length !== into.length)
        throw new ClipDissectError(
          'ERR_MODEL_SESSION',
          `output '${name}' has ${out.length} values but the tensor given for it holds ${into.length}`,
        );
      into.set(out);
      res[name].dispose();
      (res as Record<string, Ort.Tensor>)[name] = t;
    }
    return res;
  };
  Object.defineProperty(session, 'run', { value });
}

/** The session options of the wasm runtime: its one execution provider; threads are per process. */
function wasmSessionOptions(config: SessionConfig): Ort.InferenceSession.SessionOptions {
  return {
    graphOptimizationLevel: config.optimization ?? 'all',
    executionMode: 'sequential',
    logSeverityLevel: 4,
    executionProviders: ['wasm'],
  };
}

/** A tensor of the runtime in use: made with `new Tensor(type, data, dims)` once a runtime is chosen. */
export type Tensor = Ort.Tensor;
export const Tensor = function Tensor(...args: unknown[]): Ort.Tensor {
  if (!current)
    throw new ClipDissectError(
      'ERR_RUNTIME_UNAVAILABLE',
      'no ONNX runtime is chosen yet: tensors are made after selectRuntime() or the first session',
    );
  return new (current.ort.Tensor as unknown as new (...a: unknown[]) => Ort.Tensor)(...args);
} as unknown as typeof Ort.Tensor;

/** A float32 or float16 input tensor of float32 values (fp16 exports take float16 tensors). */
export function floatTensor(
  type: 'float32' | 'float16',
  data: Float32Array,
  dims: readonly number[],
): Ort.Tensor {
  return type === 'float16'
    ? new Tensor('float16', float32ToFloat16(data), dims)
    : new Tensor('float32', data, dims);
}

/** The values of a float32 or float16 output tensor as float32, copied; null for any other element type. */
export function floatTensorValues(t: Ort.Tensor): Float32Array | null {
  if (t.type === 'float32') return (t.data as Float32Array).slice();
  if (t.type !== 'float16') return null;
  const d = t.data as unknown; // float16 bits; a Float16Array where the runtime has one
  return d instanceof Uint16Array ? float16ToFloat32(d) : Float32Array.from(d as ArrayLike<number>);
}

/** The runtime and the versions of the native libraries, as results record them. */
export interface RuntimeVersions {
  /** 'native' or 'wasm'; 'none' when no session was opened. */
  readonly runtime: RuntimeName | 'none';
  readonly onnxruntime: string;
  readonly sharp: string;
  readonly libvips: string;
}

export function runtimeVersions(): RuntimeVersions {
  const images = platform.images.versions();
  return {
    runtime: current?.name ?? 'none',
    onnxruntime: current?.version ?? 'none',
    sharp: images['sharp'] ?? 'none',
    libvips: images['libvips'] ?? 'none',
  };
}
