import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { csvField, formatFloat32 } from '../../src/results/descriptions.js';

describe('formatting', () => {
  it('prints float32 values the way numpy does (shortest round-trip)', () => {
    assert.equal(formatFloat32(Math.fround(0.1)), '0.1');
    assert.equal(formatFloat32(Math.fround(2.0794373)), '2.0794373');
    assert.equal(formatFloat32(Math.fround(-5.501009)), '-5.501009');
    assert.equal(formatFloat32(3), '3');
    assert.equal(formatFloat32(Number.NaN), '');
  });
  it('quotes CSV fields only when needed', () => {
    assert.equal(csvField('dog'), 'dog');
    assert.equal(csvField('tench, Tinca tinca'), '"tench, Tinca tinca"');
    assert.equal(csvField('say "hi"'), '"say ""hi"""');
  });
});
