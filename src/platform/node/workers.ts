/** The worker port on Node's `worker_threads`. */
import { parentPort, Worker, workerData } from 'node:worker_threads';
import type { ParentChannel, WorkerHandle, Workers } from '../types.js';

export const nodeWorkers: Workers = {
  spawn: (script, data): WorkerHandle => {
    const w = new Worker(script, { workerData: data });
    return {
      postMessage: (message) => w.postMessage(message),
      onMessage: (listener) => void w.on('message', listener),
      onError: (listener) => void w.on('error', listener),
      onExit: (listener) => void w.on('exit', listener),
      terminate: async () => {
        await w.terminate();
      },
    };
  },
  parent: (): ParentChannel | undefined => {
    const port = parentPort;
    if (!port) return undefined;
    return {
      data: workerData,
      postMessage: (message) => port.postMessage(message),
      onMessage: (listener) => void port.on('message', listener),
      transferMessage: (message, transfer) => port.postMessage(message, transfer),
    };
  },
};
