import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { gaussianSampler, mulberry32 } from '../../src/numeric/random.js';
import { normalizeRows } from '../../src/numeric/reductions.js';
import { correlation, meanStd } from '../../src/numeric/trust-metrics.js';
import { sanityFromFeatures, syntheticActivations } from '../../src/pipeline/sanity.js';

const g = gaussianSampler(mulberry32(1));
const gauss = (r: number, c: number) => ({ rows: r, cols: c, data: Float32Array.from({ length: r * c }, g) });
const I = gauss(300, 32);
const T = gauss(60, 32);

describe('synthetic neurons', () => {
  it('are the CLIP cosine (OR: the larger, AND: the smaller) plus noise of the asked size', () => {
    const In = normalizeRows(I);
    const Tn = normalizeRows(T);
    const specs = [
      { concepts: [3] },
      { concepts: [3, 4], op: 'or' as const },
      { concepts: [3, 4], op: 'and' as const },
    ];
    const clean = syntheticActivations(In, Tn, specs, 0, mulberry32(0));
    const col = (m: typeof clean, k: number) =>
      Float64Array.from({ length: m.rows }, (_, i) => m.data[i * m.cols + k]);
    for (let i = 0; i < 300; i++) {
      let s3 = 0;
      let s4 = 0;
      for (let j = 0; j < 32; j++) {
        s3 += In.data[i * 32 + j] * Tn.data[3 * 32 + j];
        s4 += In.data[i * 32 + j] * Tn.data[4 * 32 + j];
      }
      assert.ok(Math.abs(clean.data[i * 3] - s3) < 1e-6);
      assert.ok(Math.abs(clean.data[i * 3 + 1] - Math.max(s3, s4)) < 1e-6);
      assert.ok(Math.abs(clean.data[i * 3 + 2] - Math.min(s3, s4)) < 1e-6);
    }
    const noisy = syntheticActivations(In, Tn, specs, 2, mulberry32(0));
    const noise = col(noisy, 0).map((v, i) => v - col(clean, 0)[i]);
    const ratio = meanStd(noise).std / meanStd(col(clean, 0)).std;
    assert.ok(Math.abs(ratio - 2) < 0.3, `noise sd / signal sd ${ratio}`);
    assert.ok(correlation(col(noisy, 0), col(clean, 0)) < 0.6);
    assert.throws(
      () => syntheticActivations(In, Tn, specs, -1, mulberry32(0)),
      /noise level must be a finite number >= 0 but got -1/,
    );
  });

  it('recovery falls with noise; the sanity-checked metrics pass both tests on clean neurons', async () => {
    const r = await sanityFromFeatures(I, T, {
      neurons: 12,
      pairs: 60,
      noise: [0, 4],
      similarities: ['cos_similarity', 'soft_wpmi'],
      threads: 1,
    });
    const rec = (noise: number, s: string) =>
      r.recovery.find((x) => x.noise === noise && x.similarity === s && x.kind === 'single')?.top1 ??
      Number.NaN;
    for (const s of ['cos_similarity', 'soft_wpmi']) {
      assert.equal(rec(0, s), 1, `${s} recovers every clean single-concept neuron`);
      assert.ok(rec(4, s) < rec(0, s), `${s} recovery falls with noise`);
    }
    const pass = (test: string, m: string) =>
      r.tests.find((x) => x.noise === 0 && x.test === test && x.metric === m)?.passRate;
    for (const m of ['correlation', 'cosine', 'auprc']) {
      assert.ok((pass('missing-label', m) ?? 0) >= 0.95, `${m} missing-label ${pass('missing-label', m)}`);
      assert.ok((pass('extra-label', m) ?? 0) >= 0.95, `${m} extra-label ${pass('extra-label', m)}`);
    }
    for (const m of ['f1', 'iou']) assert.ok((pass('extra-label', m) ?? 0) >= 0.95, `${m} extra-label`);
  });
});
