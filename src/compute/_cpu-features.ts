/**
 * What the CPU's int8 kernels can take (the CPU's flags from platform.host; internal).
 *
 * onnxruntime's x86 U8S8 GEMM without VNNI multiplies with `vpmaddubsw`, which adds two uint8×int8 products
 * into a saturating int16: 2·255·127 overflows it, 2·255·63 does not. So on x86 CPUs without AVX-VNNI or
 * AVX512-VNNI signed weights must stay within ±63 (7 bits, onnxruntime's own `reduce_range`); with VNNI
 * (`vpdpbusd`, 32-bit accumulation) and on Arm (`sdot`) the full ±127 range is exact.
 */
import { platform } from '#platform';

let cached: 127 | 63 | undefined;

/** The largest |q| an int8 weight may take on this CPU's onnxruntime kernels (127, or 63 without VNNI). */
export function int8WeightMax(): 127 | 63 {
  if (cached !== undefined) return cached;
  cached = 127;
  if (platform.host.arch === 'x64') {
    // no flags known (not Linux): keep 7 bits, which is exact everywhere
    const flags = platform.host.cpuFlags();
    if (!['avx512_vnni', 'avx_vnni', 'avx512vnni'].some((f) => flags.has(f))) cached = 63;
  }
  return cached;
}
