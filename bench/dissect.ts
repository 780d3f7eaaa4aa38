/**
 * Benchmark of the whole method (`dissect`), cold cache (not a test; CI does not time anything).
 *
 *   node dist/bench/dissect.js --target /tmp/r50/resnet50.onnx --clip /tmp/vitb16 --images /tmp/bench-imgs
 *
 * Needs a target network, a CLIP folder in the transformers.js layout and a folder of images (see
 * scripts/export_target_models.py --resnet50, scripts/parity_dissect.py for a ViT-B/16-sized random CLIP,
 * bench/activations.ts for 500 JPEGs of 500×375). Concepts default to ../shared/data/concepts/3k.txt.
 * Prints each stage's seconds, the peak RSS, and the run's time over the onnxruntime inference it contains
 * (text tower + vision tower + target network, as timed inside the run).
 *
 * `--trust` adds the per-neuron trust figures (src/pipeline/trust.ts; off here so that the ratio measures what it
 * always measured, bench/trust.ts times them). `--dtype q8` runs the hub's 8-bit CLIP (the `*_quantized.onnx` files; scripts/quantize_clip.py makes them for
 * the random CLIP), `--dtype int8` the fp32 files with their MatMul weights quantized to int8 at load time, `--keep DIR` keeps the results folder, and `--compare DIR` prints how many labels equal
 * those of an earlier run kept with `--keep` (all neurons, and those whose top-2 margin there is above 1e-4).
 *
 * Unless `--skip-pure`, it also times pure onnxruntime inference of the same models on the same inputs, one
 * model at a time, in a fresh process before the run and another after it (the machine's speed drifts; the
 * ratio is taken against their mean): the concepts through the text tower, the preprocessed images (prepared
 * beforehand, not timed) through the vision tower and the target's pooled graph, in the same runs as dissect
 * makes. Sessions are opened before the timing starts.
 */
import { spawnSync } from 'node:child_process';
import { existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';
import { loadConceptSet } from '../src/data/builtin-concepts.js';
import { decodeImageRGB } from '../src/data/decode.js';
import { IMAGENET_PREPROCESS, type PreprocessConfig, preprocessImage } from '../src/data/preprocess.js';
import { openProbeDataset } from '../src/data/probe-dataset.js';
import { alignToRuns, DEFAULT_CPU_RUN_BATCH } from '../src/models/_run-batch.js';
import { CLIP_DTYPES, type ClipDtype, createOnnxClipEncoder } from '../src/models/onnx-clip-encoder.js';
import { createOnnxTargetModel } from '../src/models/onnx-target-model.js';
import { dissect } from '../src/pipeline/dissect.js';

const { values } = parseArgs({
  options: {
    target: { type: 'string' },
    clip: { type: 'string' },
    images: { type: 'string' },
    concepts: { type: 'string' },
    layers: { type: 'string', default: 'conv1,layer1,layer2,layer3,layer4' },
    'batch-size': { type: 'string', default: '50' },
    'run-batch-size': { type: 'string' },
    'chunk-size': { type: 'string' },
    workers: { type: 'string' },
    dtype: { type: 'string', default: 'fp32' },
    keep: { type: 'string' },
    compare: { type: 'string' },
    'skip-pure': { type: 'boolean', default: false },
    'pure-only': { type: 'boolean', default: false },
    trust: { type: 'boolean', default: false },
  },
});

const concepts =
  values.concepts ?? fileURLToPath(new URL('../../../shared/data/concepts/3k.txt', import.meta.url));
if (!values.target || !values.clip || !values.images || !existsSync(concepts)) {
  console.log(
    'bench/dissect: skipped; give --target MODEL.onnx --clip CLIP_DIR --images DIR (and --concepts FILE when ../shared is absent)',
  );
  process.exit(0);
}

if (!CLIP_DTYPES.includes(values.dtype as ClipDtype)) {
  console.log(`bench/dissect: --dtype must be one of ${CLIP_DTYPES.join(', ')} but got '${values.dtype}'`);
  process.exit(1);
}

if (values['pure-only']) {
  // a child process of the main bench (see purePhase): pure inference only, its seconds as JSON
  const dataset = await openProbeDataset(values.images);
  const layers = (values.layers as string).split(',');
  console.log(
    JSON.stringify(
      await pureInference(
        dataset.images.map((i) => i.source),
        layers,
      ),
    ),
  );
  process.exit(0);
}

/** Pure inference in a fresh process (so that neither measurement reuses the other's memory or caches). */
function purePhase(): { text: number; clip: number; target: number; runBatch: number } {
  const script = fileURLToPath(import.meta.url);
  const r = spawnSync(process.execPath, [script, ...process.argv.slice(2), '--pure-only'], {
    encoding: 'utf8',
    stdio: ['ignore', 'pipe', 'inherit'],
  });
  if (r.status !== 0) throw new Error(`the pure-inference process failed (exit ${r.status})`);
  return JSON.parse(r.stdout.trim().split('\n').pop() as string);
}

const pureBefore = values['skip-pure'] ? null : purePhase();
const cacheDir = mkdtempSync(join(tmpdir(), 'clip-dissect-bench-'));
const out = values.keep ?? mkdtempSync(join(tmpdir(), 'clip-dissect-bench-out-'));
if (values.keep) mkdirSync(values.keep, { recursive: true });
try {
  const t0 = performance.now();
  const r = await dissect({
    target: values.target,
    layers: values.layers as string,
    probe: values.images,
    concepts,
    clip: values.clip,
    batchSize: Number(values['batch-size']),
    ...(values['run-batch-size'] ? { runBatchSize: Number(values['run-batch-size']) } : {}),
    ...(values['chunk-size'] ? { chunkSize: Number(values['chunk-size']) } : {}),
    ...(values.workers ? { workers: Number(values.workers) } : {}),
    dtype: values.dtype as ClipDtype,
    // the trust figures (B + R similarity reruns per layer) are timed by bench/trust.ts; without them this run
    // times what earlier versions' dissect did, against the same pure inference
    trust: values.trust ? {} : false,
    cacheDir,
    out,
  });
  const total = (performance.now() - t0) / 1000;
  const t = r.timings as Record<string, number>;
  // CLIP's text tower opens inside the text stage: take it out
  const textInference = (t.textFeatures ?? 0) - (t.openClipText ?? 0);
  const inference = textInference + (t.clipInference ?? 0) + (t.targetInference ?? 0);
  console.log(
    `dissect: ${r.images.length} images, ${r.layers.length} layers, ${r.layers[0]?.concepts.length ?? 0} concepts, cold cache, trust figures ${values.trust ? `on (${(t.trust ?? 0).toFixed(1)} s)` : 'off (bench/trust.ts times them; --trust includes them)'}`,
  );
  console.log(
    `total ${total.toFixed(1)} s, peak RSS ${Math.round(process.resourceUsage().maxRSS / 1024)} MiB`,
  );
  console.log(
    `stages (s): ${Object.entries(t)
      .map(([k, v]) => `${k} ${v.toFixed(2)}`)
      .join(', ')}`,
  );
  console.log(
    `onnxruntime inference inside the run: text ${textInference.toFixed(1)} s (encoding incl. tokenizing), CLIP images ${(t.clipInference ?? 0).toFixed(1)} s, target ${(t.targetInference ?? 0).toFixed(1)} s; run / inference = ${(total / inference).toFixed(3)}`,
  );
  if (values.compare) compareLabels(values.compare, out);
  if (pureBefore) {
    const pureAfter = purePhase();
    const sum = (p: typeof pureBefore) => p.text + p.clip + p.target;
    const show = (p: typeof pureBefore) =>
      `text ${p.text.toFixed(1)} s, CLIP images ${p.clip.toFixed(1)} s, target ${p.target.toFixed(1)} s (${sum(p).toFixed(1)} s)`;
    const mean = (sum(pureBefore) + sum(pureAfter)) / 2;
    console.log(
      `pure onnxruntime, same models, inputs and runs (${pureBefore.runBatch} images a run), one model at a time, in a fresh process before and after the run: ${show(pureBefore)}; ${show(pureAfter)}`,
    );
    console.log(
      `run / pure inference = ${(total / mean).toFixed(3)} (against the mean ${mean.toFixed(1)} s; ${(total / sum(pureBefore)).toFixed(3)} and ${(total / sum(pureAfter)).toFixed(3)} against each); sessions opened in the run (hashing excluded): ${(
        (t.openClipText ?? 0) + (t.openClipVision ?? 0) + (t.openTarget ?? 0) + (t.targetSession ?? 0)
      ).toFixed(1)} s`,
    );
  }
} finally {
  rmSync(cacheDir, { recursive: true, force: true });
  if (!values.keep) rmSync(out, { recursive: true, force: true });
}

/** Label agreement between two results folders (neurons.json of each). */
function compareLabels(baseDir: string, dir: string): void {
  type Top = { concept: string; score: number }[];
  const read = (d: string) => {
    const j = JSON.parse(readFileSync(join(d, 'neurons.json'), 'utf8')) as {
      neurons: { layer: string; unit: number; top: Top }[];
    };
    return new Map(j.neurons.map((n) => [`${n.layer}/${n.unit}`, n.top] as const));
  };
  const base = read(baseDir);
  const ours = read(dir);
  let same = 0;
  let confident = 0;
  let sameConfident = 0;
  for (const [k, b] of base) {
    const o = ours.get(k);
    const eq = o !== undefined && o[0]?.concept === b[0]?.concept;
    if (eq) same++;
    if (b.length > 1 && b[0].score - b[1].score > 1e-4) {
      confident++;
      if (eq) sameConfident++;
    }
  }
  const pct = (a: number, b: number) => `${a}/${b} (${((100 * a) / Math.max(1, b)).toFixed(1)}%)`;
  console.log(
    `labels equal to ${baseDir}: ${pct(same, base.size)}; where its top-2 margin > 1e-4: ${pct(sameConfident, confident)}`,
  );
}

/** Seconds of onnxruntime inference alone for the text tower, the vision tower and the target. */
async function pureInference(
  sources: string[],
  layers: string[],
): Promise<{ text: number; clip: number; target: number; runBatch: number }> {
  const runBatch = values['run-batch-size'] ? Number(values['run-batch-size']) : DEFAULT_CPU_RUN_BATCH;
  const bs = alignToRuns(Number(values['batch-size']), runBatch); // as dissect steps
  const set = await loadConceptSet(concepts);
  const enc = await createOnnxClipEncoder(values.clip as string, {
    dtype: values.dtype as ClipDtype,
    runBatchSize: runBatch,
  });
  let text = 0;
  let clip = 0;
  let target = 0;
  try {
    let t = performance.now();
    await enc.encodeText(set.concepts);
    text = (performance.now() - t) / 1000;
    const images = await Promise.all(sources.map((p) => decodeImageRGB(p)));
    const batches = (cfg: PreprocessConfig) => {
      const per = preprocessImage(images[0], cfg).length;
      const out: { x: Float32Array; n: number }[] = [];
      for (let b = 0; b < images.length; b += bs) {
        const n = Math.min(bs, images.length - b);
        const x = new Float32Array(n * per);
        for (let j = 0; j < n; j++) preprocessImage(images[b + j], cfg, x.subarray(j * per, (j + 1) * per));
        out.push({ x, n });
      }
      return out;
    };
    const clipIn = batches(enc.preprocess);
    t = performance.now();
    for (const { x, n } of clipIn) await enc.encodeImages(x, n);
    clip = (performance.now() - t) / 1000;
    const model = await createOnnxTargetModel(values.target as string, { runBatchSize: runBatch });
    try {
      const targetIn = batches(IMAGENET_PREPROCESS);
      // the first call builds the pooled graph's session: not inference, left out as in the run
      await model.activations(
        targetIn[0].x.subarray(0, targetIn[0].x.length / targetIn[0].n),
        1,
        layers,
        'avg',
      );
      t = performance.now();
      for (const { x, n } of targetIn) await model.activations(x, n, layers, 'avg');
      target = (performance.now() - t) / 1000;
    } finally {
      await model.release();
    }
  } finally {
    await enc.release();
  }
  return { text, clip, target, runBatch };
}
