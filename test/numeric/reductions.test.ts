import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { argmax, logSumExp, matmulTransB, normalizeRows, softmaxRows } from '../../src/numeric/reductions.js';

describe('reductions', () => {
  it('logSumExp is stable for large and small values', () => {
    assert.ok(Math.abs(logSumExp([1000, 1000]) - (1000 + Math.LN2)) < 1e-9);
    assert.ok(Math.abs(logSumExp([-1000, -1000, -1000]) - (-1000 + Math.log(3))) < 1e-9);
    assert.equal(logSumExp([]), Number.NEGATIVE_INFINITY);
    assert.ok(Number.isNaN(logSumExp([1, Number.NaN])));
  });
  it('logSumExp over a strided column', () => {
    // column 1 of a 3×2 matrix: values 0, ln 2, ln 3 → log(1 + 2 + 3)
    const v = [9, 0, 9, Math.log(2), 9, Math.log(3)];
    assert.ok(Math.abs(logSumExp(v, 3, 1, 2) - Math.log(6)) < 1e-12);
  });
  it('softmaxRows matches exp/sum with a temperature', () => {
    const s = softmaxRows({ rows: 1, cols: 3, data: Float32Array.of(0, 1, 2) }, 2);
    const e = [1, Math.exp(2), Math.exp(4)];
    const z = e[0] + e[1] + e[2];
    for (const [i, x] of e.entries()) assert.ok(Math.abs(s.data[i] - x / z) < 1e-7);
  });
  it('normalizeRows gives unit rows and keeps zero rows zero', () => {
    const n = normalizeRows({ rows: 2, cols: 2, data: Float32Array.of(3, 4, 0, 0) });
    assert.deepEqual(Array.from(n.data), [0.6000000238418579, 0.800000011920929, 0, 0]);
  });
  it('matmulTransB', () => {
    const p = matmulTransB(
      { rows: 2, cols: 2, data: Float32Array.of(1, 2, 3, 4) },
      { rows: 1, cols: 2, data: Float32Array.of(5, 6) },
    );
    assert.deepEqual(Array.from(p.data), [17, 39]);
  });
  it('argmax skips NaN and prefers the lower index on ties', () => {
    assert.equal(argmax([Number.NaN, 2, 5, 5]), 2);
    assert.equal(argmax([Number.NaN, Number.NaN]), 0);
  });
});
