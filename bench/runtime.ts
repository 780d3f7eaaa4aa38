/**
 * Benchmark of the two ONNX runtimes behind the gateway (not a test; CI does not time anything): the same model
 * and batch on onnxruntime-node ('native') and on onnxruntime-web's WebAssembly build ('wasm'), which is what
 * `npm i clip-dissect` runs on until onnxruntime-node is installed next to it.
 *
 *   npx tsc -p tsconfig.json && node dist/bench/runtime.js                       # the tiny test ResNet
 *   python3 scripts/export_target_models.py --verify-full /tmp/r18               # ResNet-18 (45 MB)
 *   node dist/bench/runtime.js --target /tmp/r18/resnet18_ts.onnx --batch 16
 *
 * Each runtime opens the model (through createSession, as every model of the library is opened), runs one
 * warm-up batch of synthetic input, then `--runs` timed batches with `--threads` threads (default: all cores).
 * Printed per runtime: session creation, ms per image, images/s; then wasm ÷ native and the largest difference
 * between the two runtimes' outputs relative to the largest output.
 */
import { readFileSync } from 'node:fs';
import { availableParallelism } from 'node:os';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';
import { createSession, type RuntimeName, selectRuntime, Tensor } from '../src/runtime/index.js';

const { values } = parseArgs({
  options: {
    target: { type: 'string' },
    batch: { type: 'string', default: '16' },
    runs: { type: 'string', default: '3' },
    threads: { type: 'string', default: String(availableParallelism()) },
  },
});
const target =
  values.target ?? fileURLToPath(new URL('../../test/fixtures/models/resnet_small_ts.onnx', import.meta.url));
const batch = Number(values.batch);
const runs = Number(values.runs);
const threads = Number(values.threads);
const bytes = new Uint8Array(readFileSync(target));

interface Timing {
  open: number;
  msPerImage: number;
  output: Float32Array;
}

async function bench(runtime: RuntimeName): Promise<Timing> {
  const info = await selectRuntime(runtime);
  let t = performance.now();
  const s = await createSession(bytes, { device: 'cpu', threads }, target);
  const open = performance.now() - t;
  try {
    const meta = s.inputMetadata[0];
    if (!meta.isTensor) throw new Error(`${target}: input ${meta.name} is not a tensor`);
    const dims = meta.shape.map((d, i) => (i === 0 ? batch : typeof d === 'number' && d > 0 ? d : 224));
    const x = new Float32Array(dims.reduce((a, d) => a * d, 1));
    for (let i = 0; i < x.length; i++) x[i] = Math.sin(i * 0.01);
    const feeds = { [meta.name]: new Tensor('float32', x, dims) };
    await s.run(feeds); // warm-up: the first run allocates and may re-plan
    t = performance.now();
    let out: Float32Array | undefined;
    for (let r = 0; r < runs; r++) out = (await s.run(feeds))[s.outputNames[0]].data as Float32Array;
    const msPerImage = (performance.now() - t) / (runs * batch);
    console.log(
      `${runtime.padEnd(6)} onnxruntime ${info.version}: session ${open.toFixed(0)} ms, ${msPerImage.toFixed(2)} ms/img, ${(1000 / msPerImage).toFixed(1)} img/s (input ${dims.join('×')}, ${threads} threads, ${runs} runs)`,
    );
    return { open, msPerImage, output: out! };
  } finally {
    await s.release();
  }
}

console.log(`model ${target} (${(bytes.length / 1e6).toFixed(1)} MB), batch ${batch}`);
const native = await bench('native');
const wasm = await bench('wasm');
let diff = 0;
let scale = 0;
for (let i = 0; i < native.output.length; i++) {
  diff = Math.max(diff, Math.abs(native.output[i] - wasm.output[i]));
  scale = Math.max(scale, Math.abs(native.output[i]));
}
console.log(
  `wasm / native: ${(wasm.msPerImage / native.msPerImage).toFixed(2)}× the time per image; outputs differ by at most ${(diff / scale).toExponential(1)} of the largest`,
);
