// SIMD kernels for the similarity engine, compiled to WebAssembly by AssemblyScript (`npm run build:wasm`).
// Every pointer is a byte offset into the imported memory; every f32 row has a length that is a multiple
// of 4 (callers pad). No allocation happens here: the TypeScript side owns the memory layout.

const LN2: f32 = 0.6931471805599453;
const SQRT1_2: f32 = 0.7071067811865476;

// log(x) for x > 0 (normal floats), 4 lanes. |relative error| < 2e-7.
// x = 2^e · m with m in [sqrt(1/2), sqrt(2)); log m = 2·atanh(s), s = (m − 1)/(m + 1).
// @ts-ignore: decorator
@inline
function vlog(x: v128): v128 {
  const bits = x;
  let e = i32x4.sub(i32x4.shr_u(bits, 23), i32x4.splat(127));
  let m = v128.or(v128.and(bits, i32x4.splat(0x007fffff)), i32x4.splat(0x3f800000)); // [1, 2)
  // if m > sqrt2 (i.e. m/2 >= sqrt(1/2)): m /= 2, e += 1
  const big = f32x4.gt(m, f32x4.splat(1.4142135623730951));
  m = v128.bitselect(f32x4.mul(m, f32x4.splat(0.5)), m, big);
  e = i32x4.sub(e, big); // big lanes are -1 (all ones)
  const s = f32x4.div(f32x4.sub(m, f32x4.splat(1)), f32x4.add(m, f32x4.splat(1)));
  const s2 = f32x4.mul(s, s);
  // 2s(1 + s²/3 + s⁴/5 + s⁶/7 + s⁸/9)
  let poly = f32x4.add(f32x4.splat(1.0 / 7.0), f32x4.mul(s2, f32x4.splat(1.0 / 9.0)));
  poly = f32x4.add(f32x4.splat(1.0 / 5.0), f32x4.mul(s2, poly));
  poly = f32x4.add(f32x4.splat(1.0 / 3.0), f32x4.mul(s2, poly));
  poly = f32x4.add(f32x4.splat(1.0), f32x4.mul(s2, poly));
  const lm = f32x4.mul(f32x4.mul(s, f32x4.splat(2)), poly);
  return f32x4.add(lm, f32x4.mul(f32x4.convert_i32x4_s(e), f32x4.splat(LN2)));
}

// exp(x), 4 lanes, x clamped to [-87, 88]. |relative error| < 3e-7.
// @ts-ignore: decorator
@inline
function vexp(x: v128): v128 {
  x = f32x4.max(f32x4.min(x, f32x4.splat(88.0)), f32x4.splat(-87.0));
  // n = round(x / ln2), r = x − n·ln2 (Cody–Waite, two parts)
  const n = f32x4.nearest(f32x4.mul(x, f32x4.splat(1.4426950408889634)));
  let r = f32x4.sub(x, f32x4.mul(n, f32x4.splat(0.693359375)));
  r = f32x4.sub(r, f32x4.mul(n, f32x4.splat(-2.12194440e-4)));
  // Taylor/minimax to degree 6 on |r| <= ln2/2
  let p = f32x4.add(f32x4.splat(1.0 / 120.0), f32x4.mul(r, f32x4.splat(1.0 / 720.0)));
  p = f32x4.add(f32x4.splat(1.0 / 24.0), f32x4.mul(r, p));
  p = f32x4.add(f32x4.splat(1.0 / 6.0), f32x4.mul(r, p));
  p = f32x4.add(f32x4.splat(0.5), f32x4.mul(r, p));
  p = f32x4.add(f32x4.splat(1.0), f32x4.mul(r, p));
  p = f32x4.add(f32x4.splat(1.0), f32x4.mul(r, p));
  // scale by 2^n through the exponent bits
  const ni = i32x4.trunc_sat_f32x4_s(n);
  return i32x4.add(p, i32x4.shl(ni, 23));
}

// Multiply the product accumulators of every neuron, over concept tiles [tileStart, tileEnd), by their
// factors from one block of probe images (threads split the tiles):
//   acc[k, m] *= c[t] + p[t] · Q[rows[t], m]   for t in [offsets[k], offsets[k+1])
// then renormalise: acc keeps the mantissa in [1, 2), ex (i32) gains the binary exponent, so that
// Σ_t log(c_t + p_t·Q) = log(acc) + ex·ln2 never under- or overflows. `g` factors are multiplied between
// renormalisations; the caller picks g so that min(c)^g stays a normal float. Concepts are processed in
// tiles of `tile` floats so that the tile of Q stays in cache while every neuron reads it. acc and ex are
// stored tile-major: tile j (concepts [j·tile, j·tile + tw)) is a K×tw row-major block starting at float
// j·tile·K, so the neurons of one tile are contiguous in memory.
// `fresh` (one byte per neuron): 1 when the neuron has no factor yet, so its accumulator starts at 1
// instead of being read (saves a pass that initialises K·width floats); the caller clears it afterwards.
export function mulBlock(
  acc: usize, ex: usize, width: i32, q: usize, offsets: usize, rows: usize, ps: usize, cs: usize,
  nNeurons: i32, g: i32, tile: i32, tileStart: i32, tileEnd: i32, fresh: usize,
): void {
  const rowBytes = <usize>width << 2;
  const mantMask = i32x4.splat(0x007fffff);
  const one = i32x4.splat(0x3f800000);
  const bias = i32x4.splat(127);
  const tLast = min(width, tileEnd * tile);
  for (let t0 = tileStart * tile; t0 < tLast; t0 += tile) {
    const tileOff = <usize>t0 << 2;
    const tileBytes = <usize>min(tile, width - t0) << 2;
    for (let k = 0; k < nNeurons; k++) {
      let t = load<i32>(offsets + (<usize>k << 2));
      const tEnd = load<i32>(offsets + (<usize>(k + 1) << 2));
      if (t == tEnd) continue;
      const blockOff = (<usize>t0 * <usize>nNeurons + <usize>k * <usize>(tileBytes >> 2)) << 2;
      const a0 = acc + blockOff;
      const e0 = ex + blockOff;
      if (load<u8>(fresh + <usize>k)) {
        const oneF = f32x4.splat(1);
        for (let off: usize = 0; off < tileBytes; off += 16) v128.store(a0 + off, oneF);
      }
      while (t < tEnd) {
        const gEnd = min(tEnd, t + g);
        for (; t + 1 < gEnd; t += 2) {
          const row1 = q + <usize>load<i32>(rows + (<usize>t << 2)) * rowBytes + tileOff;
          const row2 = q + <usize>load<i32>(rows + (<usize>(t + 1) << 2)) * rowBytes + tileOff;
          const p1 = f32x4.splat(load<f32>(ps + (<usize>t << 2)));
          const c1 = f32x4.splat(load<f32>(cs + (<usize>t << 2)));
          const p2 = f32x4.splat(load<f32>(ps + (<usize>(t + 1) << 2)));
          const c2 = f32x4.splat(load<f32>(cs + (<usize>(t + 1) << 2)));
          for (let off: usize = 0; off < tileBytes; off += 16) {
            const f1 = f32x4.add(c1, f32x4.mul(p1, v128.load(row1 + off)));
            const f2 = f32x4.add(c2, f32x4.mul(p2, v128.load(row2 + off)));
            v128.store(a0 + off, f32x4.mul(v128.load(a0 + off), f32x4.mul(f1, f2)));
          }
        }
        if (t < gEnd) {
          const row = q + <usize>load<i32>(rows + (<usize>t << 2)) * rowBytes + tileOff;
          const p = f32x4.splat(load<f32>(ps + (<usize>t << 2)));
          const c = f32x4.splat(load<f32>(cs + (<usize>t << 2)));
          for (let off: usize = 0; off < tileBytes; off += 16) {
            const a = v128.load(a0 + off);
            const x = v128.load(row + off);
            v128.store(a0 + off, f32x4.mul(a, f32x4.add(c, f32x4.mul(p, x))));
          }
          t++;
        }
        for (let off: usize = 0; off < tileBytes; off += 16) {
          const bits = v128.load(a0 + off);
          const e = i32x4.sub(i32x4.shr_u(bits, 23), bias);
          v128.store(e0 + off, i32x4.add(v128.load(e0 + off), e));
          v128.store(a0 + off, v128.or(v128.and(bits, mantMask), one));
        }
      }
    }
  }
}

// out[i] = log(acc[i]) + ex[i]·ln2 for count values (count a multiple of 4).
export function finishLog(acc: usize, ex: usize, out: usize, count: i32): void {
  const bytes = <usize>count << 2;
  const ln2 = f32x4.splat(LN2);
  for (let off: usize = 0; off < bytes; off += 16) {
    const l = vlog(v128.load(acc + off));
    const e = f32x4.convert_i32x4_s(v128.load(ex + off));
    v128.store(out + off, f32x4.add(l, f32x4.mul(e, ln2)));
  }
}

// For each column of S (rows×width, row-major): prior[col] = logsumexp over rows − logRows; then
// S[r, col] −= lambda · prior[col] in place. Writes prior to `prior` (width floats).
export function subtractPrior(s: usize, rows: i32, width: i32, prior: usize, lambda: f32, logRows: f32): void {
  const rowBytes = <usize>width << 2;
  // max per column
  for (let off: usize = 0; off < rowBytes; off += 16) v128.store(prior + off, f32x4.splat(-Infinity));
  for (let r = 0; r < rows; r++) {
    const base = s + <usize>r * rowBytes;
    for (let off: usize = 0; off < rowBytes; off += 16) {
      v128.store(prior + off, f32x4.max(v128.load(prior + off), v128.load(base + off)));
    }
  }
  // Σ exp(S − max) per column, accumulated in the scratch right after prior (width floats)
  const sum = prior + rowBytes;
  for (let off: usize = 0; off < rowBytes; off += 16) v128.store(sum + off, f32x4.splat(0));
  for (let r = 0; r < rows; r++) {
    const base = s + <usize>r * rowBytes;
    for (let off: usize = 0; off < rowBytes; off += 16) {
      const d = f32x4.sub(v128.load(base + off), v128.load(prior + off));
      v128.store(sum + off, f32x4.add(v128.load(sum + off), vexp(d)));
    }
  }
  const lam = f32x4.splat(lambda);
  const lk = f32x4.splat(logRows);
  for (let off: usize = 0; off < rowBytes; off += 16) {
    const pr = f32x4.sub(f32x4.add(v128.load(prior + off), vlog(v128.load(sum + off))), lk);
    v128.store(prior + off, pr);
  }
  for (let r = 0; r < rows; r++) {
    const base = s + <usize>r * rowBytes;
    for (let off: usize = 0; off < rowBytes; off += 16) {
      v128.store(base + off, f32x4.sub(v128.load(base + off), f32x4.mul(lam, v128.load(prior + off))));
    }
  }
}

// Test hooks for the vector log/exp: out[i] = f(x[i]) for count values (multiple of 4).
export function logVec(x: usize, out: usize, count: i32): void {
  const bytes = <usize>count << 2;
  for (let off: usize = 0; off < bytes; off += 16) v128.store(out + off, vlog(v128.load(x + off)));
}
export function expVec(x: usize, out: usize, count: i32): void {
  const bytes = <usize>count << 2;
  for (let off: usize = 0; off < bytes; off += 16) v128.store(out + off, vexp(v128.load(x + off)));
}

// |x|^p for 4 lanes; exact fast paths for p = 1, 2, 3.
// @ts-ignore: decorator
@inline
function vpowAbs(x: v128, p: f32): v128 {
  const a = f32x4.abs(x);
  if (p == 3) return f32x4.mul(f32x4.mul(a, a), a);
  if (p == 2) return f32x4.mul(a, a);
  if (p == 1) return a;
  const r = vexp(f32x4.mul(f32x4.splat(p), vlog(a)));
  return v128.andnot(r, f32x4.eq(a, f32x4.splat(0)));
}


// Generated comparator sequences on 8 keys held in registers (strides 4, 2, 1).
// @ts-ignore: decorator
@inline
function merge8Desc(p: usize): void {
  let x0 = v128.load(p + 0);
  let x1 = v128.load(p + 16);
  let x2 = v128.load(p + 32);
  let x3 = v128.load(p + 48);
  let x4 = v128.load(p + 64);
  let x5 = v128.load(p + 80);
  let x6 = v128.load(p + 96);
  let x7 = v128.load(p + 112);
  let t: v128;
  {
    t = i32x4.max_s(x0, x4); x4 = i32x4.min_s(x0, x4); x0 = t;
    t = i32x4.max_s(x1, x5); x5 = i32x4.min_s(x1, x5); x1 = t;
    t = i32x4.max_s(x2, x6); x6 = i32x4.min_s(x2, x6); x2 = t;
    t = i32x4.max_s(x3, x7); x7 = i32x4.min_s(x3, x7); x3 = t;
    t = i32x4.max_s(x0, x2); x2 = i32x4.min_s(x0, x2); x0 = t;
    t = i32x4.max_s(x1, x3); x3 = i32x4.min_s(x1, x3); x1 = t;
    t = i32x4.max_s(x4, x6); x6 = i32x4.min_s(x4, x6); x4 = t;
    t = i32x4.max_s(x5, x7); x7 = i32x4.min_s(x5, x7); x5 = t;
    t = i32x4.max_s(x0, x1); x1 = i32x4.min_s(x0, x1); x0 = t;
    t = i32x4.max_s(x2, x3); x3 = i32x4.min_s(x2, x3); x2 = t;
    t = i32x4.max_s(x4, x5); x5 = i32x4.min_s(x4, x5); x4 = t;
    t = i32x4.max_s(x6, x7); x7 = i32x4.min_s(x6, x7); x6 = t;
  }
  v128.store(p + 0, x0);
  v128.store(p + 16, x1);
  v128.store(p + 32, x2);
  v128.store(p + 48, x3);
  v128.store(p + 64, x4);
  v128.store(p + 80, x5);
  v128.store(p + 96, x6);
  v128.store(p + 112, x7);
}
// @ts-ignore: decorator
@inline
function merge8Asc(p: usize): void {
  let x0 = v128.load(p + 0);
  let x1 = v128.load(p + 16);
  let x2 = v128.load(p + 32);
  let x3 = v128.load(p + 48);
  let x4 = v128.load(p + 64);
  let x5 = v128.load(p + 80);
  let x6 = v128.load(p + 96);
  let x7 = v128.load(p + 112);
  let t: v128;
  {
    t = i32x4.min_s(x0, x4); x4 = i32x4.max_s(x0, x4); x0 = t;
    t = i32x4.min_s(x1, x5); x5 = i32x4.max_s(x1, x5); x1 = t;
    t = i32x4.min_s(x2, x6); x6 = i32x4.max_s(x2, x6); x2 = t;
    t = i32x4.min_s(x3, x7); x7 = i32x4.max_s(x3, x7); x3 = t;
    t = i32x4.min_s(x0, x2); x2 = i32x4.max_s(x0, x2); x0 = t;
    t = i32x4.min_s(x1, x3); x3 = i32x4.max_s(x1, x3); x1 = t;
    t = i32x4.min_s(x4, x6); x6 = i32x4.max_s(x4, x6); x4 = t;
    t = i32x4.min_s(x5, x7); x7 = i32x4.max_s(x5, x7); x5 = t;
    t = i32x4.min_s(x0, x1); x1 = i32x4.max_s(x0, x1); x0 = t;
    t = i32x4.min_s(x2, x3); x3 = i32x4.max_s(x2, x3); x2 = t;
    t = i32x4.min_s(x4, x5); x5 = i32x4.max_s(x4, x5); x4 = t;
    t = i32x4.min_s(x6, x7); x7 = i32x4.max_s(x6, x7); x6 = t;
  }
  v128.store(p + 0, x0);
  v128.store(p + 16, x1);
  v128.store(p + 32, x2);
  v128.store(p + 48, x3);
  v128.store(p + 64, x4);
  v128.store(p + 80, x5);
  v128.store(p + 96, x6);
  v128.store(p + 112, x7);
}
// @ts-ignore: decorator
@inline
function sort8Desc(p: usize): void {
  let x0 = v128.load(p + 0);
  let x1 = v128.load(p + 16);
  let x2 = v128.load(p + 32);
  let x3 = v128.load(p + 48);
  let x4 = v128.load(p + 64);
  let x5 = v128.load(p + 80);
  let x6 = v128.load(p + 96);
  let x7 = v128.load(p + 112);
  let t: v128;
  {
    t = i32x4.max_s(x0, x1); x1 = i32x4.min_s(x0, x1); x0 = t;
    t = i32x4.min_s(x2, x3); x3 = i32x4.max_s(x2, x3); x2 = t;
    t = i32x4.max_s(x4, x5); x5 = i32x4.min_s(x4, x5); x4 = t;
    t = i32x4.min_s(x6, x7); x7 = i32x4.max_s(x6, x7); x6 = t;
    t = i32x4.max_s(x0, x2); x2 = i32x4.min_s(x0, x2); x0 = t;
    t = i32x4.max_s(x1, x3); x3 = i32x4.min_s(x1, x3); x1 = t;
    t = i32x4.min_s(x4, x6); x6 = i32x4.max_s(x4, x6); x4 = t;
    t = i32x4.min_s(x5, x7); x7 = i32x4.max_s(x5, x7); x5 = t;
    t = i32x4.max_s(x0, x1); x1 = i32x4.min_s(x0, x1); x0 = t;
    t = i32x4.max_s(x2, x3); x3 = i32x4.min_s(x2, x3); x2 = t;
    t = i32x4.min_s(x4, x5); x5 = i32x4.max_s(x4, x5); x4 = t;
    t = i32x4.min_s(x6, x7); x7 = i32x4.max_s(x6, x7); x6 = t;
    t = i32x4.max_s(x0, x4); x4 = i32x4.min_s(x0, x4); x0 = t;
    t = i32x4.max_s(x1, x5); x5 = i32x4.min_s(x1, x5); x1 = t;
    t = i32x4.max_s(x2, x6); x6 = i32x4.min_s(x2, x6); x2 = t;
    t = i32x4.max_s(x3, x7); x7 = i32x4.min_s(x3, x7); x3 = t;
    t = i32x4.max_s(x0, x2); x2 = i32x4.min_s(x0, x2); x0 = t;
    t = i32x4.max_s(x1, x3); x3 = i32x4.min_s(x1, x3); x1 = t;
    t = i32x4.max_s(x4, x6); x6 = i32x4.min_s(x4, x6); x4 = t;
    t = i32x4.max_s(x5, x7); x7 = i32x4.min_s(x5, x7); x5 = t;
    t = i32x4.max_s(x0, x1); x1 = i32x4.min_s(x0, x1); x0 = t;
    t = i32x4.max_s(x2, x3); x3 = i32x4.min_s(x2, x3); x2 = t;
    t = i32x4.max_s(x4, x5); x5 = i32x4.min_s(x4, x5); x4 = t;
    t = i32x4.max_s(x6, x7); x7 = i32x4.min_s(x6, x7); x6 = t;
  }
  v128.store(p + 0, x0);
  v128.store(p + 16, x1);
  v128.store(p + 32, x2);
  v128.store(p + 48, x3);
  v128.store(p + 64, x4);
  v128.store(p + 80, x5);
  v128.store(p + 96, x6);
  v128.store(p + 112, x7);
}
// @ts-ignore: decorator
@inline
function sort8Asc(p: usize): void {
  let x0 = v128.load(p + 0);
  let x1 = v128.load(p + 16);
  let x2 = v128.load(p + 32);
  let x3 = v128.load(p + 48);
  let x4 = v128.load(p + 64);
  let x5 = v128.load(p + 80);
  let x6 = v128.load(p + 96);
  let x7 = v128.load(p + 112);
  let t: v128;
  {
    t = i32x4.max_s(x0, x1); x1 = i32x4.min_s(x0, x1); x0 = t;
    t = i32x4.min_s(x2, x3); x3 = i32x4.max_s(x2, x3); x2 = t;
    t = i32x4.max_s(x4, x5); x5 = i32x4.min_s(x4, x5); x4 = t;
    t = i32x4.min_s(x6, x7); x7 = i32x4.max_s(x6, x7); x6 = t;
    t = i32x4.max_s(x0, x2); x2 = i32x4.min_s(x0, x2); x0 = t;
    t = i32x4.max_s(x1, x3); x3 = i32x4.min_s(x1, x3); x1 = t;
    t = i32x4.min_s(x4, x6); x6 = i32x4.max_s(x4, x6); x4 = t;
    t = i32x4.min_s(x5, x7); x7 = i32x4.max_s(x5, x7); x5 = t;
    t = i32x4.max_s(x0, x1); x1 = i32x4.min_s(x0, x1); x0 = t;
    t = i32x4.max_s(x2, x3); x3 = i32x4.min_s(x2, x3); x2 = t;
    t = i32x4.min_s(x4, x5); x5 = i32x4.max_s(x4, x5); x4 = t;
    t = i32x4.min_s(x6, x7); x7 = i32x4.max_s(x6, x7); x6 = t;
    t = i32x4.min_s(x0, x4); x4 = i32x4.max_s(x0, x4); x0 = t;
    t = i32x4.min_s(x1, x5); x5 = i32x4.max_s(x1, x5); x1 = t;
    t = i32x4.min_s(x2, x6); x6 = i32x4.max_s(x2, x6); x2 = t;
    t = i32x4.min_s(x3, x7); x7 = i32x4.max_s(x3, x7); x3 = t;
    t = i32x4.min_s(x0, x2); x2 = i32x4.max_s(x0, x2); x0 = t;
    t = i32x4.min_s(x1, x3); x3 = i32x4.max_s(x1, x3); x1 = t;
    t = i32x4.min_s(x4, x6); x6 = i32x4.max_s(x4, x6); x4 = t;
    t = i32x4.min_s(x5, x7); x7 = i32x4.max_s(x5, x7); x5 = t;
    t = i32x4.min_s(x0, x1); x1 = i32x4.max_s(x0, x1); x0 = t;
    t = i32x4.min_s(x2, x3); x3 = i32x4.max_s(x2, x3); x2 = t;
    t = i32x4.min_s(x4, x5); x5 = i32x4.max_s(x4, x5); x4 = t;
    t = i32x4.min_s(x6, x7); x7 = i32x4.max_s(x6, x7); x6 = t;
  }
  v128.store(p + 0, x0);
  v128.store(p + 16, x1);
  v128.store(p + 32, x2);
  v128.store(p + 48, x3);
  v128.store(p + 64, x4);
  v128.store(p + 80, x5);
  v128.store(p + 96, x6);
  v128.store(p + 112, x7);
}

// One bitonic pass over memory: compare-exchange i with i + stride for every i in the merges of `size`.
// @ts-ignore: decorator
@inline
function bitonicPass(keys: usize, n2: i32, size: i32, stride: i32): void {
  const sb = <usize>stride << 4;
  for (let base = 0; base < n2; base += stride << 1) {
    const desc = (base & size) == 0;
    const end = (<usize>(base + stride) << 4) + keys;
    if (desc) {
      for (let a = (<usize>base << 4) + keys; a < end; a += 16) {
        const x = v128.load(a);
        const y = v128.load(a + sb);
        v128.store(a, i32x4.max_s(x, y));
        v128.store(a + sb, i32x4.min_s(x, y));
      }
    } else {
      for (let a = (<usize>base << 4) + keys; a < end; a += 16) {
        const x = v128.load(a);
        const y = v128.load(a + sb);
        v128.store(a, i32x4.min_s(x, y));
        v128.store(a + sb, i32x4.max_s(x, y));
      }
    }
  }
}

// Sorts n2 (a power of two) 4-lane i32 keys descending, lane by lane, with a bitonic network
// (i32x4.max_s/min_s: one instruction each, no payload to carry). Blocks of 8 keys are sorted, and every
// merge's last three stages run, in registers.
function bitonicSortI32(keys: usize, n2: i32): void {
  if (n2 < 8) {
    for (let size = 2; size <= n2; size <<= 1) {
      for (let stride = size >> 1; stride > 0; stride >>= 1) bitonicPass(keys, n2, size, stride);
    }
    return;
  }
  for (let base = 0; base < n2; base += 8) {
    if ((base & 8) == 0) sort8Desc(keys + (<usize>base << 4));
    else sort8Asc(keys + (<usize>base << 4));
  }
  for (let size = 16; size <= n2; size <<= 1) {
    for (let stride = size >> 1; stride >= 8; stride >>= 1) bitonicPass(keys, n2, size, stride);
    for (let base = 0; base < n2; base += 8) {
      if ((base & size) == 0) merge8Desc(keys + (<usize>base << 4));
      else merge8Asc(keys + (<usize>base << 4));
    }
  }
}

// Re-sorts, in one lane, the run of keys [j0, j1] whose high bits are equal (the similarities agreed to
// the precision kept in the key) by the exact similarity, descending, then position, ascending.
function fixRun(keys: usize, lane: i32, j0: i32, j1: i32, bits: i32, pcCol: usize, rows: usize, rowBytes: usize, tmp: usize): void {
  const lowMask = (1 << bits) - 1;
  const hi = load<i32>(keys + (<usize>j0 << 4) + (<usize>lane << 2)) & ~lowMask;
  const len = j1 - j0 + 1;
  for (let t = 0; t < len; t++) {
    const pos = load<i32>(keys + (<usize>(j0 + t) << 4) + (<usize>lane << 2)) & lowMask;
    const c = load<f32>(pcCol + <usize>load<i32>(rows + (<usize>pos << 2)) * rowBytes + (<usize>lane << 2));
    // insertion sort into tmp (pos: i32 at tmp + 8t, c: f32 at tmp + 8t + 4)
    let u = t;
    while (u > 0) {
      const pc2 = load<f32>(tmp + (<usize>(u - 1) << 3) + 4);
      const pp = load<i32>(tmp + (<usize>(u - 1) << 3));
      if (pc2 > c || (pc2 == c && pp < pos)) break;
      store<i32>(tmp + (<usize>u << 3), pp);
      store<f32>(tmp + (<usize>u << 3) + 4, pc2);
      u--;
    }
    store<i32>(tmp + (<usize>u << 3), pos);
    store<f32>(tmp + (<usize>u << 3) + 4, c);
  }
  for (let t = 0; t < len; t++) {
    store<i32>(keys + (<usize>(j0 + t) << 4) + (<usize>lane << 2), hi | load<i32>(tmp + (<usize>t << 3)));
  }
}

// rank_reorder for one neuron over a block of concepts.
//   pc: the CLIP similarities of the probe images, rows × width (row-major, width % 4 == 0)
//   rows[j] (i32, j < n): the row in pc of the neuron's j-th most activating image
//   v[j] (f32): that image's activation (descending)
// For each concept column, the n images are sorted by similarity c descending (ties: lower j first), so
// the i-th largest c receives v'_i = v[i]; errOut[col] = mean_j |v_j − v'_j|^p, meanOut[col] = mean c.
// Sorting: each key packs an order-preserving integer image of c (its low `bits` bits cleared) with the
// image position j in those bits, and a 4-lane bitonic network sorts the keys alone. Runs whose cleared
// bits hid a difference are then re-sorted exactly, so the result equals a full sort by c.
function rankReorder(
  pc: usize, width: i32, rows: usize, n: i32, n2: i32, v: usize, p: f32, scratch: usize, errOut: usize, meanOut: usize,
): void {
  const rowBytes = <usize>width << 2;
  const keys = scratch;
  const tmp = scratch + (<usize>n2 << 4);
  const bits = ctz(n2);
  const lowMask = i32x4.splat((1 << bits) - 1);
  const hiMask = i32x4.splat(~((1 << bits) - 1));
  const ninv = f32x4.splat(<f32>1.0 / <f32>n);
  const zero = f32x4.splat(0);
  for (let col: usize = 0; col < rowBytes; col += 16) {
    let sum = f32x4.splat(0);
    for (let j = 0; j < n; j++) {
      // + 0 turns -0 into +0, so equal floats get equal keys
      const c = f32x4.add(v128.load(pc + <usize>load<i32>(rows + (<usize>j << 2)) * rowBytes + col), zero);
      sum = f32x4.add(sum, c);
      const sortable = v128.xor(c, v128.and(i32x4.shr_s(c, 31), i32x4.splat(0x7fffffff)));
      v128.store(keys + (<usize>j << 4), v128.or(v128.and(sortable, hiMask), i32x4.splat(j)));
    }
    for (let j = n; j < n2; j++) v128.store(keys + (<usize>j << 4), i32x4.splat(i32.MIN_VALUE));
    bitonicSortI32(keys, n2);
    // exactness: neighbours with equal high bits may be out of order by c
    for (let j = 0; j + 1 < n; j++) {
      const a = v128.and(v128.load(keys + (<usize>j << 4)), hiMask);
      const b = v128.and(v128.load(keys + (<usize>(j + 1) << 4)), hiMask);
      if (!v128.any_true(i32x4.eq(a, b))) continue;
      for (let lane = 0; lane < 4; lane++) {
        const hiL = load<i32>(keys + (<usize>j << 4) + (<usize>lane << 2)) & ~((1 << bits) - 1);
        if ((load<i32>(keys + (<usize>(j + 1) << 4) + (<usize>lane << 2)) & ~((1 << bits) - 1)) != hiL) continue;
        // only start a run at its first element
        if (j > 0 && (load<i32>(keys + (<usize>(j - 1) << 4) + (<usize>lane << 2)) & ~((1 << bits) - 1)) == hiL) continue;
        let j1 = j + 1;
        while (j1 + 1 < n && (load<i32>(keys + (<usize>(j1 + 1) << 4) + (<usize>lane << 2)) & ~((1 << bits) - 1)) == hiL) j1++;
        fixRun(keys, lane, j, j1, bits, pc + col, rows, rowBytes, tmp);
      }
    }
    let err = f32x4.splat(0);
    for (let j = 0; j < n; j++) {
      const pos = v128.and(v128.load(keys + (<usize>j << 4)), lowMask);
      let vp = f32x4.splat(load<f32>(v + (<usize>i32x4.extract_lane(pos, 0) << 2)));
      vp = f32x4.replace_lane(vp, 1, load<f32>(v + (<usize>i32x4.extract_lane(pos, 1) << 2)));
      vp = f32x4.replace_lane(vp, 2, load<f32>(v + (<usize>i32x4.extract_lane(pos, 2) << 2)));
      vp = f32x4.replace_lane(vp, 3, load<f32>(v + (<usize>i32x4.extract_lane(pos, 3) << 2)));
      // rank j holds image pos: that image receives v_j; its own activation is v_pos
      const d = f32x4.sub(vp, f32x4.splat(load<f32>(v + (<usize>j << 2))));
      err = f32x4.add(err, vpowAbs(d, p));
    }
    v128.store(errOut + col, f32x4.mul(err, ninv));
    v128.store(meanOut + col, f32x4.mul(sum, ninv));
  }
}

// rankReorder for neurons [kStart, kEnd): neuron k's rows and activations are at rowsAll + k·n·4 and
// vAll + k·n·4; its errors and means go to row k (width floats) of errOut / meanOut.
export function rankReorderNeurons(
  pc: usize, width: i32, rowsAll: usize, vAll: usize, n: i32, n2: i32, p: f32, scratch: usize,
  errOut: usize, meanOut: usize, kStart: i32, kEnd: i32,
): void {
  const nBytes = <usize>n << 2;
  const rowBytes = <usize>width << 2;
  for (let k = kStart; k < kEnd; k++) {
    rankReorder(
      pc, width, rowsAll + <usize>k * nBytes, n, n2, vAll + <usize>k * nBytes, p, scratch,
      errOut + <usize>k * rowBytes, meanOut + <usize>k * rowBytes,
    );
  }
}

// out[c·rows + i] = Σ_j a[i, j]·t[c, j] in float64 for the rows×d float32 matrix `a` and the nCols×d float32
// rows `t`, summed exactly as trust-metrics.similarityColumn does (four partial sums over j mod 4, products
// of floats widened to f64, then ((s0 + s1) + s2) + s3), so that the results are bit-identical.
export function dotColumns(a: usize, rows: i32, d: i32, t: usize, nCols: i32, out: usize): void {
  const d4 = d & ~3;
  const rowBytes = <usize>d << 2;
  for (let c = 0; c < nCols; c++) {
    const tc = t + <usize>c * rowBytes;
    const oc = out + ((<usize>c * <usize>rows) << 3);
    for (let i = 0; i < rows; i++) {
      const ai = a + <usize>i * rowBytes;
      let s01 = f64x2.splat(0);
      let s23 = f64x2.splat(0);
      for (let j = 0; j < d4; j += 4) {
        const va = v128.load(ai + (<usize>j << 2));
        const vt = v128.load(tc + (<usize>j << 2));
        s01 = f64x2.add(s01, f64x2.mul(f64x2.promote_low_f32x4(va), f64x2.promote_low_f32x4(vt)));
        const ha = v128.shuffle<f32>(va, va, 2, 3, 0, 1);
        const ht = v128.shuffle<f32>(vt, vt, 2, 3, 0, 1);
        s23 = f64x2.add(s23, f64x2.mul(f64x2.promote_low_f32x4(ha), f64x2.promote_low_f32x4(ht)));
      }
      let s0 = f64x2.extract_lane(s01, 0);
      for (let j = d4; j < d; j++) s0 += <f64>load<f32>(ai + (<usize>j << 2)) * <f64>load<f32>(tc + (<usize>j << 2));
      store<f64>(oc + (<usize>i << 3), s0 + f64x2.extract_lane(s01, 1) + f64x2.extract_lane(s23, 0) + f64x2.extract_lane(s23, 1));
    }
  }
}
