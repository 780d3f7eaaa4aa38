import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { gatherRows } from '../../src/numeric/matrix.js';
import { mulberry32, randomPermutation } from '../../src/numeric/random.js';
import { columnRanking, columnTopK, resampledColumnTopK, topK } from '../../src/numeric/topk.js';
import { bootstrapIndices, splitHalves } from '../../src/numeric/trust-metrics.js';

describe('topK', () => {
  it('returns indices of the largest values in descending order', () => {
    assert.deepEqual(Array.from(topK(Float32Array.of(0.1, 5, -2, 3, 4), 3)), [1, 4, 3]);
  });
  it('breaks ties by the lower index', () => {
    assert.deepEqual(Array.from(topK(Float32Array.of(1, 2, 2, 1, 2), 4)), [1, 2, 4, 0]);
  });
  it('ranks NaN below every number', () => {
    assert.deepEqual(Array.from(topK(Float32Array.of(Number.NaN, -1e30, Number.NaN, 0), 3)), [3, 1, 0]);
  });
  it('handles k = n and k = 0', () => {
    assert.deepEqual(Array.from(topK(Float32Array.of(2, 3, 1), 3)), [1, 0, 2]);
    assert.equal(topK(Float32Array.of(2, 3, 1), 0).length, 0);
  });
  it('rejects k > n with the limit and the value in the message', () => {
    assert.throws(() => topK(Float32Array.of(1, 2), 3), /'k' must be <= n \(2\) but got 3/);
  });
  it('agrees with a full sort on random data', () => {
    const v = Float32Array.from(
      { length: 1000 },
      (_, i) => Math.sin(i * 12.9898) * 43758.5453 - Math.floor(Math.sin(i * 12.9898) * 43758.5453),
    );
    const expected = Array.from(v.keys())
      .sort((a, b) => v[b] - v[a] || a - b)
      .slice(0, 37);
    assert.deepEqual(Array.from(topK(v, 37)), expected);
  });
});

describe('columnTopK', () => {
  it('selects per column of an N×K matrix (the top images of each neuron)', () => {
    // 4 images × 2 neurons
    const m = { rows: 4, cols: 2, data: Float32Array.of(1, 9, 4, 8, 3, 8, 2, 7) };
    assert.deepEqual(Array.from(columnTopK(m, 2)), [1, 2, 0, 1]);
  });
});

describe('columnRanking / resampledColumnTopK', () => {
  // many ties (values on a grid of 5, a constant column, ±0, ±Infinity)
  const N = 60;
  const K = 9;
  const rand = mulberry32(11);
  const m = {
    rows: N,
    cols: K,
    data: Float32Array.from({ length: N * K }, () => Math.floor(rand() * 5) - 2),
  };
  for (let i = 0; i < N; i++) {
    m.data[i * K + 3] = 0.25;
    m.data[i * K + 4] = i % 3 === 0 ? -0 : i % 3 === 1 ? 0 : -1e-30;
  }
  m.data[7 * K + 5] = Number.POSITIVE_INFINITY;
  m.data[8 * K + 5] = Number.NEGATIVE_INFINITY;
  m.data[9 * K + 6] = 3.5e38;
  it('columnRanking equals columnTopK over every row', () => {
    assert.deepEqual(Array.from(columnRanking(m)), Array.from(columnTopK(m, N)));
  });
  it('resampledColumnTopK equals columnTopK of the resampled rows (bootstrap, permutation, half)', () => {
    const order = columnRanking(m);
    const r = mulberry32(5);
    const boot = bootstrapIndices(N, r);
    const resamples = [boot, randomPermutation(N, r), splitHalves(N, r).fit];
    for (const rows of resamples)
      for (const k of [1, 7, rows.length]) {
        const got = resampledColumnTopK(m, order, rows, k);
        assert.deepEqual(Array.from(got), Array.from(columnTopK(gatherRows(m, rows), k)), `k ${k}`);
      }
    assert.throws(
      () => resampledColumnTopK(m, order, boot.subarray(0, 4), 5),
      /'k' must be <= the number of rows \(4\)/,
    );
  });
});
