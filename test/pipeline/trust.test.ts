import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import type { Matrix } from '../../src/numeric/matrix.js';
import { gaussianSampler, mulberry32 } from '../../src/numeric/random.js';
import { normalizeRows } from '../../src/numeric/reductions.js';
import type { SimilarityName } from '../../src/numeric/similarity-options.js';
import { ksUniform } from '../../src/numeric/trust-metrics.js';
import { dissect } from '../../src/pipeline/dissect.js';
import { syntheticActivations } from '../../src/pipeline/sanity.js';
import { computeLayerTrust, type LayerTrust, type TrustInputs } from '../../src/pipeline/trust.js';
import { randomMatrix } from '../helpers/data.js';

const N = 240;
const M = 40;
const D = 32;
const K = 30;
const I = randomMatrix(N, D, 1, (u) => u - 0.5);
const T = randomMatrix(M, D, 2, (u) => u - 0.5);
const names = Array.from({ length: M }, (_, i) => `concept ${i}`);
const specs = Array.from({ length: K }, (_, k) => ({ concepts: [k] }));

/** Neuron k planted on concept k at the given noise level (noise sd / signal sd). */
function planted(noise: number): Matrix {
  return syntheticActivations(normalizeRows(I), normalizeRows(T), specs, noise, mulberry32(7));
}

async function trust(
  A: Matrix,
  similarity: SimilarityName,
  labels = Int32Array.from({ length: K }, (_, k) => k),
) {
  return computeLayerTrust(
    inputs(A, { similarity, options: similarity === 'soft_wpmi' ? { topK: 40 } : {}, labels }),
    { threads: 1 },
  );
}

/** The layer's inputs over the planted concepts, `over` replacing fields. */
const inputs = (A: Matrix, over: Partial<TrustInputs> = {}): TrustInputs => ({
  layer: 'L',
  similarity: 'cos_similarity',
  imageFeatures: I,
  candidates: T,
  candidateNames: names,
  activations: A,
  labels: Int32Array.from({ length: K }, (_, k) => k),
  mode: 'given',
  ...over,
});

const mean = (t: LayerTrust, f: (n: LayerTrust['neurons'][number]) => number | null) =>
  t.neurons.reduce((s, n) => s + (f(n) ?? 0), 0) / t.neurons.length;

describe('trust figures on planted neurons', () => {
  for (const similarity of ['cos_similarity', 'soft_wpmi'] as const) {
    it(`${similarity}: stability and simulation r fall as noise grows; planted p-values are tiny`, async () => {
      const levels = [0, 2, 8];
      const rows: { stability: number; simulation: number; p: number }[] = [];
      for (const noise of levels) {
        const t = await trust(planted(noise), similarity);
        rows.push({
          stability: mean(t, (n) => n.stability),
          simulation: mean(t, (n) => n.simulation),
          p: Math.max(...t.neurons.map((n) => n.p ?? 1)),
        });
        if (noise === 0) {
          assert.ok(
            t.summary.significant === 1,
            `every noiseless neuron significant: ${t.summary.significant}`,
          );
          assert.ok(rows[0].p <= 2 / (K * 20 + 1), `largest noiseless p ${rows[0].p}`);
          assert.ok(t.neurons.every((n) => n.fitLabelMatches && n.label === `concept ${n.unit}`));
        }
      }
      const msg = JSON.stringify(rows);
      assert.ok(rows[0].stability > 0.9, msg);
      assert.ok(rows[0].simulation > 0.9, msg);
      for (let i = 1; i < rows.length; i++) {
        assert.ok(rows[i].stability <= rows[i - 1].stability, `stability falls: ${msg}`);
        assert.ok(rows[i].simulation < rows[i - 1].simulation, `simulation r falls: ${msg}`);
      }
      assert.ok(rows[2].stability < rows[0].stability - 0.2, `stability falls: ${msg}`);
    });
  }

  it('p-values of pure-noise neurons are close to uniform (KS test)', async () => {
    const g = gaussianSampler(mulberry32(11));
    const noise: Matrix = { rows: N, cols: 60, data: Float32Array.from({ length: N * 60 }, g) };
    const t = await computeLayerTrust(
      {
        layer: 'noise',
        similarity: 'cos_similarity',
        imageFeatures: I,
        candidates: T,
        candidateNames: names,
        activations: noise,
        labels: new Int32Array(60),
        mode: 'chosen',
      },
      { threads: 1, permutations: 20 },
    );
    const ps = t.neurons.map((n) => n.p as number);
    const ks = ksUniform(ps);
    assert.ok(ks.p > 0.01, `KS against U(0,1): D = ${ks.d}, p = ${ks.p}`);
    assert.ok(
      t.summary.badges.high === 0,
      `no noise neuron gets a 'high' badge: ${JSON.stringify(t.summary.badges)}`,
    );
  });

  it('metrics and presence: CLIP pseudo-labels by default, ground truth when given', async () => {
    const A = planted(0);
    const clip = await trust(A, 'cos_similarity');
    assert.equal(clip.settings.presence, 'clip');
    for (const n of clip.neurons)
      assert.ok((n.metrics.auprc ?? 0) > 0.5, `unit ${n.unit} AUPRC ${n.metrics.auprc}`);
    // ground truth: concept c is "present" in images whose feature's first coordinate is positive (unrelated)
    const gt = (c: number) => Uint8Array.from({ length: N }, (_, i) => (I.data[i * D + (c % D)] > 0 ? 1 : 0));
    const truth = await computeLayerTrust(inputs(A, { groundTruth: gt }), {
      threads: 1,
      bootstraps: 2,
      permutations: 2,
    });
    assert.equal(truth.settings.presence, 'ground-truth');
    assert.ok(
      truth.summary.metrics.auprc.mean !== null &&
        truth.summary.metrics.auprc.mean < (clip.summary.metrics.auprc.mean ?? 0),
    );
  });

  it('a fit half too small for rank_reorder keeps one image per neuron instead of failing', async () => {
    const small = (m: Matrix) => ({ rows: 30, cols: m.cols, data: m.data.slice(0, 30 * m.cols) });
    const t = await computeLayerTrust(
      inputs(small(planted(0)), { similarity: 'rank_reorder', imageFeatures: small(I), mode: 'chosen' }),
      { threads: 1, bootstraps: 2, permutations: 2 },
    );
    assert.equal(t.settings.fitImages, 15);
    assert.equal(t.neurons.length, K);
  });

  it('dissect checks its trust options with the others, before any work', async () => {
    await assert.rejects(
      dissect({
        target: 'none.onnx',
        layers: 'conv1',
        probe: 'none',
        concepts: 'none',
        trust: { permutations: 1.5 },
      }),
      /'permutations' must be an integer in \[1, 10000\] but got 1.5/,
    );
  });

  it('checks its options before any work, naming the value', async () => {
    const A = planted(0);
    await assert.rejects(
      computeLayerTrust(inputs(A, { labels: new Int32Array(K) }), { bootstraps: 0 }),
      /'bootstraps' must be an integer in \[1, 10000\] but got 0/,
    );
    await assert.rejects(
      computeLayerTrust(inputs(A, { labels: new Int32Array(K).fill(99) }), {}),
      /label of unit 0 must be a candidate index in \[0, 40\) but got 99/,
    );
  });
});
