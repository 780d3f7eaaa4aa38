import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import {
  mean,
  rankOf,
  rocAuc,
  rowCosines,
  targetRanks,
  topKAccuracy,
  upperMedian,
} from '../../src/numeric/eval-metrics.js';
import { createMatrix } from '../../src/numeric/matrix.js';

describe('rankOf / targetRanks', () => {
  it('ranks descending, ties by the lower index, NaN last', () => {
    const row = Float32Array.of(0.1, 0.4, 0.4, 0.2);
    assert.equal(rankOf(row, 1), 1);
    assert.equal(rankOf(row, 2), 2); // tied with concept 1, which comes first
    assert.equal(rankOf(row, 3), 3);
    assert.equal(rankOf(row, 0), 4);
    const nan = Float32Array.of(Number.NaN, 0.3, 0.5, 0.3);
    assert.equal(rankOf(nan, 3), 3);
    assert.equal(rankOf(nan, 0), 4);
    assert.throws(() => rankOf(row, 4), /'target' must be an integer in \[0, 4\) but got 4/);
  });

  it('one rank per row; a negative target gives 0', () => {
    const s = createMatrix(3, 4, Float32Array.of(0.1, 0.4, 0.4, 0.2, Number.NaN, 0.3, 0.5, 0.3, 9, 8, 7, 6));
    assert.deepEqual(Array.from(targetRanks(s, [2, 3, -1])), [2, 3, 0]);
    assert.throws(() => targetRanks(s, [0, 1]), /targets has 2 entries but the score matrix has 3 rows/);
    assert.throws(() => targetRanks(s, [0, 1, 4]), /targets\[2\] must be an integer in \[0, 4\) but got 4/);
  });
});

describe('accuracy, mean and the reference median', () => {
  it('top-k counts ranks in 1..k; rank 0 is wrong', () => {
    const ranks = [1, 2, 6, 1, 0];
    assert.equal(topKAccuracy(ranks, 1), 2 / 5);
    assert.equal(topKAccuracy(ranks, 5), 3 / 5);
    assert.equal(topKAccuracy(ranks, 6), 4 / 5);
    assert.throws(() => topKAccuracy(ranks, 0), /'k' must be a positive integer but got 0/);
  });
  it('median is sorted(values)[n // 2] as in the notebook', () => {
    assert.equal(upperMedian([3, 1, 2, 4]), 3);
    assert.equal(upperMedian([5, 1, 3]), 3);
    assert.equal(upperMedian([10, 1]), 10);
    assert.ok(Number.isNaN(upperMedian([])));
    assert.equal(mean([1, 2, 6]), 3);
  });
});

describe('rocAuc', () => {
  it('equals the pairwise count on a hand-computed case', () => {
    // positives 0.9, 0.8, 0.6; negatives 0.7, 0.5: 5 of 6 pairs ordered
    assert.equal(rocAuc([0.9, 0.8, 0.7, 0.6, 0.5], [1, 1, 0, 1, 0]), 5 / 6);
  });
  it('counts a tie between a positive and a negative as 1/2', () => {
    // positives 0.5, 0.9; negatives 0.5, 0.2: 0.5 + 1 + 1 + 1 of 4
    assert.equal(rocAuc([0.5, 0.5, 0.2, 0.9], [true, false, false, true]), 3.5 / 4);
    assert.equal(rocAuc([1, 1, 1, 1], [1, 0, 1, 0]), 0.5);
  });
  it('is 1 for a perfect, 0 for a reversed predictor; NaN scores are lowest', () => {
    assert.equal(rocAuc([3, 2, 1], [1, 1, 0]), 1);
    assert.equal(rocAuc([1, 2, 3], [1, 1, 0]), 0);
    assert.equal(rocAuc([Number.NaN, 2, 3], [0, 1, 1]), 1);
  });
  it('is NaN when one class is empty', () => {
    assert.ok(Number.isNaN(rocAuc([1, 2], [1, 1])));
    assert.ok(Number.isNaN(rocAuc([1, 2], [0, 0])));
    assert.throws(() => rocAuc([1, 2], [1]), /2 scores but 1 labels/);
  });
});

describe('rowCosines', () => {
  it('normalises each row first', () => {
    const a = createMatrix(2, 2, Float32Array.of(3, 4, 1, 0));
    const b = createMatrix(2, 2, Float32Array.of(4, 3, 0, 2));
    const c = rowCosines(a, b);
    assert.ok(Math.abs(c[0] - 24 / 25) < 1e-12);
    assert.equal(c[1], 0);
    assert.throws(() => rowCosines(a, createMatrix(1, 2)), /one shape but are 2×2 and 1×2/);
  });
});
