/** Loads the golden cases written by scripts/make_similarity_golden.py (reference: torch, float32). */
import { readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { npyToMatrix, readNpy } from '../../src/io/npy.js';
import type { Matrix } from '../../src/numeric/matrix.js';
import type { SimilarityName } from '../../src/numeric/similarity-options.js';

export const GOLDEN_DIR = fileURLToPath(new URL('../../../test/golden/similarity/', import.meta.url));
export const GOLDEN_CASES = ['random', 'planted', 'ties', 'default_params'] as const;

export interface GoldenCase {
  name: string;
  json: {
    params: Record<string, Record<string, number | string>>;
    dead_neurons?: number[];
    label_margin: Record<string, (number | null)[]>;
  };
  I: Matrix;
  T: Matrix;
  A: Matrix;
  score(fn: string): Promise<Matrix>;
  labels(fn: string): Promise<number[]>;
}

export async function loadGolden(name: string): Promise<GoldenCase> {
  const dir = `${GOLDEN_DIR}${name}/`;
  const json = JSON.parse(readFileSync(`${dir}case.json`, 'utf8'));
  const m = async (f: string) => npyToMatrix(await readNpy(`${dir}${f}.npy`), f);
  return {
    name,
    json,
    I: await m('I'),
    T: await m('T'),
    A: await m('A'),
    score: (fn) => m(`score_${fn}`),
    labels: async (fn) => {
      const a = await readNpy(`${dir}labels_${fn}.npy`);
      return Array.from(a.data as BigInt64Array, (x) => Number(x));
    },
  };
}

/** The case's hyperparameters in our option names. */
export function goldenOptions(c: GoldenCase, fn: SimilarityName): Record<string, number> {
  const p = c.json.params[fn] ?? {};
  const rename: Record<string, string> = {
    top_k: 'topK',
    a: 'a',
    lam: 'lambda',
    min_prob: 'minProb',
    p_start: 'pStart',
    p_end: 'pEnd',
    top_fraction: 'topFraction',
    p: 'p',
    scale_p: 'scaleP',
    min_norm: 'minNorm',
  };
  const out: Record<string, number> = {};
  for (const [k, v] of Object.entries(p)) if (rename[k] && typeof v === 'number') out[rename[k]] = v;
  return out;
}
