/**
 * The native runtime (internal to src/runtime): onnxruntime-node, an optional peer dependency, imported only
 * when asked for so that a package without it still loads.
 */
import type * as Ort from 'onnxruntime-web';

/** onnxruntime-node when it can be imported, else why not. */
export interface NativeLoad {
  readonly ort?: typeof Ort;
  readonly version: string;
  /** Why it cannot be used ('' when it can). */
  readonly problem: string;
}

let loading: Promise<NativeLoad> | undefined;

export function loadNative(): Promise<NativeLoad> {
  loading ??= import('onnxruntime-node').then(
    (m) => ({
      // onnxruntime-node and onnxruntime-web share onnxruntime-common's API
      ort: m as unknown as typeof Ort,
      version: m.env.versions?.node ?? 'unknown',
      problem: '',
    }),
    (e: unknown) => {
      const err = e as { code?: string; message?: string };
      const missing =
        err.code === 'ERR_MODULE_NOT_FOUND' && /'onnxruntime-node'/.test(err.message ?? '')
          ? 'onnxruntime-node is not installed'
          : `onnxruntime-node is installed but fails to load: ${String(err.message ?? e).split('\n')[0]}`;
      return { version: 'none', problem: missing };
    },
  );
  return loading;
}
