/**
 * trust-metrics.similarityColumn for many concepts at once, in a SIMD WebAssembly kernel (dotColumns) that sums
 * in the same order, so every value is bit-identical to similarityColumn's.
 */
import { ShapeError } from '../numeric/errors.js';
import type { Matrix } from '../numeric/matrix.js';
import { KernelArena } from './_wasm.js';

/** Concepts per kernel call, bounding the arena to N·d·4 + 256·(d·4 + N·8) bytes. */
const BATCH = 256;

/**
 * x_c[i] = In_i · Tn_c for every row i of `In` (N×d) and each concept c of `concepts` (rows of Tn, M×d): the
 * CLIP cosines when both matrices hold unit rows. Returns the columns by concept.
 */
export function similarityColumns(
  In: Matrix,
  Tn: Matrix,
  concepts: ArrayLike<number>,
): Map<number, Float64Array> {
  const { rows: n, cols: d } = In;
  if (Tn.cols !== d) throw new ShapeError(`image features have ${d} columns but text features ${Tn.cols}`);
  const wanted = [...new Set(Array.from(concepts))];
  const out = new Map<number, Float64Array>();
  if (wanted.length === 0) return out;
  const arena = new KernelArena();
  const aPtr = arena.alloc(n * d * 4);
  arena.f32(aPtr, n * d).set(In.data.subarray(0, n * d));
  const nb = Math.min(BATCH, wanted.length);
  const tPtr = arena.alloc(nb * d * 4);
  const oPtr = arena.alloc(nb * n * 8);
  for (let b0 = 0; b0 < wanted.length; b0 += nb) {
    const batch = wanted.slice(b0, b0 + nb);
    const t = arena.f32(tPtr, batch.length * d);
    for (const [j, c] of batch.entries()) t.set(Tn.data.subarray(c * d, (c + 1) * d), j * d);
    arena.k.dotColumns(aPtr, n, d, tPtr, batch.length, oPtr);
    const res = new Float64Array(arena.memory.buffer, oPtr, batch.length * n);
    for (const [j, c] of batch.entries()) out.set(c, res.slice(j * n, (j + 1) * n));
  }
  return out;
}
