/**
 * The WebAssembly runtime (internal to src/runtime): onnxruntime-web's wasm build, a plain dependency with no
 * install script. One wasm instance per process: its thread pool is sized once, by the first session.
 */
import type * as Ort from 'onnxruntime-web';

export interface WasmRuntime {
  readonly ort: typeof Ort;
  readonly version: string;
  /** Sizes the thread pool before the first session (later calls keep the first size); returns the size. */
  threads(n: number): number;
}

let loading: Promise<WasmRuntime> | undefined;

export function loadWasm(): Promise<WasmRuntime> {
  loading ??= import('onnxruntime-web').then((ort) => {
    ort.env.logLevel = 'fatal';
    let size: number | undefined;
    return {
      ort,
      version: ort.env.versions?.web ?? 'unknown',
      threads(n: number): number {
        if (size === undefined) {
          size = n;
          ort.env.wasm.numThreads = n;
        }
        return size;
      },
    };
  });
  return loading;
}
