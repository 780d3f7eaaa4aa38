import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { similarityColumns } from '../../src/compute/similarity-columns.js';
import { ShapeError } from '../../src/numeric/errors.js';
import { normalizeRows } from '../../src/numeric/reductions.js';
import { similarityColumn } from '../../src/numeric/trust-metrics.js';
import { randomMatrix } from '../helpers/data.js';

describe('similarityColumns', () => {
  for (const d of [16, 13])
    it(`equals similarityColumn bit for bit (d ${d}, 300 concepts in two batches, repeats)`, () => {
      const In = normalizeRows(randomMatrix(57, d, 1));
      const Tn = normalizeRows(randomMatrix(310, d, 2));
      const concepts = Int32Array.from({ length: 400 }, (_, i) => (i * 7) % 300);
      const got = similarityColumns(In, Tn, concepts);
      assert.equal(got.size, 300);
      for (const c of concepts) assert.deepEqual(got.get(c), similarityColumn(In, Tn, c), `concept ${c}`);
    });
  it('rejects mismatched widths', () => {
    assert.throws(
      () => similarityColumns(randomMatrix(4, 8, 1), randomMatrix(3, 7, 2), [0]),
      (e) => e instanceof ShapeError && /8 columns but text features 7/.test(e.message),
    );
  });
});
