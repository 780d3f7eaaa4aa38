/**
 * Loader and memory arena for the SIMD WebAssembly kernels (assembly/kernels.ts, built by
 * `npm run build:wasm` next to this file). Internal: nothing here is exported from the package.
 */
import { readFileSync } from 'node:fs';

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
  ): void;
  finishLog(acc: number, ex: number, out: number, count: number): void;
  subtractPrior(s: number, rows: number, width: number, prior: number, lambda: number, logRows: number): void;
  logVec(x: number, out: number, count: number): void;
  expVec(x: number, out: number, count: number): void;
  rankReorder(
    pc: number,
    width: number,
    rows: number,
    n: number,
    n2: number,
    v: number,
    p: number,
    scratch: number,
    errOut: number,
    meanOut: number,
  ): void;
}

let compiled: WebAssembly.Module | undefined;

function kernelModule(): WebAssembly.Module {
  if (!compiled) {
    const bytes = readFileSync(new URL('./kernels.wasm', import.meta.url));
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
    this.memory = new WebAssembly.Memory({ initial: 16, maximum: 65536 });
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
