/**
 * Benchmark of the trust figures (src/pipeline/trust.ts) from cached features (not a test).
 *
 *   npm run bench:trust                              # ResNet-50's 5 layers (3904 neurons), N 500, M 3000
 *   node dist/bench/trust.js --similarity cos_similarity --bootstraps 20 --permutations 20
 *
 * Synthetic features of the stated sizes: image and concept features are Gaussian (d = 512); neuron k of a
 * layer is the CLIP cosine of the image with concept k (mod M) plus noise of 1× the signal (sanity.ts).
 * Prints, per layer and in all, the seconds of the dissection's own similarity run and of the trust figures
 * (B bootstrap + R permutation + 2 runs of the similarity function and the per-neuron metrics), their ratio
 * (the machine is shared: compare ratios within one run), the CPU seconds of both (all threads; less
 * sensitive to other processes than wall-clock time), and the process's peak RSS.
 */
import { parseArgs } from 'node:util';
import { computeSimilarity } from '../src/compute/similarity/index.js';
import type { Matrix } from '../src/numeric/matrix.js';
import { gaussianSampler, mulberry32 } from '../src/numeric/random.js';
import { normalizeRows } from '../src/numeric/reductions.js';
import { checkSimilarityName } from '../src/numeric/similarity-options.js';
import { syntheticActivations } from '../src/pipeline/sanity.js';
import { computeLayerTrust } from '../src/pipeline/trust.js';

const { values } = parseArgs({
  options: {
    similarity: { type: 'string', default: 'soft_wpmi' },
    n: { type: 'string', default: '500' },
    m: { type: 'string', default: '3000' },
    layers: { type: 'string', default: '64,256,512,1024,2048' },
    bootstraps: { type: 'string', default: '20' },
    permutations: { type: 'string', default: '20' },
  },
});
const similarity = checkSimilarityName(values.similarity as string);
const N = Number(values.n);
const M = Number(values.m);
const D = 512;
const sizes = (values.layers as string).split(',').map(Number);
const g = gaussianSampler(mulberry32(1));
const gauss = (r: number, c: number): Matrix => ({
  rows: r,
  cols: c,
  data: Float32Array.from({ length: r * c }, g),
});
const I = gauss(N, D);
const T = gauss(M, D);
const In = normalizeRows(I);
const Tn = normalizeRows(T);
const names = Array.from({ length: M }, (_, i) => `c${i}`);
console.log(
  `trust bench: ${similarity}, N ${N} images, M ${M} concepts, layers ${sizes.join('+')} = ${sizes.reduce((a, b) => a + b, 0)} neurons, B ${values.bootstraps}, R ${values.permutations}`,
);
let tDissect = 0;
let tTrust = 0;
let tReruns = 0;
let cpuDissect = 0;
let cpuTrust = 0;
/** CPU seconds of this process (every thread) since `from`. */
const cpuSince = (from: NodeJS.CpuUsage) => {
  const u = process.cpuUsage(from);
  return (u.user + u.system) / 1e6;
};
for (const [li, K] of sizes.entries()) {
  const A = syntheticActivations(
    In,
    Tn,
    Array.from({ length: K }, (_, k) => ({ concepts: [(k * 7 + li) % M] })),
    1,
    mulberry32(li),
  );
  let t = performance.now();
  let cpu = process.cpuUsage();
  const r = await computeSimilarity(similarity, { imageFeatures: I, textFeatures: T, activations: A });
  const dissect = (performance.now() - t) / 1000;
  cpuDissect += cpuSince(cpu);
  t = performance.now();
  cpu = process.cpuUsage();
  const trust = await computeLayerTrust(
    {
      layer: `layer${li}`,
      similarity,
      imageFeatures: I,
      candidates: T,
      candidateNames: names,
      activations: A,
      labels: r.labels,
      mode: 'chosen',
    },
    { bootstraps: Number(values.bootstraps), permutations: Number(values.permutations) },
  );
  const tr = (performance.now() - t) / 1000;
  cpuTrust += cpuSince(cpu);
  tDissect += dissect;
  tTrust += tr;
  tReruns += trust.rerunSeconds;
  const s = trust.summary;
  console.log(
    `  ${String(K).padStart(4)} neurons: dissect ${dissect.toFixed(2)} s, trust ${tr.toFixed(2)} s (similarity reruns ${trust.rerunSeconds.toFixed(2)} s; stability mean ${s.stability.mean?.toFixed(3)}, significant ${(100 * s.significant).toFixed(1)}%)`,
  );
}
console.log(
  `total: dissect similarity ${tDissect.toFixed(2)} s, trust ${tTrust.toFixed(2)} s (${(tTrust / tDissect).toFixed(1)}× the dissection's similarity; similarity reruns ${tReruns.toFixed(2)} s); CPU seconds: dissect similarity ${cpuDissect.toFixed(2)}, trust ${cpuTrust.toFixed(2)}; peak RSS ${(process.resourceUsage().maxRSS / 1024).toFixed(0)} MiB`,
);
