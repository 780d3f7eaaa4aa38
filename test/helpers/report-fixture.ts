/**
 * A synthetic dissect results folder (neurons.json, args.json, images.txt, <layer>.npy and the probe JPEGs)
 * for the report tests and bench/report.ts: activations are random (seeded) so that the report's top images,
 * bands and strips can be checked against them.
 */
import { mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import sharp from 'sharp';
import type { Matrix } from '../../src/numeric/matrix.js';
import { mulberry32 } from '../../src/numeric/random.js';
import {
  type ArgsLayer,
  type NeuronRecord,
  type NeuronsLayer,
  writeArgsJson,
  writeImagesTxt,
  writeNeuronsJson,
  writeResultsMatrix,
} from '../../src/results/index.js';

export interface SyntheticLayer {
  name: string;
  neurons: number;
}

export interface SyntheticResults {
  dir: string;
  images: string[];
  activations: Map<string, Matrix>;
  /** Per layer, per unit: label. */
  labels: Map<string, string[]>;
  concepts: string[];
}

/** A distinct w×h JPEG per index: a colour gradient and a bar whose place depends on i. */
export async function syntheticJpeg(i: number, w = 160, h = 120): Promise<Buffer> {
  const data = Buffer.alloc(w * h * 3);
  const r0 = (i * 67) % 256;
  const g0 = (i * 131) % 256;
  const b0 = (i * 29) % 256;
  const bar = (i * 13) % w;
  const cx = (i * 37) % w;
  const cy = (i * 53) % h;
  const rad = (Math.min(w, h) / 6) * (1 + (i % 3));
  let seed = (i * 2654435761) >>> 0;
  for (let y = 0; y < h; y++)
    for (let x = 0; x < w; x++) {
      const o = (y * w + x) * 3;
      const on = Math.abs(x - bar) < 8;
      const disc = (x - cx) ** 2 + (y - cy) ** 2 < rad * rad;
      seed = (Math.imul(seed, 1664525) + 1013904223) >>> 0;
      const noise = (seed >>> 27) - 16; // texture, so that thumbnails weigh what photos' do
      const px = (v: number) => Math.max(0, Math.min(255, v + noise));
      data[o] = on ? 255 : px(disc ? 255 - r0 : (r0 + x) % 256);
      data[o + 1] = on ? 255 : px(disc ? 255 - g0 : (g0 + y) % 256);
      data[o + 2] = on ? 255 : px((b0 + ((x * y) >> 6)) % 256);
    }
  return sharp(data, { raw: { width: w, height: h, channels: 3 } })
    .jpeg({ quality: 85 })
    .toBuffer();
}

export async function writeSyntheticResults(
  dir: string,
  layers: SyntheticLayer[],
  nImages: number,
  opts: { seed?: number; deadEvery?: number; imageSize?: [number, number]; concepts?: number } = {},
): Promise<SyntheticResults> {
  const rand = mulberry32(opts.seed ?? 1);
  const imgDir = join(dir, 'probe', 'class_a');
  mkdirSync(imgDir, { recursive: true });
  const images: string[] = [];
  const [w, h] = opts.imageSize ?? [160, 120];
  for (let i = 0; i < nImages; i++) {
    const p = join(imgDir, `img_${String(i).padStart(5, '0')}.jpg`);
    writeFileSync(p, await syntheticJpeg(i, w, h));
    images.push(p);
  }
  const nc = opts.concepts ?? 200;
  const concepts = Array.from(
    { length: nc },
    (_, c) => `concept ${c} ${['dog', 'car', 'sky', 'grass', 'stripes'][c % 5]}`,
  );
  const activations = new Map<string, Matrix>();
  const labels = new Map<string, string[]>();
  const neurons: NeuronRecord[] = [];
  const layerMeta: NeuronsLayer[] = [];
  const argsLayers: ArgsLayer[] = [];
  for (const L of layers) {
    const m: Matrix = { rows: nImages, cols: L.neurons, data: new Float32Array(nImages * L.neurons) };
    const dead: number[] = [];
    for (let j = 0; j < L.neurons; j++) {
      const isDead = opts.deadEvery !== undefined && j % opts.deadEvery === opts.deadEvery - 1;
      if (isDead) dead.push(j);
      for (let i = 0; i < nImages; i++) m.data[i * L.neurons + j] = isDead ? 0 : rand() * 4 - 1;
    }
    activations.set(L.name, m);
    const file = `${L.name}.npy`;
    await writeResultsMatrix(dir, file, m);
    const lab: string[] = [];
    for (let j = 0; j < L.neurons; j++) {
      const top = Array.from({ length: 5 }, (_, t) => {
        const index = (j * 7 + t * 3 + L.name.length) % nc;
        return { concept: concepts[index], index, score: Math.round((3 - t * 0.3 - rand()) * 1e4) / 1e4 };
      });
      lab.push(top[0].concept);
      neurons.push({
        layer: L.name,
        unit: j,
        label: top[0].concept,
        score: dead.includes(j) ? 0 : top[0].score,
        dead: dead.includes(j),
        top,
        topImages: [0, 1, 2],
      });
    }
    labels.set(L.name, lab);
    layerMeta.push({
      layer: L.name,
      similarity: 'soft_wpmi',
      options: {},
      nNeurons: L.neurons,
      nConcepts: nc,
      nImages,
      deadNeurons: dead.length,
    });
    argsLayers.push({ name: L.name, file, tensor: L.name, neurons: L.neurons });
  }
  await writeNeuronsJson(dir, { version: 'test', similarity: 'soft_wpmi', layers: layerMeta, neurons });
  await writeArgsJson(dir, {
    command: 'dissect',
    version: 'test',
    similarity: 'soft_wpmi',
    options: { topK: 100 },
    inputs: {
      target: { given: 'synthetic/resnet50.onnx', model: 'synthetic/resnet50.onnx' },
      clip: { given: 'synthetic-clip', dir: 'synthetic-clip' },
      concepts: { source: 'synthetic', concepts: nc, template: '{}', sha256: '' },
      probe: { given: join(dir, 'probe'), images: nImages, rows: nImages },
    },
    layers: argsLayers,
    files: {
      imageFeatures: { file: 'image_features.npy', shape: [nImages, 0] },
      textFeatures: { file: 'text_features.npy', shape: [nc, 0] },
    },
  });
  await writeImagesTxt(dir, images);
  return { dir, images, activations, labels, concepts };
}
