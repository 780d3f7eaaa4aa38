/**
 * A worker thread that runs WebAssembly kernels on the shared memory of a KernelPool. Internal.
 * Messages: { id, fn, args } → { id } or { id, error }.
 */
import { parentPort, workerData } from 'node:worker_threads';

const { module, memory } = workerData as { module: WebAssembly.Module; memory: WebAssembly.Memory };
const instance = new WebAssembly.Instance(module, {
  env: {
    memory,
    abort: () => {
      throw new Error('wasm kernel abort');
    },
  },
});
const exports = instance.exports as Record<string, (...args: number[]) => void>;

parentPort?.on('message', (msg: { id: number; fn: string; args: number[] }) => {
  try {
    exports[msg.fn](...msg.args);
    parentPort?.postMessage({ id: msg.id });
  } catch (e) {
    parentPort?.postMessage({ id: msg.id, error: (e as Error).message });
  }
});
