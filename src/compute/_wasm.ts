/**
 * Loader and memory arena for the SIMD WebAssembly kernels (assembly/kernels.ts, built by
 * `npm run build:wasm` next to this file). Internal: nothing here is exported from the package.
 */
import { platform } from '#platform';
import type { WorkerHandle } from '../platform/types.js';

/** Slices of work (neuron or tile ranges) handed out through a shared Int32 counter (KernelPool.runStealing). */
export interface StealSpec {
  /** Byte offset of the counter in the arena's memory. */
  counter: number;
  slices: number;
  sliceSize: number;
  total: number;
  /** Positions of the range's start and end in the kernel's arguments. */
  startArg: number;
  endArg: number;
}

/** Takes slices from the shared counter and runs `call` on each until none is left. */
export function stealSlices(
  call: (...args: number[]) => void,
  memory: WebAssembly.Memory,
  args: number[],
  spec: StealSpec,
): void {
  const counter = new Int32Array(memory.buffer, spec.counter, 1);
  const a = args.slice();
  for (;;) {
    const i = Atomics.add(counter, 0, 1);
    if (i >= spec.slices) return;
    a[spec.startArg] = i * spec.sliceSize;
    a[spec.endArg] = Math.min(spec.total, (i + 1) * spec.sliceSize);
    call(...a);
  }
}

interface KernelExports {
  mulBlock(
    acc: number,
    ex: number,
    width: number,
    q: number,
    offsets: number,
    rows: number,
    ps: number,
    cs: number,
    nNeurons: number,
    g: number,
    tile: number,
    tileStart: number,
    tileEnd: number,
    fresh: number,
  ): void;
  finishLog(acc: number, ex: number, out: number, count: number): void;
  subtractPrior(s: number, rows: number, width: number, prior: number, lambda: number, logRows: number): void;
  logVec(x: number, out: number, count: number): void;
  dotColumns(a: number, rows: number, d: number, t: number, nCols: number, out: number): void;
  expVec(x: number, out: number, count: number): void;
  rankReorderNeurons(
    pc: number,
    width: number,
    rowsAll: number,
    vAll: number,
    n: number,
    n2: number,
    p: number,
    scratch: number,
    errOut: number,
    meanOut: number,
    kStart: number,
    kEnd: number,
  ): void;
}

let compiled: WebAssembly.Module | undefined;

function kernelModule(): WebAssembly.Module {
  if (!compiled) {
    const bytes = platform.files.readAssetSync(new URL('./kernels.wasm', import.meta.url));
    compiled = new WebAssembly.Module(bytes);
  }
  return compiled;
}

const PAGE = 65536;

/**
 * One wasm instance with its own linear memory, used as a bump-allocated arena: `reserve` all buffers
 * of a job first, then take typed-array views (views stay valid until the next `grow`).
 */
export class KernelArena {
  readonly memory: WebAssembly.Memory;
  readonly k: KernelExports;
  private top = 16;

  constructor() {
    // shared, so that worker threads (KernelPool) can run kernels on the same buffers
    this.memory = new WebAssembly.Memory({ initial: 16, maximum: 65536, shared: true });
    const instance = new WebAssembly.Instance(kernelModule(), {
      env: {
        memory: this.memory,
        abort: () => {
          throw new Error('wasm kernel abort');
        },
      },
    });
    this.k = instance.exports as unknown as KernelExports;
  }

  /** Frees every allocation. */
  reset(): void {
    this.top = 16;
  }

  /** Allocates `bytes` (16-byte aligned), growing the memory as needed; returns the byte offset. */
  alloc(bytes: number): number {
    const ptr = this.top;
    const end = ptr + Math.ceil(bytes / 16) * 16;
    if (end > 4 * 1024 * 1024 * 1024 - PAGE) {
      throw new RangeError(
        `the similarity kernels need ${end} bytes of working memory, over WebAssembly's 4 GiB`,
      );
    }
    const have = this.memory.buffer.byteLength;
    if (end > have) this.memory.grow(Math.ceil((end - have) / PAGE));
    this.top = end;
    return ptr;
  }

  f32(ptr: number, length: number): Float32Array {
    return new Float32Array(this.memory.buffer, ptr, length);
  }

  i32(ptr: number, length: number): Int32Array {
    return new Int32Array(this.memory.buffer, ptr, length);
  }
}

/** Rounds up to a multiple of 4 (the SIMD width in floats). */
export function pad4(n: number): number {
  return (n + 3) & ~3;
}

/**
 * Worker threads that run kernels on an arena's shared memory. `run` splits nothing itself: the caller
 * gives each worker its own arguments (typically a neuron range). `release()` terminates the workers.
 */
export class KernelPool {
  private readonly workers: WorkerHandle[];
  private nextId = 1;
  private readonly pending = new Map<number, { resolve: () => void; reject: (e: Error) => void }>();

  constructor(arena: KernelArena, size: number) {
    const url = new URL('./_kernel-worker.js', import.meta.url);
    this.workers = Array.from({ length: size }, () => {
      const w = platform.workers.spawn(url, { module: kernelModule(), memory: arena.memory });
      w.onMessage((message) => {
        const msg = message as { id: number; error?: string };
        const p = this.pending.get(msg.id);
        this.pending.delete(msg.id);
        if (msg.error) p?.reject(new Error(`wasm kernel failed: ${msg.error}`));
        else p?.resolve();
      });
      w.onError((e) => {
        for (const p of this.pending.values()) p.reject(e);
        this.pending.clear();
      });
      return w;
    });
  }

  get size(): number {
    return this.workers.length;
  }

  /**
   * Every worker takes slices of `fn` from a shared counter (see _kernel-worker.ts) until none is left;
   * the calling thread may take slices from the same counter with `stealSlices`.
   */
  runStealing(fn: keyof KernelExports, args: number[], steal: StealSpec): Promise<void> {
    return Promise.all(
      this.workers.map(
        (w) =>
          new Promise<void>((resolve, reject) => {
            const id = this.nextId++;
            this.pending.set(id, { resolve, reject });
            w.postMessage({ id, fn, args, steal });
          }),
      ),
    ).then(() => undefined);
  }

  /** Runs `fn` on worker i with argsPerWorker[i] (fewer entries: fewer workers busy). */
  run(fn: keyof KernelExports, argsPerWorker: number[][]): Promise<void> {
    return Promise.all(
      argsPerWorker.map(
        (args, i) =>
          new Promise<void>((resolve, reject) => {
            const id = this.nextId++;
            this.pending.set(id, { resolve, reject });
            this.workers[i].postMessage({ id, fn, args });
          }),
      ),
    ).then(() => undefined);
  }

  async release(): Promise<void> {
    await Promise.all(this.workers.map((w) => w.terminate()));
  }

  async [Symbol.asyncDispose](): Promise<void> {
    await this.release();
  }
}

/** Splits [0, n) into `parts` contiguous ranges of near-equal size. */
export function splitRange(n: number, parts: number): [number, number][] {
  const out: [number, number][] = [];
  for (let i = 0; i < parts; i++) {
    const a = Math.floor((n * i) / parts);
    const b = Math.floor((n * (i + 1)) / parts);
    if (b > a) out.push([a, b]);
  }
  return out;
}
