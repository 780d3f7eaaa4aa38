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
 */
import { existsSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';
import { dissect } from '../src/pipeline/dissect.js';

const { values } = parseArgs({
  options: {
    target: { type: 'string' },
    clip: { type: 'string' },
    images: { type: 'string' },
    concepts: { type: 'string' },
    layers: { type: 'string', default: 'conv1,layer1,layer2,layer3,layer4' },
    'batch-size': { type: 'string', default: '50' },
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

const cacheDir = mkdtempSync(join(tmpdir(), 'clip-dissect-bench-'));
const out = mkdtempSync(join(tmpdir(), 'clip-dissect-bench-out-'));
try {
  const t0 = performance.now();
  const r = await dissect({
    target: values.target,
    layers: values.layers as string,
    probe: values.images,
    concepts,
    clip: values.clip,
    batchSize: Number(values['batch-size']),
    cacheDir,
    out,
  });
  const total = (performance.now() - t0) / 1000;
  const t = r.timings as Record<string, number>;
  const inference = (t.textFeatures ?? 0) + (t.clipInference ?? 0) + (t.targetInference ?? 0);
  console.log(
    `dissect: ${r.images.length} images, ${r.layers.length} layers, ${r.layers[0]?.concepts.length ?? 0} concepts, cold cache`,
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
    `onnxruntime inference inside the run: text ${(t.textFeatures ?? 0).toFixed(1)} s (encoding incl. tokenizing), CLIP images ${(t.clipInference ?? 0).toFixed(1)} s, target ${(t.targetInference ?? 0).toFixed(1)} s; run / inference = ${(total / inference).toFixed(3)}`,
  );
} finally {
  rmSync(cacheDir, { recursive: true, force: true });
  rmSync(out, { recursive: true, force: true });
}
