/**
 * A worker thread that runs WebAssembly kernels on the shared memory of a KernelPool. Internal.
 * Messages: { id, fn, args } → { id } or { id, error }. With `steal`, the worker instead takes neuron
 * slices from a shared counter until none is left (the main thread may take slices from the same counter).
 */
import { parentPort, workerData } from 'node:worker_threads';
import { type StealSpec, stealSlices } from './_wasm.js';

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

parentPort?.on('message', (msg: { id: number; fn: string; args: number[]; steal?: StealSpec }) => {
  try {
    if (msg.steal) {
      stealSlices(exports[msg.fn], memory, msg.args, msg.steal);
    } else {
      exports[msg.fn](...msg.args);
    }
    parentPort?.postMessage({ id: msg.id });
  } catch (e) {
    parentPort?.postMessage({ id: msg.id, error: (e as Error).message });
  }
});
