import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { ArgumentError, ShapeError } from '../../src/numeric/errors.js';
import { SIMILARITY_NAMES, type SimilarityName } from '../../src/numeric/similarity-options.js';
import { rankReorderBaseline, similarityReference } from '../../src/numeric/similarity-reference.js';
import { handCase, maxAbsDiff, plantedData, rowTopK } from '../helpers/data.js';
import { GOLDEN_CASES, goldenOptions, loadGolden } from '../helpers/golden.js';

const close = (a: number, b: number, tol: number, what: string) =>
  assert.ok(Math.abs(a - b) <= tol, `${what}: expected ${b}, got ${a} (tolerance ${tol})`);

describe('similarity reference: hand-computed cases (3 images, 2 concepts)', () => {
  it('cos_similarity', () => {
    const s = similarityReference('cos_similarity', handCase());
    close(s.data[0], 0.96326037, 1e-6, 'score[0,0]');
    close(s.data[1], 0.52682459, 1e-6, 'score[0,1]');
  });
  it('cos_similarity_cubed', () => {
    const s = similarityReference('cos_similarity_cubed', handCase());
    close(s.data[0], 0.93021551, 1e-6, 'score[0,0]');
    close(s.data[1], -0.93021551, 1e-6, 'score[0,1]');
  });
  it('wpmi (topK 2, a 2, λ 0.6; one neuron so the prior is S itself)', () => {
    const s = similarityReference('wpmi', handCase(), { topK: 2 });
    close(s.data[0], -0.32802995, 1e-6, 'score[0,0]');
    close(s.data[1], -1.12802966, 1e-6, 'score[0,1]');
  });
  it('soft_wpmi (topK 2, two mirrored neurons)', () => {
    const s = similarityReference('soft_wpmi', handCase(2), { topK: 2 });
    close(s.data[0], 0.69110377, 1e-5, 'score[0,0]');
    close(s.data[1], -5.50100947, 1e-5, 'score[0,1]');
    close(s.data[2], -5.50100947, 1e-5, 'score[1,0]');
    close(s.data[3], 0.69110377, 1e-5, 'score[1,1]');
  });
  it('rank_reorder (all 3 images): the concept that orders images like the neuron has error 0', () => {
    const s = similarityReference('rank_reorder', handCase(), { topFraction: 1 });
    assert.equal(s.data[0], -0);
    // err = mean |v − v'|³ = 16/3 over the reversed order; divided by baseline and sqrt(mean c)
    const base = rankReorderBaseline(Float64Array.of(3, 2, 1), 3, 0, 0);
    close(s.data[1], -16 / 3 / base / Math.sqrt(0.5690355937288492), 1e-5, 'score[0,1]');
  });
});

describe('similarity reference: planted structure', () => {
  const data = plantedData(240, 30, 24, 12, 7);
  for (const fn of SIMILARITY_NAMES) {
    it(`${fn} gives neuron k its planted concept k`, () => {
      const opts =
        fn === 'soft_wpmi'
          ? { topK: 20 }
          : fn === 'wpmi'
            ? { topK: 10 }
            : fn === 'rank_reorder'
              ? { topFraction: 0.1 }
              : {};
      const s = similarityReference(fn, data, opts as never);
      assert.deepEqual(
        Array.from(rowTopK(s, 1).indices),
        Array.from({ length: 12 }, (_, k) => k),
      );
    });
  }
});

describe('similarity reference: validation', () => {
  const data = handCase();
  it('names the option, the limit and the value', () => {
    assert.throws(
      () => similarityReference('soft_wpmi', data),
      (e: unknown) => {
        assert.ok(e instanceof ArgumentError);
        assert.match(e.message, /soft_wpmi: 'topK' must be <= nImages \(3\) but got 100/);
        return true;
      },
    );
    assert.throws(
      () => similarityReference('wpmi', data, { topK: 2, a: Number.NaN }),
      /'a' must be a positive number \(the softmax temperature\) but got NaN \(CLI: --param a=…\)/,
    );
    assert.throws(
      () => similarityReference('soft_wpmi', data, { topK: 2, pEnd: 1.5 }),
      /'pEnd' must be a probability in \(0, 1\] but got 1.5 \(CLI: --param pEnd=…\)/,
    );
    assert.throws(() => similarityReference('rank_reorder', data), /floor\(3 × 0.05\) = 0/);
  });
  it('rejects hyperparameters that make the method degenerate, with the valid range', () => {
    const cases: [string, Record<string, number>, RegExp][] = [
      [
        'soft_wpmi',
        { topK: 2, a: 0 },
        /soft_wpmi: 'a' must be a positive number .* but got 0 \(CLI: --param a=…\)/,
      ],
      ['wpmi', { topK: 2, a: -2 }, /wpmi: 'a' must be a positive number .* but got -2/],
      [
        'soft_wpmi',
        { topK: 2, lambda: -0.5 },
        /'lambda' must be >= 0 .* but got -0.5 \(CLI: --param lambda=…\)/,
      ],
      ['wpmi', { topK: 2, lambda: -1 }, /wpmi: 'lambda' must be >= 0/],
      ['soft_wpmi', { topK: 2, pStart: 0 }, /'pStart' must be a probability in \(0, 1\] but got 0/],
      ['soft_wpmi', { topK: 2, pEnd: 0 }, /'pEnd' must be a probability in \(0, 1\] but got 0/],
      ['soft_wpmi', { topK: 2, pStart: 1.01 }, /'pStart' must be a probability in \(0, 1\] but got 1.01/],
      [
        'soft_wpmi',
        { topK: 2, pStart: 0.5, pEnd: 0.9 },
        /'pEnd' must be <= 'pStart' \(0.5\) but got 0.9: .* \(CLI: --param pEnd=…\)/,
      ],
      ['soft_wpmi', { topK: 0 }, /'topK' must be a positive integer but got 0 \(CLI: --param topK=…\)/],
      ['wpmi', { topK: 1.5 }, /'topK' must be a positive integer but got 1.5/],
      [
        'rank_reorder',
        { topFraction: 0 },
        /'topFraction' must be in \(0, 1\] but got 0 \(CLI: --param topFraction=…\)/,
      ],
      ['rank_reorder', { topFraction: 1.5 }, /'topFraction' must be in \(0, 1\] but got 1.5/],
    ];
    for (const [fn, options, re] of cases)
      assert.throws(
        () => similarityReference(fn as 'soft_wpmi', data, options),
        re,
        `${fn} ${JSON.stringify(options)}`,
      );
    // the edges of the valid ranges are accepted: lambda 0, pStart = pEnd, p = 1, topFraction 1
    assert.doesNotThrow(() =>
      similarityReference('soft_wpmi', data, { topK: 2, lambda: 0, pStart: 0.9, pEnd: 0.9 }),
    );
    assert.doesNotThrow(() => similarityReference('soft_wpmi', data, { topK: 2, pStart: 1, pEnd: 1 }));
    assert.doesNotThrow(() => similarityReference('rank_reorder', data, { topFraction: 1 }));
  });
  it('lists the valid options for an unknown one', () => {
    assert.throws(
      () => similarityReference('wpmi', data, { topk: 2 } as never),
      /wpmi: unknown option 'topk'; valid options are 'topK', 'a', 'lambda' or 'minProb'/,
    );
  });
  it('rejects shapes that do not fit', () => {
    const bad = { ...data, textFeatures: { rows: 2, cols: 3, data: new Float32Array(6) } };
    assert.throws(
      () => similarityReference('cos_similarity', bad),
      (e: unknown) => {
        assert.ok(e instanceof ShapeError);
        assert.match(e.message, /image features have dimension 2 \(3×2\) but text features have 3 \(2×3\)/);
        return true;
      },
    );
    const bad2 = { ...data, activations: { rows: 4, cols: 1, data: new Float32Array(4) } };
    assert.throws(
      () => similarityReference('cos_similarity', bad2),
      /image features have 3 rows \(3×2\) but activations have 4 \(4×1\)/,
    );
  });
});

describe('similarity reference: golden values from the torch reference (scripts/make_similarity_golden.py)', () => {
  for (const name of GOLDEN_CASES) {
    for (const fn of SIMILARITY_NAMES) {
      it(`${name}: ${fn}`, async () => {
        const c = await loadGolden(name);
        const inputs = { imageFeatures: c.I, textFeatures: c.T, activations: c.A };
        const ours = similarityReference(fn as SimilarityName, inputs, goldenOptions(c, fn) as never);
        const dead = new Set(c.json.dead_neurons ?? []);
        const K = c.A.cols;
        const M = c.T.rows;
        const ref = fn === 'rank_reorder' ? await c.score('rank_reorder_unscaled') : await c.score(fn);
        // absolute for the PMI scores (the 1e-3), relative elsewhere
        const tol = fn === 'soft_wpmi' || fn === 'wpmi' ? 1e-3 : 1e-5;
        const refScale =
          fn === 'soft_wpmi' || fn === 'wpmi'
            ? 1
            : Math.max(1, ...Array.from(ref.data, Math.abs).filter(Number.isFinite));
        for (let k = 0; k < K; k++) {
          if (dead.has(k) && (fn === 'cos_similarity' || fn === 'rank_reorder')) {
            // the reference gives NaN (0/0); we give a defined 0 and flag the neuron
            assert.equal(maxAbsDiff(ours.data.subarray(k * M, (k + 1) * M), new Float32Array(M)), 0);
            continue;
          }
          let row = ours.data.subarray(k * M, (k + 1) * M);
          if (fn === 'rank_reorder') {
            // the baseline is a positive per-neuron factor drawn from a different RNG: compare without it
            const f = new Float32Array(M);
            const ro = goldenOptions(c, 'rank_reorder');
            const topN = Math.floor(c.A.rows * ro.topFraction);
            const col = Array.from({ length: c.A.rows }, (_, i) => c.A.data[i * K + k]).sort((a, b) => b - a);
            const base = rankReorderBaseline(Float64Array.from(col.slice(0, topN)), ro.p, 0, k);
            for (let t = 0; t < M; t++) f[t] = row[t] * base;
            row = f;
          }
          const diff = maxAbsDiff(row, ref.data.subarray(k * M, (k + 1) * M));
          assert.ok(
            diff <= tol * refScale,
            `${name}/${fn} neuron ${k}: max |ours − reference| = ${diff} > ${tol * refScale}`,
          );
        }
        const labels = await c.labels(fn === 'rank_reorder' ? 'rank_reorder_unscaled' : fn);
        const margins = c.json.label_margin[fn === 'rank_reorder' ? 'rank_reorder_unscaled' : fn];
        const ourLabels = rowTopK(ours, 1).indices;
        for (let k = 0; k < K; k++) {
          if (dead.has(k) || margins[k] === null || (margins[k] as number) <= 1e-4) continue;
          assert.equal(ourLabels[k], labels[k], `${name}/${fn} neuron ${k}: label`);
        }
      });
    }
  }
});
