/**
 * Result files in the official formats: `descriptions.csv` (`layer,unit,description,similarity`, as the
 * reference's pandas `to_csv(index=False)` writes it) and the richer `neurons.json`.
 */
import type { SimilarityResult } from '../compute/similarity/index.js';
import { type NeuronRecord, type NeuronsJson, RESULTS_SCHEMA_VERSION } from '../results/schema.js';
import type { LayerTrust, NeuronTrust } from './trust.js';

export type { NeuronRecord } from '../results/schema.js';

/** One dissected layer: the engine's result and the concept strings its indices refer to. */
export interface LayerResult {
  layer: string;
  result: SimilarityResult;
  concepts: readonly string[];
  /** The trust figures of the layer's labels (src/pipeline/trust.ts), when computed. */
  trust?: LayerTrust;
}

/**
 * The shortest decimal that reads back as the same float32 (what numpy prints for a float32 and so what
 * the reference's CSV holds). NaN → '' (pandas writes missing values as empty fields).
 */
export function formatFloat32(x: number): string {
  if (Number.isNaN(x)) return '';
  if (!Number.isFinite(x)) return x > 0 ? 'inf' : '-inf';
  const f = Math.fround(x);
  for (let p = 1; p <= 9; p++) {
    const s = f.toPrecision(p);
    if (Math.fround(Number(s)) === f) return String(Number(s));
  }
  return String(f);
}

/** A CSV field, quoted only when needed (RFC 4180, pandas QUOTE_MINIMAL). */
export function csvField(s: string): string {
  return /[",\r\n]/.test(s) ? `"${s.replaceAll('"', '""')}"` : s;
}

export function descriptionsCsv(layers: readonly LayerResult[]): string {
  const out = ['layer,unit,description,similarity'];
  for (const { layer, result, concepts } of layers) {
    for (let k = 0; k < result.nNeurons; k++) {
      out.push(
        `${csvField(layer)},${k},${csvField(concepts[result.labels[k]])},${formatFloat32(result.scores[k])}`,
      );
    }
  }
  return `${out.join('\n')}\n`;
}

const num = (x: number) => (Number.isFinite(x) ? Number(formatFloat32(x)) : null);

function trustRecord(t: NeuronTrust): Omit<NeuronTrust, 'unit' | 'label'> {
  const { unit: _unit, label: _label, ...rest } = t;
  return rest;
}

/** Per neuron: label, score, top concepts with scores, top-activating probe images, flags. */
function neuronRecords(layers: readonly LayerResult[]): NeuronRecord[] {
  const out: NeuronRecord[] = [];
  for (const { layer, result: r, concepts, trust } of layers) {
    for (let k = 0; k < r.nNeurons; k++) {
      const top = [];
      for (let t = 0; t < r.top; t++) {
        const idx = r.topConcepts[k * r.top + t];
        top.push({ concept: concepts[idx], index: idx, score: num(r.topScores[k * r.top + t]) });
      }
      out.push({
        layer,
        unit: k,
        label: concepts[r.labels[k]],
        score: num(r.scores[k]),
        dead: r.dead[k] === 1,
        top,
        topImages: Array.from(r.topImages.subarray(k * r.nTopImages, (k + 1) * r.nTopImages)),
        ...(trust ? { trust: trustRecord(trust.neurons[k]) } : {}),
      });
    }
  }
  return out;
}

/**
 * The body of `neurons.json` (src/results/schema.ts): the format version, the run's `meta` (`{ version,
 * similarity }`), its layers and one record per neuron.
 */
export function neuronsJsonBody(
  layers: readonly LayerResult[],
  meta: { version: string; similarity: string },
): NeuronsJson {
  return {
    schemaVersion: RESULTS_SCHEMA_VERSION,
    ...meta,
    layers: layers.map(({ layer, result: r, trust }) => ({
      layer,
      similarity: r.similarity,
      options: r.options,
      nNeurons: r.nNeurons,
      nConcepts: r.nConcepts,
      nImages: r.nImages,
      deadNeurons: Array.from(r.dead).reduce((s, v) => s + v, 0),
      ...(trust ? { trust: { settings: trust.settings, summary: trust.summary } } : {}),
    })),
    neurons: neuronRecords(layers),
  };
}

/** `neurons.json` as text. */
export function neuronsJson(
  layers: readonly LayerResult[],
  meta: { version: string; similarity: string },
): string {
  return `${JSON.stringify(neuronsJsonBody(layers, meta), null, 1)}\n`;
}
