import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import {
  computeSimilarity,
  cosConceptNorms,
  pmiSoftmaxRows,
  type SimilarityReuse,
} from '../../src/compute/similarity/index.js';
import { ArgumentError, NonFiniteError } from '../../src/numeric/errors.js';
import { gatherRows } from '../../src/numeric/matrix.js';
import { mulberry32, randomPermutation } from '../../src/numeric/random.js';
import { SIMILARITY_NAMES, type SimilarityName } from '../../src/numeric/similarity-options.js';
import { similarityReference } from '../../src/numeric/similarity-reference.js';
import { columnRanking, resampledColumnTopK } from '../../src/numeric/topk.js';
import { bootstrapIndices, splitHalves } from '../../src/numeric/trust-metrics.js';
import type { ProgressEvent } from '../../src/progress.js';
import { handCase, maxAbsDiff, plantedData, randomMatrix, rowTopK } from '../helpers/data.js';
import { GOLDEN_CASES, goldenOptions, loadGolden } from '../helpers/golden.js';

const MiB = 1024 * 1024;

/** Score tolerance of the fast engine against the float64 TS reference, per function. */
const TOL: Record<SimilarityName, number> = {
  soft_wpmi: 2e-4,
  wpmi: 2e-4,
  rank_reorder: 2e-2,
  cos_similarity: 1e-5,
  cos_similarity_cubed: 1e-5,
};

function opts(fn: SimilarityName) {
  return fn === 'soft_wpmi'
    ? { topK: 30 }
    : fn === 'wpmi'
      ? { topK: 12 }
      : fn === 'rank_reorder'
        ? { topFraction: 0.1 }
        : {};
}

describe('similarity engine against the TypeScript reference', () => {
  // N = 400 images, M = 603 concepts (not a multiple of 4), d = 16, K = 300 neurons; positive features so
  // rank_reorder's mean similarity is positive. A 1 MiB budget forces concept chunks and image blocks.
  const inputs = {
    imageFeatures: randomMatrix(400, 16, 1, (u) => u + 0.2),
    textFeatures: randomMatrix(603, 16, 2, (u) => u + 0.2),
    activations: randomMatrix(400, 300, 3, (u) => Math.max(0, u - 0.2)),
  };
  for (const fn of SIMILARITY_NAMES) {
    for (const budget of [768 * MiB, 1 * MiB]) {
      it(`${fn}, memory budget ${budget / MiB} MiB`, async () => {
        const events: ProgressEvent[] = [];
        const r = await computeSimilarity(
          fn,
          inputs,
          {
            options: opts(fn) as never,
            keepMatrix: true,
            memoryBudget: budget,
          },
          { onProgress: (e) => events.push(e) },
        );
        const ref = similarityReference(fn, inputs, opts(fn) as never);
        if (fn === 'rank_reorder') {
          // P rounds differently in float32 GEMM than in the float64 reference, which can swap two nearly
          // equal similarities in a sort: allow that in a handful of (neuron, concept) entries
          let off = 0;
          for (let i = 0; i < ref.data.length; i++) {
            const rel = Math.abs(ref.data[i] - r.matrix!.data[i]) / Math.abs(ref.data[i]);
            if (rel > 1e-5) off++;
            assert.ok(rel < 0.05, `entry ${i}: ${r.matrix!.data[i]} vs ${ref.data[i]}`);
          }
          assert.ok(off < ref.data.length / 1000, `${off} entries differ by more than 1e-5 relative`);
        } else {
          const diff = maxAbsDiff(r.matrix!.data, ref.data);
          assert.ok(diff <= TOL[fn], `max |engine − reference| = ${diff}`);
        }
        // labels and top-5 equal the reference's wherever the reference's own margin is clear
        const refTop = rowTopK(ref, 5);
        let compared = 0;
        for (let k = 0; k < 300; k++) {
          const margin = refTop.values[k * 5] - refTop.values[k * 5 + 1];
          if (margin > (fn === 'rank_reorder' ? 0.05 : 10 * TOL[fn])) {
            assert.equal(r.labels[k], refTop.indices[k * 5], `neuron ${k}`);
            compared++;
          }
          assert.ok(Math.abs(r.scores[k] - refTop.values[k * 5]) <= TOL[fn]);
          for (let t = 0; t < 5; t++)
            assert.ok(Math.abs(r.topScores[k * 5 + t] - refTop.values[k * 5 + t]) <= TOL[fn]);
        }
        assert.ok(
          compared > (fn === 'rank_reorder' ? 50 : 200),
          `only ${compared} neurons had a clear margin`,
        );
        assert.ok(
          events.length > 0 && events.at(-1)!.done === events.at(-1)!.total,
          'progress reaches its total',
        );
        if (budget === MiB && fn !== 'cos_similarity')
          assert.ok(events.at(-1)!.total > 1, 'the small budget chunks the work');
      });
    }
  }
});

describe('similarity engine: results', () => {
  it('recovers planted concepts with every function', async () => {
    const data = plantedData(240, 30, 24, 12, 7);
    for (const fn of SIMILARITY_NAMES) {
      const o =
        fn === 'soft_wpmi'
          ? { topK: 20 }
          : fn === 'wpmi'
            ? { topK: 10 }
            : fn === 'rank_reorder'
              ? { topFraction: 0.1 }
              : {};
      const r = await computeSimilarity(fn, data, { options: o as never });
      assert.deepEqual(
        Array.from(r.labels),
        Array.from({ length: 12 }, (_, k) => k),
        fn,
      );
    }
  });

  it('returns top concepts best first, top images most activating first, and no matrix unless asked', async () => {
    const r = await computeSimilarity('cos_similarity', handCase(2), { top: 2, topImages: 3 });
    assert.equal(r.matrix, undefined);
    assert.deepEqual(Array.from(r.topConcepts), [0, 1, 1, 0]);
    assert.ok(r.topScores[0] > r.topScores[1]);
    // neuron 0 activations (3, 1, 2) → images 0, 2, 1; neuron 1 (1, 3, 2) → 1, 2, 0
    assert.deepEqual(Array.from(r.topImages), [0, 2, 1, 1, 2, 0]);
    assert.equal(r.nTopImages, 3);
    assert.deepEqual(r.options, {});
  });

  it('flags dead neurons and gives them defined scores instead of NaN', async () => {
    const base = plantedData(120, 10, 8, 4, 3);
    const A = base.activations;
    for (let i = 0; i < A.rows; i++) A.data[i * A.cols + 2] = 0; // neuron 2 never fires
    for (const fn of SIMILARITY_NAMES) {
      const o =
        fn === 'soft_wpmi'
          ? { topK: 20 }
          : fn === 'wpmi'
            ? { topK: 10 }
            : fn === 'rank_reorder'
              ? { topFraction: 0.1 }
              : {};
      const r = await computeSimilarity(fn, base, { options: o as never, keepMatrix: true });
      assert.deepEqual(Array.from(r.dead), [0, 0, 1, 0], fn);
      for (let t = 0; t < 10; t++)
        assert.ok(Number.isFinite(r.matrix!.data[2 * 10 + t]), `${fn}: dead row is finite`);
      assert.ok(Number.isFinite(r.scores[2]));
    }
  });

  it('refuses NaN or ±Infinity in any input, naming the matrix, the first row and column and the count', async () => {
    for (const [key, role] of [
      ['imageFeatures', 'image features'],
      ['textFeatures', 'text features'],
      ['activations', 'activations'],
    ] as const) {
      for (const fn of SIMILARITY_NAMES) {
        const data = handCase(2);
        const m = data[key];
        const bad = { ...m, data: m.data.slice() };
        bad.data[m.cols + 1] = Number.NaN;
        bad.data[0] = 0;
        bad.data[bad.data.length - 1] = Number.NEGATIVE_INFINITY;
        const count = bad.data.length - 1 === m.cols + 1 ? 1 : 2;
        const options = fn === 'rank_reorder' ? { topFraction: 1 } : fn.endsWith('wpmi') ? { topK: 2 } : {};
        await assert.rejects(computeSimilarity(fn, { ...data, [key]: bad }, { options }), (e: unknown) => {
          assert.ok(e instanceof NonFiniteError, `${fn} ${key}`);
          assert.match(
            e.message,
            new RegExp(
              `^${role}: ${count} of ${m.rows}×${m.cols} values are not finite .* the first, (NaN|-Infinity), is at row 1, column 1 `,
            ),
          );
          return true;
        });
      }
    }
  });

  it('validates its own options', async () => {
    const data = handCase();
    await assert.rejects(
      computeSimilarity('cos_similarity', data, { top: 0 }),
      /'top' must be a positive integer but got 0/,
    );
    await assert.rejects(
      computeSimilarity('cos_similarity', data, { memoryBudget: 1000 }),
      /'memoryBudget' must be at least 1 MiB \(1048576 bytes\) but got 1000/,
    );
    await assert.rejects(computeSimilarity('nope' as SimilarityName, data), (e: unknown) => {
      assert.ok(e instanceof ArgumentError);
      assert.match(
        e.message,
        /'similarity' must be 'soft_wpmi', 'wpmi', 'rank_reorder', 'cos_similarity' or 'cos_similarity_cubed' but got 'nope'/,
      );
      return true;
    });
  });

  it('stops at the next block when the signal aborts, with every function', async () => {
    const inputs = {
      imageFeatures: randomMatrix(200, 16, 4, (u) => u + 0.2),
      textFeatures: randomMatrix(401, 16, 5, (u) => u + 0.2),
      activations: randomMatrix(200, 1000, 6, (u) => Math.max(0, u - 0.2)),
    };
    for (const fn of SIMILARITY_NAMES) {
      const ac = new AbortController();
      const events: ProgressEvent[] = [];
      await assert.rejects(
        computeSimilarity(
          fn,
          inputs,
          { options: opts(fn) as never, memoryBudget: MiB },
          {
            signal: ac.signal,
            onProgress: (e) => {
              events.push(e);
              ac.abort(new Error('stop'));
            },
          },
        ),
        /^Error: stop$/,
        fn,
      );
      // aborted after the first block: no later progress, though the 1 MiB budget makes several blocks
      assert.equal(events.length, 1, fn);
      assert.ok(events[0].total > 1, `${fn}: ${events[0].total} blocks`);
    }
    // an aborted signal stops it before any work
    await assert.rejects(
      computeSimilarity('cos_similarity', handCase(), {}, { signal: AbortSignal.abort() }),
      { name: 'AbortError' },
    );
  });
});

describe('similarity engine: golden values from the torch reference', () => {
  for (const name of GOLDEN_CASES) {
    it(name, async () => {
      const c = await loadGolden(name);
      const dead = new Set(c.json.dead_neurons ?? []);
      for (const fn of SIMILARITY_NAMES) {
        const r = await computeSimilarity(
          fn,
          { imageFeatures: c.I, textFeatures: c.T, activations: c.A },
          {
            options: goldenOptions(c, fn) as never,
          },
        );
        const key = fn === 'rank_reorder' ? 'rank_reorder_unscaled' : fn;
        const labels = await c.labels(key);
        const ref = await c.score(key);
        const margins = c.json.label_margin[key];
        for (let k = 0; k < c.A.cols; k++) {
          assert.equal(r.dead[k], dead.has(k) ? 1 : 0);
          if (dead.has(k) || margins[k] === null || (margins[k] as number) <= 1e-4) continue;
          assert.equal(r.labels[k], labels[k], `${name}/${fn} neuron ${k}`);
          if (fn !== 'rank_reorder') {
            const refBest = ref.data[k * c.T.rows + labels[k]];
            assert.ok(
              Math.abs(r.scores[k] - refBest) <= 1e-3,
              `${name}/${fn} neuron ${k}: ${r.scores[k]} vs ${refBest}`,
            );
          }
        }
      }
    });
  }
});

describe('reruns on resamples with SimilarityReuse (the trust figures) equal plain runs', () => {
  const N = 120;
  const I = randomMatrix(N, 16, 21, (u) => u + 0.2);
  const T = randomMatrix(203, 16, 22, (u) => u + 0.2);
  // 400 neurons: a 1 MiB budget splits the concepts into chunks, where Q cannot be copied
  const A = randomMatrix(N, 400, 23, (u) => Math.max(0, u - 0.2));
  const order = columnRanking(A);
  const rand = mulberry32(4);
  const boot = bootstrapIndices(N, rand);
  const perm = randomPermutation(N, rand);
  const half = splitHalves(N, rand).fit;
  // [rows of I, rows of A]: a bootstrap resample, a permutation of the activations only, the fit half
  const runs = [
    ['bootstrap', boot, boot],
    ['permutation', undefined, perm],
    ['half', half, half],
  ] as const;
  for (const fn of SIMILARITY_NAMES)
    for (const budget of [768 * MiB, 1 * MiB])
      it(`${fn}, memory budget ${budget / MiB} MiB`, async () => {
        const o = opts(fn) as Record<string, number>;
        const softmax = fn.endsWith('wpmi') ? await pmiSoftmaxRows(I, T, fn === 'wpmi' ? 2 : 10) : undefined;
        const norms = fn === 'cos_similarity' ? await cosConceptNorms(I, T) : undefined;
        for (const [what, iRows, aRows] of runs) {
          const inputs = {
            imageFeatures: iRows ? gatherRows(I, iRows) : I,
            textFeatures: T,
            activations: gatherRows(A, aRows),
          };
          const topK = what === 'half' && o.topK ? Math.round(o.topK / 2) : o.topK;
          const options = (topK ? { ...o, topK } : o) as never;
          const run = { options, top: 3, keepMatrix: true, memoryBudget: budget, threads: 1 };
          const plain = await computeSimilarity(fn, inputs, run);
          const reuse: SimilarityReuse = {
            softmax,
            softmaxRows: iRows,
            topIndices: topK ? resampledColumnTopK(A, order, aRows, topK) : undefined,
            conceptNorms: iRows ? undefined : norms,
          };
          const fast = await computeSimilarity(fn, inputs, run, {}, reuse);
          assert.deepEqual(fast.labels, plain.labels, what);
          assert.deepEqual(fast.scores, plain.scores, what);
          assert.deepEqual(fast.topConcepts, plain.topConcepts, what);
          assert.deepEqual(fast.matrix, plain.matrix, what);
          if (softmax && budget > MiB)
            assert.equal(fast.timings.onnxruntime, undefined, 'Q is not recomputed');
        }
      });
});
