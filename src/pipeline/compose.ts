/**
 * `clip-dissect compose`: compositional explanations (paper Sec. 4.6; the official
 * experiments/fig10_compositional.ipynb). For a neuron, the candidates are its `poolSize` best single concepts
 * (by the run's similarity function, best first) and every ordered pair of two different ones, "w1 w2"
 * (itertools.permutations order: pairs first, then the singles: poolSize·(poolSize − 1) + poolSize texts,
 * 10,000 for 100). They are embedded with the run's CLIP and template, and the run's similarity function is
 * evaluated again with the candidates as the concept set over the whole layer (SoftWPMI / WPMI subtract a
 * prior over all neurons, so the layer's every neuron takes part); the neuron's row gives the ranking.
 */
import { platform } from '#platform';
import { computeSimilarity } from '../compute/similarity/index.js';
import { loadConceptSet } from '../data/builtin-concepts.js';
import { defaultCacheDir } from '../io/cache-dir.js';
import { sha256Hex } from '../io/sha256.js';
import { ArgumentError, ClipDissectError } from '../numeric/errors.js';
import type { Matrix } from '../numeric/matrix.js';
import type { RunHooks } from '../progress.js';
import { writeAnalysisJson } from '../results/index.js';
import { loadDissectRun, loadRunConceptSet, openRunClip, readRunMatrix, runLayer } from './_results.js';

const { join } = platform.paths;

export interface ComposeOptions {
  /** A `dissect` output folder. */
  results: string;
  /** A layer of the run. */
  layer: string;
  /** Neurons (units) of the layer to explain. */
  units: readonly number[];
  /** Single concepts combined per neuron. Default 100 (the paper's). */
  poolSize?: number;
  /** Candidates reported per neuron. Default 10. */
  top?: number;
  /** The run's concept set, when the one recorded in args.json cannot be read (checked against its SHA-256). */
  concepts?: string;
  /** Cache folder for a built-in concept set; default the run's. */
  cacheDir?: string;
  memoryBudget?: number;
  threads?: number;
  /** Where to write compose.json; default the results folder; null writes nothing. */
  out?: string | null;
}

export interface ComposeCandidate {
  /** The candidate concept ("w1 w2" or "w1"). */
  concept: string;
  kind: 'pair' | 'single';
  score: number;
}

export interface ComposeUnit {
  unit: number;
  /** The run's label and best single concepts, with their scores in the original concept set. */
  original: { concept: string; score: number }[];
  /** Candidates evaluated (poolSize² for poolSize singles). */
  candidates: number;
  top: ComposeCandidate[];
}

export interface ComposeResult {
  layer: string;
  similarity: string;
  poolSize: number;
  template: string;
  units: ComposeUnit[];
  files: string[];
}

/** The candidate concepts of one neuron: ordered pairs of distinct singles ("w1 w2"), then the singles. */
export function composeCandidates(
  singles: readonly string[],
): { concept: string; kind: 'pair' | 'single' }[] {
  const out: { concept: string; kind: 'pair' | 'single' }[] = [];
  for (let i = 0; i < singles.length; i++)
    for (let j = 0; j < singles.length; j++)
      if (i !== j) out.push({ concept: `${singles[i]} ${singles[j]}`, kind: 'pair' });
  for (const s of singles) out.push({ concept: s, kind: 'single' });
  return out;
}

export async function composeConcepts(o: ComposeOptions, hooks: RunHooks = {}): Promise<ComposeResult> {
  const poolSize = o.poolSize ?? 100;
  const top = o.top ?? 10;
  if (!Number.isInteger(poolSize) || poolSize < 2)
    throw new ArgumentError(`'poolSize' must be an integer >= 2 but got ${poolSize}`);
  if (!Number.isInteger(top) || top < 1)
    throw new ArgumentError(`'top' must be a positive integer but got ${top}`);
  if (!Array.isArray(o.units) || o.units.length === 0)
    throw new ArgumentError(`'units' must list at least one neuron but got ${JSON.stringify(o.units)}`);
  const run = await loadDissectRun(o.results);
  const layer = runLayer(run, o.layer);
  const units = [...new Set(o.units)];
  for (const u of units)
    if (!Number.isInteger(u) || u < 0 || u >= layer.neurons)
      throw new ArgumentError(
        `unit ${u} is not a neuron of layer '${layer.name}', which has units 0..${layer.neurons - 1}`,
      );

  // the run's concepts, checked against what it used
  const loadOptions = { cacheDir: o.cacheDir ?? run.cacheDir ?? defaultCacheDir(), offline: true };
  const argsPath = join(run.dir, 'args.json');
  const set =
    o.concepts !== undefined
      ? await loadConceptSet(o.concepts, loadOptions)
      : await loadRunConceptSet(run.concepts.source, argsPath, loadOptions);
  if (sha256Hex(JSON.stringify(set.concepts)) !== run.concepts.sha256)
    throw new ClipDissectError(
      'ERR_RESULTS',
      o.concepts !== undefined
        ? `the concept set '${o.concepts}' is not the run's: its concepts do not hash to the ${run.concepts.sha256.slice(0, 12)}… recorded in ${argsPath}`
        : `the concept set '${run.concepts.source}' has changed since the dissection (its concepts no longer hash to the recorded ${run.concepts.sha256.slice(0, 12)}…)`,
    );
  if (poolSize > set.concepts.length)
    throw new ArgumentError(
      `'poolSize' ${poolSize} is larger than the run's concept set (${set.concepts.length} concepts)`,
    );

  const I = await readRunMatrix(run, run.imageFeaturesFile);
  const T = await readRunMatrix(run, run.textFeaturesFile);
  const A = await readRunMatrix(run, layer.file);
  const progress = hooks.onProgress;
  const engine = (textFeatures: Matrix, keep: number, stage: string) =>
    computeSimilarity(
      run.similarity,
      { imageFeatures: I, textFeatures, activations: A },
      {
        options: run.options as never,
        top: keep,
        memoryBudget: o.memoryBudget,
        threads: o.threads,
      },
      { onProgress: progress ? (e) => progress({ ...e, stage }) : undefined, signal: hooks.signal },
    );
  const base = await engine(T, poolSize, `similarity ${layer.name}`);

  const clip = await openRunClip(run, { threads: o.threads });
  const results: ComposeUnit[] = [];
  try {
    for (const unit of units) {
      const idx = Array.from(base.topConcepts.subarray(unit * poolSize, (unit + 1) * poolSize));
      const scores = Array.from(base.topScores.subarray(unit * poolSize, (unit + 1) * poolSize));
      const singles = idx.map((i) => set.concepts[i]);
      const cands = composeCandidates(singles);
      const texts = cands.map((c) => run.template.replace('{}', c.concept));
      const e = await clip.encodeText(texts, {
        onProgress: progress
          ? (ev) => progress({ ...ev, stage: `candidate texts of unit ${unit}` })
          : undefined,
        signal: hooks.signal,
      });
      const r = await engine(
        { rows: e.rows, cols: e.cols, data: e.data },
        Math.min(top, cands.length),
        `similarity of unit ${unit}'s candidates`,
      );
      const topIdx = r.topConcepts.subarray(unit * r.top, (unit + 1) * r.top);
      const topSc = r.topScores.subarray(unit * r.top, (unit + 1) * r.top);
      results.push({
        unit,
        original: singles.slice(0, Math.min(5, poolSize)).map((c, i) => ({ concept: c, score: scores[i] })),
        candidates: cands.length,
        top: Array.from(topIdx, (ci, i) => ({
          concept: cands[ci].concept,
          kind: cands[ci].kind,
          score: topSc[i],
        })),
      });
    }
  } finally {
    await clip.release();
  }
  const result: ComposeResult = {
    layer: layer.name,
    similarity: run.similarity,
    poolSize,
    template: run.template,
    units: results,
    files: [],
  };
  const out = o.out === undefined ? run.dir : o.out;
  if (out !== null) {
    result.files.push(
      await writeAnalysisJson(out, 'compose', {
        results: run.dir,
        options: run.options,
        ...result,
        files: undefined,
      }),
    );
  }
  return result;
}
