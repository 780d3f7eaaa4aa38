import assert from 'node:assert/strict';
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, it } from 'node:test';
import { parseConceptLabelsCsv, readConceptLabels } from '../../src/data/concept-labels.js';
import { encodeNpy } from '../../src/io/npy.js';
import { tempDir } from '../helpers/cli.js';

describe('concept labels (ground-truth presence)', () => {
  it('reads a CSV with a header of concept names, one 0/1 row per image', () => {
    const m = parseConceptLabelsCsv('dog,cat\n1,0\n0,0\n1,1\n', 'x.csv', 3);
    assert.deepEqual([...m.keys()], ['dog', 'cat']);
    assert.deepEqual(Array.from(m.get('dog') as Uint8Array), [1, 0, 1]);
    assert.deepEqual(Array.from(m.get('cat') as Uint8Array), [0, 0, 1]);
  });
  it('names the file, the place and the value of a bad CSV', () => {
    assert.throws(
      () => parseConceptLabelsCsv('1,0\n0,1\n', 'x.csv', 1),
      /x\.csv: the first row must name the concepts/,
    );
    assert.throws(
      () => parseConceptLabelsCsv('dog\n1\n', 'x.csv', 2),
      /x\.csv: 1 rows of labels but the probe set has 2 images/,
    );
    assert.throws(
      () => parseConceptLabelsCsv('dog,cat\n1,2\n', 'x.csv', 1),
      /x\.csv: row 2, column 'cat' is 2 but concept labels must be 0 or 1/,
    );
  });
  it('reads an .npy whose columns are the concept set, and refuses another shape', async () => {
    const dir = tempDir();
    const f = join(dir, 'gt.npy');
    writeFileSync(f, encodeNpy({ dtype: 'float32', shape: [2, 3], data: Float32Array.of(1, 0, 0, 0, 1, 1) }));
    const m = await readConceptLabels(f, 2, ['a', 'b', 'c']);
    assert.deepEqual(Array.from(m.get('c') as Uint8Array), [0, 1]);
    await assert.rejects(
      readConceptLabels(f, 3, ['a', 'b', 'c']),
      /concept labels of shape \(2, 3\) but expected \(3, 3\)/,
    );
    await assert.rejects(
      readConceptLabels(join(dir, 'none.npy'), 2, ['a']),
      /none\.npy: cannot read \.npy file: no such file/,
    );
  });
});
