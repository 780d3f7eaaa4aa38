import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { columnTopK, topK } from '../../src/numeric/topk.js';

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
