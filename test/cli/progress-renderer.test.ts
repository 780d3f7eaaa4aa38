import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { ProgressRenderer } from '../../src/cli/progress-renderer.js';

function sink(isTTY: boolean) {
  const s = {
    text: '',
    isTTY,
    write(x: string) {
      s.text += x;
    },
  };
  return s;
}

describe('ProgressRenderer', () => {
  it('redraws one line per stage on a terminal, with rate and ETA', () => {
    const out = sink(true);
    let now = 0;
    const r = new ProgressRenderer(out, () => now);
    r.onProgress({ stage: 'text features', done: 0, total: 100, unit: 'concepts' });
    now = 2000;
    r.onProgress({ stage: 'text features', done: 50, total: 100, unit: 'concepts' });
    assert.match(out.text, /text features: {2}50% 50\/100 concepts, 25 concepts\/s, ETA 2.0s$/);
    now = 4000;
    r.onProgress({ stage: 'text features', done: 100, total: 100, unit: 'concepts' });
    assert.ok(out.text.startsWith('\r\x1b[K'));
    assert.match(out.text, /text features: 100\/100 concepts done in 4.0s\n$/);
  });
  it('prints only finished stages when stderr is not a terminal', () => {
    const out = sink(false);
    let now = 0;
    const r = new ProgressRenderer(out, () => now);
    r.onProgress({ stage: 'similarity', done: 1, total: 4 });
    now = 61000;
    r.onProgress({ stage: 'similarity', done: 4, total: 4 });
    assert.equal(out.text, 'similarity: 4/4 steps done in 1m01s\n');
  });
});
