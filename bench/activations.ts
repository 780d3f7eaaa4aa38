/**
 * Benchmark of `clip-dissect activations` (extractActivations) against pure onnxruntime inference (not a test;
 * CI does not time anything).
 *
 *   python3 scripts/export_target_models.py --resnet50 /tmp/r50        # ResNet-50, random weights (102 MB)
 *   npx tsc -p tsconfig.json && node dist/bench/activations.js --target /tmp/r50/resnet50.onnx
 *
 * Generates 500 synthetic photo-like JPEGs of 500x375 (gradients, filled shapes, blur and noise; quality 90,
 * 4:2:0) into a temporary folder (`--images DIR` keeps them there and reuses them), then
 *
 * 1. runs extractActivations over them: layers conv1,layer1,layer2,layer3,layer4 (`--layers`), batch 50
 *    (`--batch-size`), torchvision ImageNet preprocessing, avg pooling; `--workers 0,1,2` runs it once per value;
 * 2. preprocesses the same images into the same batches (not timed) and runs the same pooled model on them
 *    with the same threads (`--threads`), opening the model afresh: the pure inference time, cold start
 *    included as in 1.
 *
 * Printed: images/s and seconds of each run, its ratio to the pure inference (the goal is <= 1.10) over the whole
 * run, over the batches after onnxruntime's two slow first runs, and of the median batch times (robust to other
 * load on a shared machine), and where the time went (inference, waiting for images, resize + normalise time).
 * Without `--target` it prints how to get ResNet-50 and exits.
 */
import { mkdir, mkdtemp, readdir, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import sharp from 'sharp';
import { decodeImageRGB } from '../src/data/decode.js';
import { IMAGENET_PREPROCESS, preprocessImage, preprocessShape } from '../src/data/preprocess.js';
import { createOnnxTargetModel } from '../src/models/onnx-target-model.js';
import { mulberry32 } from '../src/numeric/random.js';
import { extractActivations } from '../src/pipeline/activations.js';

const W = 500;
const H = 375;

/** A photo-like picture: a two-colour gradient, 3-8 filled rectangles and ellipses, a blur, pixel noise. */
async function syntheticJpeg(seed: number): Promise<Buffer> {
  const rand = mulberry32(seed);
  const colour = () => [rand() * 255, rand() * 255, rand() * 255];
  const c0 = colour();
  const c1 = colour();
  const angle = rand() * Math.PI * 2;
  const [ca, sa] = [Math.cos(angle), Math.sin(angle)];
  const span = Math.abs(W * ca) + Math.abs(H * sa);
  const px = new Float32Array(W * H * 3);
  for (let y = 0; y < H; y++)
    for (let x = 0; x < W; x++) {
      const t = Math.min(1, Math.max(0, ((x - W / 2) * ca + (y - H / 2) * sa) / span + 0.5));
      const o = (y * W + x) * 3;
      for (let c = 0; c < 3; c++) px[o + c] = c0[c] * (1 - t) + c1[c] * t;
    }
  const shapes = 3 + Math.floor(rand() * 6);
  for (let s = 0; s < shapes; s++) {
    const col = colour();
    const cx = rand() * W;
    const cy = rand() * H;
    const rx = 15 + rand() * 120;
    const ry = 15 + rand() * 90;
    const ellipse = rand() < 0.5;
    for (let y = Math.max(0, Math.floor(cy - ry)); y < Math.min(H, Math.ceil(cy + ry)); y++)
      for (let x = Math.max(0, Math.floor(cx - rx)); x < Math.min(W, Math.ceil(cx + rx)); x++) {
        if (ellipse && ((x - cx) / rx) ** 2 + ((y - cy) / ry) ** 2 > 1) continue;
        const o = (y * W + x) * 3;
        for (let c = 0; c < 3; c++) px[o + c] = col[c];
      }
  }
  const raw = Buffer.from(Uint8Array.from(px, (v) => Math.round(v)));
  const blurred = await sharp(raw, { raw: { width: W, height: H, channels: 3 } })
    .blur(1.2)
    .raw()
    .toBuffer();
  for (let i = 0; i < blurred.length; i++)
    blurred[i] = Math.max(0, Math.min(255, blurred[i] + Math.round((rand() - 0.5) * 20)));
  return sharp(blurred, { raw: { width: W, height: H, channels: 3 } })
    .jpeg({ quality: 90, chromaSubsampling: '4:2:0' })
    .toBuffer();
}

async function ensureImages(dir: string, count: number): Promise<string[]> {
  await mkdir(dir, { recursive: true });
  const have = new Set((await readdir(dir)).filter((f) => f.endsWith('.jpg')));
  const names = Array.from({ length: count }, (_, i) => `img_${String(i).padStart(4, '0')}.jpg`);
  const missing = names.filter((n) => !have.has(n));
  if (missing.length > 0) {
    process.stderr.write(`generating ${missing.length} JPEGs of ${W}x${H} in ${dir} …\n`);
    for (const n of missing) await writeFile(join(dir, n), await syntheticJpeg(Number(n.slice(4, 8)) + 1));
  }
  return names.map((n) => join(dir, n));
}

async function main(): Promise<void> {
  const { values } = parseArgs({
    options: {
      target: { type: 'string' },
      images: { type: 'string' },
      count: { type: 'string', default: '500' },
      'batch-size': { type: 'string', default: '50' },
      layers: { type: 'string', default: 'conv1,layer1,layer2,layer3,layer4' },
      threads: { type: 'string' },
      workers: { type: 'string' },
    },
  });
  if (!values.target) {
    console.log(
      'bench/activations: skipped, no --target given. Export ResNet-50 (random weights, not committed) with\n' +
        '  python3 scripts/export_target_models.py --resnet50 /tmp/r50\n' +
        'then run  node dist/bench/activations.js --target /tmp/r50/resnet50.onnx',
    );
    return;
  }
  const target = values.target;
  const count = Number(values.count);
  const bs = Number(values['batch-size']);
  const threads = values.threads !== undefined ? Number(values.threads) : undefined;
  const layers = values.layers as string;
  const workerRuns =
    values.workers !== undefined ? values.workers.split(',').map(Number) : [undefined as number | undefined];
  const tempImages = values.images === undefined;
  const dir = values.images ?? (await mkdtemp(join(tmpdir(), 'clip-dissect-bench-')));
  try {
    const paths = await ensureImages(dir, count);
    console.log(
      `${count} JPEGs ${W}x${H} (q90 4:2:0) in ${dir}; target ${target}; layers ${layers}; batch ${bs}; ` +
        `threads ${threads ?? 'default (all cores)'}; ImageNet preprocessing (Resize 256 bilinear, CenterCrop 224)`,
    );

    // 1. the pipeline
    const runs: { workers: number; seconds: number; timings: Record<string, number>; perBatch: number[] }[] =
      [];
    for (const workers of workerRuns) {
      const t0 = performance.now();
      const marks: number[] = [];
      const r = await extractActivations(
        {
          target,
          layers,
          probe: dir,
          batchSize: bs,
          threads,
          workers,
        },
        {
          onProgress: (e) => {
            if (e.stage === 'activations') marks.push(performance.now());
          },
        },
      );
      const seconds = (performance.now() - t0) / 1000;
      if (r.images.length !== count) throw new Error(`expected ${count} rows, got ${r.images.length}`);
      const perBatch = marks.slice(1).map((t, i) => (t - marks[i]) / 1000);
      runs.push({ workers: r.workers, seconds, timings: r.timings, perBatch });
    }

    // 2. pure inference of the same preprocessed batches
    const [, h, w] = preprocessShape(IMAGENET_PREPROCESS);
    const per = 3 * h * w;
    const batches: Float32Array[] = [];
    for (let b = 0; b < count; b += bs) {
      const n = Math.min(bs, count - b);
      const x = new Float32Array(n * per);
      for (let j = 0; j < n; j++)
        preprocessImage(
          await decodeImageRGB(paths[b + j]),
          IMAGENET_PREPROCESS,
          x.subarray(j * per, (j + 1) * per),
        );
      batches.push(x);
    }
    const t0 = performance.now();
    const model = await createOnnxTargetModel(target, { threads });
    const names = (await model.describe(layers)).map((l) => l.name);
    const tOpen = performance.now();
    const perBatch: number[] = [];
    for (const x of batches) {
      const tb = performance.now();
      await model.activations(x, x.length / per, names, 'avg');
      perBatch.push((performance.now() - tb) / 1000);
    }
    const inference = (performance.now() - tOpen) / 1000;
    const pure = (performance.now() - t0) / 1000;
    await model.release();

    console.log(
      `pure onnxruntime: ${pure.toFixed(2)} s (${(count / pure).toFixed(1)} images/s), of which open ${((tOpen - t0) / 1000).toFixed(2)} s and inference ${inference.toFixed(2)} s; per batch ${perBatch.map((s) => s.toFixed(2)).join(' ')}`,
    );
    // steady state: the batches after onnxruntime's first two (slow) runs
    const sum = (a: number[]) => a.reduce((s, v) => s + v, 0);
    const steadyPure = sum(perBatch.slice(2));
    const median = (a: number[]) => {
      const b = [...a].sort((x, y) => x - y);
      return b.length === 0 ? Number.NaN : (b[(b.length - 1) >> 1] + b[b.length >> 1]) / 2;
    };
    const medianPure = median(perBatch.slice(2));
    for (const r of runs) {
      const t = r.timings;
      console.log(
        `extractActivations, ${r.workers} worker${r.workers === 1 ? '' : 's'}: ${r.seconds.toFixed(2)} s, ${(count / r.seconds).toFixed(1)} images/s, ` +
          `ratio to pure inference ${(r.seconds / pure).toFixed(3)}, from the 3rd batch on ${(sum(r.perBatch.slice(2)) / steadyPure).toFixed(3)}, median batch ${(median(r.perBatch.slice(2)) / medianPure).toFixed(3)} ` +
          `(inference ${t.inference.toFixed(2)} s, waiting for images ${t.waitForImages.toFixed(2)} s, ` +
          `resize + normalise ${t.preprocess.toFixed(2)} s, open ${(t.openProbe + t.openModel).toFixed(2)} s); per batch ${r.perBatch.map((s) => s.toFixed(2)).join(' ')}`,
      );
    }
  } finally {
    if (tempImages) await rm(dir, { recursive: true, force: true });
  }
}

await main();
