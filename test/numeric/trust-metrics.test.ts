import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { describe, it } from 'node:test';
import { fileURLToPath } from 'node:url';
import { mulberry32 } from '../../src/numeric/random.js';
import {
  averagePrecision,
  bootstrapIndices,
  correlation,
  cosine,
  f1,
  iou,
  ksUniform,
  labelMetrics,
  linearFit,
  pooledPValue,
  splitHalves,
  topFractionMask,
} from '../../src/numeric/trust-metrics.js';

/** scikit-learn / numpy / scipy values (scripts/make_trust_golden.py). */
const GOLDEN = JSON.parse(
  readFileSync(fileURLToPath(new URL('../../../test/golden/trust/metrics.json', import.meta.url)), 'utf8'),
) as {
  metrics: {
    name: string;
    fraction: number;
    activations: number[];
    presence: number[];
    active: number[];
    correlation: number;
    cosine: number;
    auprc: number;
    f1: number;
    iou: number;
  }[];
  ks: { name: string; values: number[]; d: number; p: number }[];
};

const close = (got: number, want: number, tol: number, what: string) =>
  assert.ok(Math.abs(got - want) <= tol, `${what}: got ${got}, want ${want} (tolerance ${tol})`);

describe('trust metrics against scikit-learn and numpy', () => {
  for (const c of GOLDEN.metrics) {
    it(`case '${c.name}' (${c.activations.length} images)`, () => {
      assert.deepEqual(Array.from(topFractionMask(c.activations, c.fraction)), c.active, 'binarisation');
      close(averagePrecision(c.presence, c.activations), c.auprc, 1e-12, 'average_precision_score');
      close(f1(c.presence, c.active), c.f1, 1e-12, 'f1_score');
      close(iou(c.presence, c.active), c.iou, 1e-12, 'jaccard_score');
      close(correlation(c.activations, c.presence), c.correlation, 1e-12, 'corrcoef');
      close(cosine(c.activations, c.presence), c.cosine, 1e-12, 'cosine');
      const m = labelMetrics(c.activations, c.presence, c.fraction);
      assert.deepEqual(
        [m.correlation, m.cosine, m.auprc, m.f1, m.iou].map((v) => v.toFixed(10)),
        [c.correlation, c.cosine, c.auprc, c.f1, c.iou].map((v) => v.toFixed(10)),
      );
    });
  }
  it('documents the degenerate cases: no positive → AP NaN; both empty → F1 = IoU = 0', () => {
    assert.ok(Number.isNaN(averagePrecision([0, 0, 0], [1, 2, 3])));
    assert.equal(f1([0, 0], [0, 0]), 0);
    assert.equal(iou([0, 0], [0, 0]), 0);
    assert.ok(Number.isNaN(correlation([1, 1, 1], [0, 1, 0])));
    assert.ok(Number.isNaN(cosine([0, 0], [1, 0])));
  });
  it('rejects inputs of different lengths, naming both', () => {
    assert.throws(() => f1([1, 0], [1]), /f1: the two inputs must have one length but have 2 and 1/);
    assert.throws(() => topFractionMask([1, 2], 0), /top fraction must be in \(0, 1\] but got 0/);
  });
});

describe('Kolmogorov–Smirnov against U(0, 1)', () => {
  for (const c of GOLDEN.ks) {
    it(`matches scipy.stats.kstest on '${c.name}'`, () => {
      const r = ksUniform(c.values);
      close(r.d, c.d, 1e-12, 'D');
      // Stephens' correction against scipy's plain asymptotic distribution
      close(r.p, c.p, 0.03, 'p');
    });
  }
});

describe('resampling helpers', () => {
  it('bootstrapIndices and splitHalves are seeded, in range and sorted', () => {
    const a = bootstrapIndices(100, mulberry32(3));
    assert.deepEqual(a, bootstrapIndices(100, mulberry32(3)));
    assert.ok(a.every((v, i) => v >= 0 && v < 100 && (i === 0 || a[i - 1] <= v)));
    assert.ok(new Set(a).size < 100, 'draws with replacement');
    const { fit, held } = splitHalves(11, mulberry32(5));
    assert.equal(fit.length, 5);
    assert.equal(held.length, 6);
    assert.deepEqual(
      [...fit, ...held].sort((x, y) => x - y),
      Array.from({ length: 11 }, (_, i) => i),
    );
  });
  it('linearFit recovers a line; pooledPValue counts ties as at least as extreme', () => {
    const f = linearFit([0, 1, 2, 3], [1, 3, 5, 7]);
    close(f.intercept, 1, 1e-12, 'intercept');
    close(f.slope, 2, 1e-12, 'slope');
    const nul = Float64Array.of(0, 1, 2, 3);
    assert.equal(pooledPValue(2, nul), 3 / 5);
    assert.equal(pooledPValue(10, nul), 1 / 5);
    assert.ok(Number.isNaN(pooledPValue(Number.NaN, nul)));
  });
});
