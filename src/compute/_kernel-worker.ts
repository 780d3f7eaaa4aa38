/**
 * A worker thread that runs WebAssembly kernels on the shared memory of a KernelPool. Internal.
 * Messages: { id, fn, args } → { id } or { id, error }. With `steal`, the worker instead takes neuron
 * slices from a shared counter until none is left (the main thread may take slices from the same counter).
 */
import { platform } from '#platform';
import { type StealSpec, stealSlices } from './_wasm.js';

const parent = platform.workers.parent();
if (!parent) throw new Error('_kernel-worker.js runs as a worker of a KernelPool');
const { module, memory } = parent.data as { module: WebAssembly.Module; memory: WebAssembly.Memory };
const instance = new WebAssembly.Instance(module, {
  env: {
    memory,
    abort: () => {
      throw new Error('wasm kernel abort');
    },
  },
});
const exports = instance.exports as Record<string, (...args: number[]) => void>;

parent.onMessage((message) => {
  const msg = message as { id: number; fn: string; args: number[]; steal?: StealSpec };
  try {
    if (msg.steal) {
      stealSlices(exports[msg.fn], memory, msg.args, msg.steal);
    } else {
      exports[msg.fn](...msg.args);
    }
    parent.postMessage({ id: msg.id });
  } catch (e) {
    parent.postMessage({ id: msg.id, error: (e as Error).message });
  }
});
