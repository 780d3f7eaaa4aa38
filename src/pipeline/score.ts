/**
 * `clip-dissect score`: the trust figures of src/pipeline/trust.ts for any labels of a dissection's neurons,
 * on the same probe set, from the saved features: the run's own labels (neurons.json, judged as dissect judges
 * them: the candidates are the concept set and the scored label is the fit half's choice) and any labels file
 * eval reads (our descriptions.csv, NetDissect's tally.csv, MILAN's or LE's `layer,unit,description` CSV).
 *
 * A labels file's candidates are the distinct labels of the layer in that file, embedded with the run's CLIP
 * model and template; stability is the fraction of bootstrap resamples in which the similarity function, choosing
 * among those candidates, picks the neuron's label; significance compares the label's score on all images with
 * the permutation null of the winning score; simulation and the five metrics judge the given label on the
 * held-out half. Writes score.json (per layer, per method: settings, summary, one record per neuron).
 */
import { platform } from '#platform';
import { loadConceptSet } from '../data/builtin-concepts.js';
import { type ConceptPresence, readConceptLabels } from '../data/concept-labels.js';
import { LabelsFileError, type MethodLabels, readMethodLabels } from '../data/labels-files.js';
import { sha256Hex } from '../io/sha256.js';
import { ArgumentError, ClipDissectError, ShapeError } from '../numeric/errors.js';
import type { Matrix } from '../numeric/matrix.js';
import type { RunHooks } from '../progress.js';
import { writeAnalysisJson } from '../results/index.js';
import {
  embedDistinct,
  loadDissectRun,
  loadRunConceptSet,
  openRunClip,
  readRunMatrix,
  runLayer,
} from './_results.js';
import { computeLayerTrust, type LayerTrust, resolveTrustOptions, type TrustOptions } from './trust.js';

const { join } = platform.paths;

export interface ScoreOptions extends Omit<TrustOptions, 'onProgress'> {
  /** A `dissect` output folder. */
  results: string;
  /** Labels files to score beside the run's own labels. */
  labels?: readonly string[];
  /** Layers to score (default: every layer of the run). */
  layers?: readonly string[];
  /** The run's concept set, if args.json's path no longer reaches it (checked against its SHA-256). */
  concepts?: string;
  /** Ground-truth presence file (src/data/concept-labels.ts). */
  conceptLabels?: string;
  /** Where score.json goes (default: the results folder). */
  out?: string;
}

export interface MethodTrust {
  /** 'CLIP-Dissect' for the run's own labels, else the file. */
  method: string;
  source: string;
  layout: MethodLabels['layout'] | 'clip-dissect';
  layers: LayerTrust[];
}

export interface ScoreResult {
  similarity: string;
  images: number;
  methods: MethodTrust[];
  files: string[];
}

/** Scores the run's labels and those of `labels` files (see the file comment); writes score.json. */
export async function scoreLabels(o: ScoreOptions, hooks: RunHooks = {}): Promise<ScoreResult> {
  if (typeof o?.results !== 'string' || o.results === '')
    throw new ArgumentError(`'results' is required but got ${JSON.stringify(o?.results)}`);
  resolveTrustOptions(o);
  const run = await loadDissectRun(o.results);
  const explicit = o.layers !== undefined && o.layers.length > 0;
  const layers = explicit ? (o.layers as string[]).map((l) => runLayer(run, l)) : run.layers;
  const files = o.labels ?? [];
  // read every labels file first: a bad file fails before any computation
  const fileLabels: { file: string; byLayer: Map<string, MethodLabels> }[] = [];
  for (const file of files) {
    const byLayer = new Map<string, MethodLabels>();
    for (const l of layers) {
      try {
        const m = await readMethodLabels(file, l.name, l.neurons);
        if (m.layout === 'netdissect' && layers.length > 1)
          throw new ArgumentError(
            `${file} is a NetDissect tally.csv, which names no layer: choose the layer it labels with --layer (library: 'layers')`,
          );
        byLayer.set(l.name, m);
      } catch (e) {
        if (!explicit && e instanceof LabelsFileError && /no rows of layer/.test(e.message)) continue;
        throw e;
      }
    }
    if (byLayer.size === 0)
      throw new LabelsFileError(
        `${file}: no rows of any scored layer (${layers.map((l) => l.name).join(', ')})`,
      );
    fileLabels.push({ file, byLayer });
  }

  const argsPath = join(o.results, 'args.json');
  const set =
    o.concepts !== undefined
      ? await loadConceptSet(o.concepts, { cacheDir: run.cacheDir, offline: true })
      : await loadRunConceptSet(run.concepts.source, argsPath, { cacheDir: run.cacheDir, offline: true });
  if (run.concepts.sha256 !== undefined && sha256Hex(JSON.stringify(set.concepts)) !== run.concepts.sha256)
    throw new ClipDissectError(
      'ERR_RESULTS',
      `the concept set ${o.concepts ?? run.concepts.source} is not the run's: its concepts do not match the SHA-256 in ${argsPath}`,
    );
  const concepts = set.concepts;
  const I = await readRunMatrix(run, run.imageFeaturesFile);
  const T = await readRunMatrix(run, run.textFeaturesFile);
  if (T.rows !== concepts.length)
    throw new ShapeError(
      `${run.textFeaturesFile} has ${T.rows} rows but the run's concept set ${concepts.length}`,
    );
  let truth: ConceptPresence | undefined;
  if (o.conceptLabels !== undefined) truth = await readConceptLabels(o.conceptLabels, I.rows, concepts);

  const trustOpts: TrustOptions = o;
  const conceptIndex = new Map<string, number>();
  concepts.forEach((c, i) => {
    if (!conceptIndex.has(c)) conceptIndex.set(c, i);
  });
  const own: MethodTrust = {
    method: 'CLIP-Dissect',
    source: join(o.results, 'neurons.json'),
    layout: 'clip-dissect',
    layers: [],
  };
  const activations = new Map<string, Matrix>();
  for (const l of layers) {
    const A = await readRunMatrix(run, l.file);
    activations.set(l.name, A);
    const recs = run.neurons.get(l.name) ?? [];
    const labels = Int32Array.from({ length: l.neurons }, (_, k) => {
      const c = conceptIndex.get(recs[k]?.label ?? '');
      if (c === undefined)
        throw new ClipDissectError(
          'ERR_RESULTS',
          `neurons.json: unit ${k} of layer '${l.name}' has label ${JSON.stringify(recs[k]?.label)}, which is not a concept of the run`,
        );
      return c;
    });
    own.layers.push(
      await computeLayerTrust(
        {
          layer: l.name,
          similarity: run.similarity,
          options: run.options,
          imageFeatures: I,
          candidates: T,
          candidateNames: concepts,
          activations: A,
          labels,
          mode: 'chosen',
          groundTruth: truth ? (c) => truth.get(concepts[c]) : undefined,
        },
        trustOpts,
        hooks,
      ),
    );
  }
  const methods = [own];
  if (fileLabels.length > 0) {
    const all = fileLabels.flatMap((f) => [...f.byLayer.values()].flatMap((m) => m.labels));
    const clip = await openRunClip(run, { threads: o.threads });
    let rows: (list: readonly string[]) => Matrix;
    try {
      rows = await embedDistinct(all, async (texts) => {
        const e = await clip.encodeText(
          texts.map((t) => run.template.replace('{}', t)),
          { onProgress: hooks.onProgress, signal: hooks.signal },
        );
        if (e.truncated.length)
          hooks.onWarning?.(
            `${e.truncated.length} label${e.truncated.length === 1 ? ' was' : 's were'} longer than CLIP's ${clip.contextLength} tokens and cut (first: ${JSON.stringify(texts[e.truncated[0]])})`,
          );
        return e;
      });
    } finally {
      await clip.release();
    }
    for (const f of fileLabels) {
      const m: MethodTrust = { method: f.file, source: f.file, layout: 'layer-unit-description', layers: [] };
      for (const l of layers) {
        const ml = f.byLayer.get(l.name);
        if (!ml) continue;
        m.layout = ml.layout;
        const names = [...new Set(ml.labels)];
        const index = new Map(names.map((n, i) => [n, i]));
        m.layers.push(
          await computeLayerTrust(
            {
              layer: l.name,
              similarity: run.similarity,
              options: run.options,
              imageFeatures: I,
              candidates: rows(names),
              candidateNames: names,
              activations: activations.get(l.name) as Matrix,
              labels: Int32Array.from(ml.labels, (t) => index.get(t) as number),
              mode: 'given',
              groundTruth: truth ? (c) => truth.get(names[c]) : undefined,
            },
            trustOpts,
            hooks,
          ),
        );
      }
      methods.push(m);
    }
  }
  const body = {
    results: o.results,
    similarity: run.similarity,
    options: run.options,
    images: I.rows,
    conceptLabels: o.conceptLabels ?? null,
    methods: methods.map((m) => ({
      method: m.method,
      source: m.source,
      layout: m.layout,
      layers: m.layers.map((l) => ({
        layer: l.layer,
        settings: l.settings,
        summary: l.summary,
        neurons: l.neurons,
      })),
    })),
  };
  const out = await writeAnalysisJson(o.out ?? o.results, 'score', body);
  return { similarity: run.similarity, images: I.rows, methods, files: [out] };
}
