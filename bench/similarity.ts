/**
 * Benchmark of the similarity engine on planted data (not a test; CI does not time anything).
 *
 *   npm run bench:similarity                      # every function at the issue's sizes
 *   node dist/bench/similarity.js soft_wpmi       # one function
 *   node dist/bench/similarity.js soft_wpmi --n 2000 --m 3000 --k 256
 *
 * Each function runs in a child process of its own so that its peak RSS is its own. Printed: seconds of
 * computeSimilarity (normalisation, matmul, softmax, scoring, top-k; data generation excluded), peak RSS
 * of the process (inputs included), and how many planted neurons got their planted concept.
 */
import { spawnSync } from 'node:child_process';
import { availableParallelism } from 'node:os';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';
import { computeSimilarity } from '../src/compute/similarity/index.js';
import type { Matrix } from '../src/numeric/matrix.js';
import { mulberry32 } from '../src/numeric/random.js';
import { SIMILARITY_NAMES, type SimilarityName } from '../src/numeric/similarity-options.js';
import { selectRuntime } from '../src/runtime/index.js';

const DEFAULT_SIZES: Record<SimilarityName, { n: number; m: number; d: number; k: number }> = {
  soft_wpmi: { n: 10000, m: 20000, d: 512, k: 2048 },
  wpmi: { n: 10000, m: 20000, d: 512, k: 2048 },
  rank_reorder: { n: 5000, m: 5000, d: 512, k: 512 },
  cos_similarity: { n: 10000, m: 20000, d: 512, k: 2048 },
  cos_similarity_cubed: { n: 10000, m: 20000, d: 512, k: 2048 },
};

function gaussian(rand: () => number): () => number {
  return () => {
    const u = Math.max(rand(), 1e-12);
    return Math.sqrt(-2 * Math.log(u)) * Math.cos(2 * Math.PI * rand());
  };
}

/**
 * Planted data: concept vectors are random; image i shows concept c1(i) < K strongly and c2(i) weakly;
 * neuron k fires for images that show concept k (plus noise). So neuron k's planted label is concept k.
 */
function planted(n: number, m: number, d: number, k: number, seed = 0) {
  const rand = mulberry32(seed);
  const g = gaussian(rand);
  const T: Matrix = { rows: m, cols: d, data: Float32Array.from({ length: m * d }, g) };
  const I: Matrix = { rows: n, cols: d, data: new Float32Array(n * d) };
  const A: Matrix = { rows: n, cols: k, data: new Float32Array(n * k) };
  for (let i = 0; i < n; i++) {
    const c1 = Math.floor(rand() * k);
    const c2 = Math.floor(rand() * m);
    for (let t = 0; t < d; t++) {
      I.data[i * d + t] = 1.0 * T.data[c1 * d + t] + 0.4 * T.data[c2 * d + t] + 0.8 * g();
    }
    for (let j = 0; j < k; j++) A.data[i * k + j] = Math.max(0, 0.3 * g());
    A.data[i * k + c1] += 2 + 0.2 * rand();
    if (c2 < k) A.data[i * k + c2] += 0.8;
  }
  return { I, T, A };
}

async function child(
  name: SimilarityName,
  sizes: { n: number; m: number; d: number; k: number },
  threads: number,
) {
  const { n, m, d, k } = sizes;
  const { I, T, A } = planted(n, m, d, k);
  // the runtime is loaded on first use (onnxruntime-node's import): before the clock, as module loading was
  await selectRuntime();
  const t0 = performance.now();
  const r = await computeSimilarity(name, { imageFeatures: I, textFeatures: T, activations: A }, { threads });
  const seconds = (performance.now() - t0) / 1000;
  let recovered = 0;
  for (let j = 0; j < k; j++) if (r.labels[j] === j) recovered++;
  const rssMiB = process.resourceUsage().maxRSS / 1024;
  process.stdout.write(
    `${JSON.stringify({ name, ...sizes, threads, seconds: +seconds.toFixed(2), peakRssMiB: Math.round(rssMiB), recovered, timings: r.timings })}\n`,
  );
}

async function main() {
  const { values, positionals } = parseArgs({
    allowPositionals: true,
    options: {
      n: { type: 'string' },
      m: { type: 'string' },
      d: { type: 'string' },
      k: { type: 'string' },
      threads: { type: 'string' },
      child: { type: 'boolean', default: false },
    },
  });
  const names = (positionals.length ? positionals : [...SIMILARITY_NAMES]) as SimilarityName[];
  const threads = Number(values.threads ?? availableParallelism());
  if (values.child) {
    const name = names[0];
    const def = DEFAULT_SIZES[name];
    const sizes = {
      n: Number(values.n ?? def.n),
      m: Number(values.m ?? def.m),
      d: Number(values.d ?? def.d),
      k: Number(values.k ?? def.k),
    };
    await child(name, sizes, threads);
    return;
  }
  const self = fileURLToPath(import.meta.url);
  console.log(
    `similarity benchmark: ${availableParallelism()} cores, ${threads} onnxruntime threads, node ${process.version}`,
  );
  console.log('function               N      M     d     K     seconds  peak RSS  planted recovered');
  for (const name of names) {
    const extra = process.argv.slice(2).filter((a) => !(SIMILARITY_NAMES as readonly string[]).includes(a));
    const res = spawnSync(process.execPath, ['--expose-gc', self, name, '--child', ...extra], {
      encoding: 'utf8',
    });
    if (res.status !== 0) {
      console.log(`${name}: failed\n${res.stderr}`);
      continue;
    }
    const r = JSON.parse(res.stdout.trim().split('\n').pop() ?? '{}');
    console.log(
      `${name.padEnd(22)} ${String(r.n).padStart(5)} ${String(r.m).padStart(6)} ${String(r.d).padStart(5)} ${String(r.k).padStart(5)} ${r.seconds.toFixed(2).padStart(9)} ${`${r.peakRssMiB} MiB`.padStart(9)}  ${r.recovered}/${r.k}`,
    );
    const parts = Object.entries(r.timings as Record<string, number>)
      .filter(([k]) => k !== 'total')
      .map(([k, v]) => `${k} ${v.toFixed(2)}s`);
    console.log(`${''.padEnd(23)}stages: ${parts.join(', ')}`);
  }
}

await main();
