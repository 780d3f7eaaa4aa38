import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { NonFiniteError } from '../../src/numeric/errors.js';
import { checkFinite, findNonFinite } from '../../src/numeric/matrix.js';

describe('findNonFinite / checkFinite', () => {
  it('finds nothing in a finite matrix (large and denormal values included)', () => {
    const m = { rows: 2, cols: 3, data: Float32Array.of(0, -0, 3.4e38, -3.4e38, 1e-45, 1) };
    assert.equal(findNonFinite(m), null);
    assert.doesNotThrow(() => checkFinite(m, 'x'));
  });
  it('counts NaN, Infinity and -Infinity and locates the first in row-major order', () => {
    const m = {
      rows: 3,
      cols: 4,
      data: Float32Array.of(
        1,
        2,
        3,
        4,
        5,
        6,
        Number.POSITIVE_INFINITY,
        8,
        Number.NaN,
        0,
        Number.NEGATIVE_INFINITY,
        1,
      ),
    };
    assert.deepEqual(findNonFinite(m), {
      count: 3,
      firstRow: 1,
      firstCol: 2,
      first: Number.POSITIVE_INFINITY,
    });
  });
  it('names the matrix, the first bad row and column, the value and the count', () => {
    const m = { rows: 2, cols: 2, data: Float32Array.of(1, 2, 3, Number.NaN) };
    assert.throws(
      () => checkFinite(m, 'image features /tmp/I.npy'),
      (e: unknown) => {
        assert.ok(e instanceof NonFiniteError);
        assert.equal(e.code, 'ERR_NON_FINITE');
        assert.deepEqual([e.count, e.firstRow, e.firstCol], [1, 1, 1]);
        assert.match(
          e.message,
          /^image features \/tmp\/I\.npy: 1 of 2×2 values are not finite \(NaN or ±Infinity\); the first, NaN, is at row 1, column 1 \(0-based\)/,
        );
        return true;
      },
    );
    assert.throws(
      () => checkFinite(m, 'activations', (r) => `image b.jpg, row ${r}`),
      /the first, NaN, is at row 1 \(image b\.jpg, row 1\), column 1/,
    );
  });
});
