import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { describe, it } from 'node:test';
import { fileURLToPath } from 'node:url';
import {
  incompleteBeta,
  incompleteBetaLog,
  logGamma,
  pearson,
  pearsonPValue,
} from '../../src/numeric/stats.js';

/** scipy.special.betainc / scipy.stats.pearsonr and mpmath values (scripts/make_stats_golden.py). */
const GOLDEN = JSON.parse(
  readFileSync(fileURLToPath(new URL('../../../test/golden/stats/stats.json', import.meta.url)), 'utf8'),
) as {
  betainc: { a: number; b: number; x: number; value: number; log10: number }[];
  betaincTiny: { a: number; b: number; x: number; log10: number }[];
  pearson: { n: number; x: number[]; y: number[]; r: number; p: number; log10p: number }[];
  pearsonBig: { n: number; r: number; p: number; log10p: number };
};

/** |got − want| ≤ rel·|want| + abs. */
const close = (got: number, want: number, rel: number, what: string, abs = 1e-13) =>
  assert.ok(
    Math.abs(got - want) <= rel * Math.abs(want) + abs,
    `${what}: got ${got}, want ${want} (relative tolerance ${rel}, absolute ${abs})`,
  );

describe('logGamma', () => {
  it('matches factorials and Γ(1/2) = √π', () => {
    close(logGamma(1), 0, 0, 'lnΓ(1)', 1e-14);
    close(logGamma(6), Math.log(120), 1e-14, 'lnΓ(6)');
    close(logGamma(0.5), 0.5 * Math.log(Math.PI), 1e-14, 'lnΓ(1/2)');
    close(logGamma(171), Math.log(7.257415615307994e306), 1e-13, 'lnΓ(171)');
  });
  it('rejects x <= 0', () => {
    assert.throws(() => logGamma(0), /x must be > 0 but got 0/);
  });
});

describe('incompleteBeta', () => {
  it('matches scipy.special.betainc on a grid of a, b, x', () => {
    for (const g of GOLDEN.betainc) {
      const { value, log } = incompleteBetaLog(g.x, g.a, g.b);
      const what = `I_${g.x}(${g.a}, ${g.b})`;
      close(value, g.value, 1e-9, what, 1e-300);
      close(log / Math.LN10, g.log10, 1e-9, `log10 ${what}`);
    }
  });
  it('keeps the log finite where the value underflows (mpmath)', () => {
    for (const g of GOLDEN.betaincTiny) {
      const { value, log } = incompleteBetaLog(g.x, g.a, g.b);
      assert.equal(value, 0);
      close(log / Math.LN10, g.log10, 1e-9, `log10 I_${g.x}(${g.a}, ${g.b})`);
    }
  });
  it('has the closed forms I_x(a, 1) = x^a and I_x(1, b) = 1 − (1−x)^b', () => {
    close(incompleteBeta(0.3, 4, 1), 0.3 ** 4, 1e-12, 'I_0.3(4, 1)');
    close(incompleteBeta(0.3, 1, 2.5), 1 - 0.7 ** 2.5, 1e-12, 'I_0.3(1, 2.5)');
    assert.equal(incompleteBeta(0, 2, 3), 0);
    assert.equal(incompleteBeta(1, 2, 3), 1);
  });
  it('rejects x outside [0, 1] and non-positive a, b', () => {
    assert.throws(() => incompleteBeta(1.5, 1, 1), /x must be in \[0, 1\] but got 1.5/);
    assert.throws(() => incompleteBeta(0.5, 0, 1), /a and b must be > 0 but got a = 0, b = 1/);
  });
});

describe('pearson', () => {
  it('matches scipy.stats.pearsonr (r and p) on seeded data', () => {
    for (const c of GOLDEN.pearson) {
      const got = pearson(c.x, c.y);
      close(got.r, c.r, 1e-12, `r (n = ${c.n})`);
      close(got.p, c.p, 1e-9, `p (n = ${c.n})`);
      close(got.log10p, c.log10p, 1e-9, `log10 p (n = ${c.n})`);
      assert.equal(got.n, c.n);
    }
  });
  it('has the t distribution’s closed forms for 1 and 2 degrees of freedom', () => {
    // n = 3: t = r·√(1/(1−r²)), Cauchy: p = 1 − (2/π)·atan|t|
    for (const r of [0.1, 0.5, 0.9, -0.99]) {
      const t = Math.abs(r) / Math.sqrt(1 - r * r);
      close(pearsonPValue(r, 3).p, 1 - (2 / Math.PI) * Math.atan(t), 1e-12, `n = 3, r = ${r}`);
    }
    // n = 4: t = r·√(2/(1−r²)), p = 1 − |t|/√(2 + t²) = 1 − |r|
    for (const r of [0.05, 0.3, 0.7, -0.95]) close(pearsonPValue(r, 4).p, 1 - Math.abs(r), 1e-12, `n = 4`);
  });
  it('a hand-computed example: x = 1..5, y = 2, 1, 4, 3, 5 gives r = 0.8', () => {
    // mean 3 each; Σdxdy = 2+2+0+0+4 = 8, Σdx² = Σdy² = 10 → r = 0.8
    const res = pearson([1, 2, 3, 4, 5], [2, 1, 4, 3, 5]);
    close(res.r, 0.8, 1e-15, 'r');
    // 3 df: t = 0.8·√(3/0.36) = 2.3094…, two-sided p = 0.104088 (t tables)
    close(res.p, 0.10408803866182788, 1e-9, 'p');
  });
  it('the paper’s regime: 2 million pairs at r = 0.12 underflow p but not log10 p', () => {
    const g = GOLDEN.pearsonBig;
    const got = pearsonPValue(g.r, g.n);
    assert.equal(got.p, 0);
    assert.equal(g.p, 0);
    close(got.log10p, g.log10p, 1e-9, 'log10 p');
  });
  it('constant input gives NaN; |r| = 1 gives p = 0; too few pairs is an error', () => {
    assert.ok(Number.isNaN(pearson([1, 1, 1], [1, 2, 3]).r));
    assert.deepEqual(pearsonPValue(1, 10), { p: 0, log10p: Number.NEGATIVE_INFINITY });
    assert.equal(pearson([1, 2], [3, 1]).p, 1);
    assert.throws(() => pearson([1], [2]), /at least 2 pairs are needed but got 1/);
  });
});
