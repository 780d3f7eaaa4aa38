import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { closestNames, editDistance } from '../../src/numeric/strings.js';

describe('editDistance and closestNames', () => {
  test('Levenshtein distances with adjacent transpositions', () => {
    assert.equal(editDistance('', ''), 0);
    assert.equal(editDistance('abc', ''), 3);
    assert.equal(editDistance('', 'ab'), 2);
    assert.equal(editDistance('kitten', 'sitting'), 3);
    assert.equal(editDistance('layer4', 'layer4'), 0);
    assert.equal(editDistance('relu', 'rleu'), 1);
    assert.equal(editDistance('layer5', 'layer4'), 1);
    assert.equal(editDistance('fc', 'layer4.1.relu'), 13);
  });

  test('closest first; ties go to the longer shared prefix, then to the given order', () => {
    assert.deepEqual(closestNames('layer', ['fc', 'layer4', 'player', 'layer1']), [
      'layer4',
      'layer1',
      'player',
      'fc',
    ]);
  });
});
