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

// Multiply the product accumulators of neurons [kStart, kEnd) by their factors from one block of probe
// images (threads split the neurons; nNeurons is the layout's neuron count):
//   acc[k, m] *= c[t] + p[t] · Q[rows[t], m]   for t in [offsets[k], offsets[k+1])
// then renormalise: acc keeps the mantissa in [1, 2), ex (i32) gains the binary exponent, so that
// Σ_t log(c_t + p_t·Q) = log(acc) + ex·ln2 never under- or overflows. `g` factors are multiplied between
// renormalisations; the caller picks g so that min(c)^g stays a normal float. Concepts are processed in
// tiles of `tile` floats so that the tile of Q stays in cache while every neuron reads it. acc and ex are
// stored tile-major: tile j (concepts [j·tile, j·tile + tw)) is a K×tw row-major block starting at float
// j·tile·K, so the neurons of one tile are contiguous in memory.
export function mulBlock(
  acc: usize, ex: usize, width: i32, q: usize, offsets: usize, rows: usize, ps: usize, cs: usize,
  nNeurons: i32, g: i32, tile: i32, kStart: i32, kEnd: i32,
): void {
  const rowBytes = <usize>width << 2;
  const mantMask = i32x4.splat(0x007fffff);
  const one = i32x4.splat(0x3f800000);
  const bias = i32x4.splat(127);
  for (let t0 = 0; t0 < width; t0 += tile) {
    const tileOff = <usize>t0 << 2;
    const tileBytes = <usize>min(tile, width - t0) << 2;
    for (let k = kStart; k < kEnd; k++) {
      let t = load<i32>(offsets + (<usize>k << 2));
      const tEnd = load<i32>(offsets + (<usize>(k + 1) << 2));
      if (t == tEnd) continue;
      const blockOff = (<usize>t0 * <usize>nNeurons + <usize>k * <usize>(tileBytes >> 2)) << 2;
      const a0 = acc + blockOff;
      const e0 = ex + blockOff;
      while (t < tEnd) {
        const gEnd = min(tEnd, t + g);
        for (; t < gEnd; t++) {
          const row = q + <usize>load<i32>(rows + (<usize>t << 2)) * rowBytes + tileOff;
          const p = f32x4.splat(load<f32>(ps + (<usize>t << 2)));
          const c = f32x4.splat(load<f32>(cs + (<usize>t << 2)));
          for (let off: usize = 0; off < tileBytes; off += 16) {
            const a = v128.load(a0 + off);
            const x = v128.load(row + off);
            v128.store(a0 + off, f32x4.mul(a, f32x4.add(c, f32x4.mul(p, x))));
          }
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


// One compare-exchange of the bitonic network on 4 lanes: afterwards key i >= key j when `desc`
// (else key i <= key j); payloads follow their keys. pmax/pmin map to single instructions; the payload
// swap is an XOR swap under the lane mask.
// @ts-ignore: decorator
@inline
function cx(keys: usize, pay: usize, pi: usize, pj: usize, desc: bool): void {
  const ki = v128.load(keys + pi);
  const kj = v128.load(keys + pj);
  const vi = v128.load(pay + pi);
  const vj = v128.load(pay + pj);
  const swap = desc ? f32x4.gt(kj, ki) : f32x4.gt(ki, kj);
  if (desc) {
    v128.store(keys + pi, f32x4.pmax(ki, kj));
    v128.store(keys + pj, f32x4.pmin(kj, ki));
  } else {
    v128.store(keys + pi, f32x4.pmin(kj, ki));
    v128.store(keys + pj, f32x4.pmax(ki, kj));
  }
  const dv = v128.and(v128.xor(vi, vj), swap);
  v128.store(pay + pi, v128.xor(vi, dv));
  v128.store(pay + pj, v128.xor(vj, dv));
}

// Sorts n2 (a power of two) 4-lane keys with payloads, descending, lane by lane (each lane is one
// concept), with a bitonic network. The last two stages of every merge (strides 2 and 1) run on
// 4-element blocks held in registers.
function bitonicSort(keys: usize, pay: usize, n2: i32): void {
  for (let size = 2; size <= n2; size <<= 1) {
    let stride = size >> 1;
    const fuse = size >= 4;
    const last = fuse ? 4 : 1;
    for (; stride >= last; stride >>= 1) {
      if (fuse && stride == 2) break;
      const sb = <usize>stride << 4;
      for (let base = 0; base < n2; base += stride << 1) {
        const desc = (base & size) == 0;
        const end = <usize>(base + stride) << 4;
        if (stride >= 2) {
          // two independent compare-exchanges per iteration
          if (desc) {
            for (let o = <usize>base << 4; o < end; o += 32) {
              cx(keys, pay, o, o + sb, true);
              cx(keys, pay, o + 16, o + 16 + sb, true);
            }
          } else {
            for (let o = <usize>base << 4; o < end; o += 32) {
              cx(keys, pay, o, o + sb, false);
              cx(keys, pay, o + 16, o + 16 + sb, false);
            }
          }
        } else {
          cx(keys, pay, <usize>base << 4, (<usize>base << 4) + sb, desc);
        }
      }
    }
    if (!fuse) continue;
    for (let base = 0; base < n2; base += 4) {
      const desc = (base & size) == 0;
      const o = <usize>base << 4;
      let k0 = v128.load(keys + o);
      let k1 = v128.load(keys + o + 16);
      let k2 = v128.load(keys + o + 32);
      let k3 = v128.load(keys + o + 48);
      let v0 = v128.load(pay + o);
      let v1 = v128.load(pay + o + 16);
      let v2 = v128.load(pay + o + 32);
      let v3 = v128.load(pay + o + 48);
      // stride 2: (0,2), (1,3); then stride 1: (0,1), (2,3)
      let m = desc ? f32x4.gt(k2, k0) : f32x4.gt(k0, k2);
      let a = desc ? f32x4.pmax(k0, k2) : f32x4.pmin(k2, k0);
      let b = desc ? f32x4.pmin(k2, k0) : f32x4.pmax(k0, k2);
      let dv = v128.and(v128.xor(v0, v2), m);
      k0 = a; k2 = b; v0 = v128.xor(v0, dv); v2 = v128.xor(v2, dv);
      m = desc ? f32x4.gt(k3, k1) : f32x4.gt(k1, k3);
      a = desc ? f32x4.pmax(k1, k3) : f32x4.pmin(k3, k1);
      b = desc ? f32x4.pmin(k3, k1) : f32x4.pmax(k1, k3);
      dv = v128.and(v128.xor(v1, v3), m);
      k1 = a; k3 = b; v1 = v128.xor(v1, dv); v3 = v128.xor(v3, dv);
      m = desc ? f32x4.gt(k1, k0) : f32x4.gt(k0, k1);
      a = desc ? f32x4.pmax(k0, k1) : f32x4.pmin(k1, k0);
      b = desc ? f32x4.pmin(k1, k0) : f32x4.pmax(k0, k1);
      dv = v128.and(v128.xor(v0, v1), m);
      k0 = a; k1 = b; v0 = v128.xor(v0, dv); v1 = v128.xor(v1, dv);
      m = desc ? f32x4.gt(k3, k2) : f32x4.gt(k2, k3);
      a = desc ? f32x4.pmax(k2, k3) : f32x4.pmin(k3, k2);
      b = desc ? f32x4.pmin(k3, k2) : f32x4.pmax(k2, k3);
      dv = v128.and(v128.xor(v2, v3), m);
      k2 = a; k3 = b; v2 = v128.xor(v2, dv); v3 = v128.xor(v3, dv);
      v128.store(keys + o, k0);
      v128.store(keys + o + 16, k1);
      v128.store(keys + o + 32, k2);
      v128.store(keys + o + 48, k3);
      v128.store(pay + o, v0);
      v128.store(pay + o + 16, v1);
      v128.store(pay + o + 32, v2);
      v128.store(pay + o + 48, v3);
    }
  }
}

// rank_reorder for one neuron over a block of concepts.
//   pc: the CLIP similarities of the probe images, rows × width (row-major, width % 4 == 0)
//   rows[j] (i32, j < n): the row in pc of the neuron's j-th most activating image
//   v[j] (f32): that image's activation (descending)
// For each concept column: sort the n pairs (c = pc[rows[j]], v[j]) by c descending with a bitonic
// network (4 concepts per SIMD lane group; n2 = next power of two >= n, padded with c = -inf), so the
// i-th largest c receives v'_i; write errOut[col] = mean_i |v_i − v'_i|^p and meanOut[col] = mean c.
function rankReorder(
  pc: usize, width: i32, rows: usize, n: i32, n2: i32, v: usize, p: f32, scratch: usize, errOut: usize, meanOut: usize,
): void {
  const rowBytes = <usize>width << 2;
  const keys = scratch;
  const pay = scratch + (<usize>n2 << 4);
  const ninv = f32x4.splat(<f32>1.0 / <f32>n);
  for (let col: usize = 0; col < rowBytes; col += 16) {
    let sum = f32x4.splat(0);
    for (let j = 0; j < n; j++) {
      const key = v128.load(pc + <usize>load<i32>(rows + (<usize>j << 2)) * rowBytes + col);
      sum = f32x4.add(sum, key);
      v128.store(keys + (<usize>j << 4), key);
      v128.store(pay + (<usize>j << 4), f32x4.splat(load<f32>(v + (<usize>j << 2))));
    }
    for (let j = n; j < n2; j++) {
      v128.store(keys + (<usize>j << 4), f32x4.splat(-Infinity));
      v128.store(pay + (<usize>j << 4), f32x4.splat(0));
    }
    bitonicSort(keys, pay, n2);
    let err = f32x4.splat(0);
    for (let j = 0; j < n; j++) {
      const d = f32x4.sub(v128.load(pay + (<usize>j << 4)), f32x4.splat(load<f32>(v + (<usize>j << 2))));
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
