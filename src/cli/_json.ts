/** What the commands print with --json. Internal. */
import type { LayerResult } from '../results/descriptions.js';

/** `value` as the indented JSON a command prints on stdout. */
export function jsonText(value: unknown): string {
  return `${JSON.stringify(value, null, 2)}\n`;
}

/** A labelled layer as JSON: its function, sizes and every neuron's label, score and dead flag. */
export function layerJson(l: LayerResult) {
  const r = l.result;
  return {
    layer: l.layer,
    similarity: r.similarity,
    options: r.options,
    images: r.nImages,
    concepts: r.nConcepts,
    neurons: Array.from({ length: r.nNeurons }, (_, k) => ({
      unit: k,
      label: l.concepts[r.labels[k]],
      score: r.scores[k],
      dead: r.dead[k] === 1,
    })),
  };
}
