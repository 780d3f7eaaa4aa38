import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { formatBytes, ProgressRenderer } from '../../src/cli/progress-renderer.js';

function sink(isTTY: boolean, columns?: number) {
  const s = {
    text: '',
    isTTY,
    columns,
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
  it('shows downloads in kB / MB / GB with rate and ETA, cut to the terminal width', () => {
    assert.deepEqual([0, 999, 1000, 110162, 999949, 999950, 345_600_000, 1.5e9].map(formatBytes), [
      '0 B',
      '999 B',
      '1.0 kB',
      '110.2 kB',
      '999.9 kB',
      '1.0 MB',
      '345.6 MB',
      '1.5 GB',
    ]);
    const stage = 'download Xenova/vit-base-patch16-224/onnx/model.onnx';
    const wide = sink(true, 200);
    let now = 0;
    const r = new ProgressRenderer(wide, () => now);
    r.onProgress({ stage, done: 0, total: 346_000_000, unit: 'bytes' });
    now = 4000;
    r.onProgress({ stage, done: 100_000_000, total: 346_000_000, unit: 'bytes' });
    assert.ok(
      wide.text.endsWith(`\r\x1b[K${stage}:  28% 100.0 MB of 346.0 MB, 25.0 MB/s, ETA 9.8s`),
      JSON.stringify(wide.text),
    );
    now = 14000;
    r.onProgress({ stage, done: 346_000_000, total: 346_000_000, unit: 'bytes' });
    assert.ok(wide.text.endsWith(`${stage}: 346.0 MB in 14s\n`), JSON.stringify(wide.text));

    // 80 columns: every drawn line fits in 79, the figures kept and the stage shortened in the middle
    const narrow = sink(true, 80);
    now = 0;
    const n = new ProgressRenderer(narrow, () => now);
    n.onProgress({ stage, done: 0, total: 346_000_000, unit: 'bytes' });
    now = 4000;
    n.onProgress({ stage, done: 100_000_000, total: 346_000_000, unit: 'bytes' });
    const lines = narrow.text.split('\r\x1b[K').filter(Boolean);
    for (const l of lines) assert.ok(l.length <= 79, `${l.length}: ${l}`);
    assert.match(
      lines[lines.length - 1],
      /^download Xenov.*….*model\.onnx: {2}28% 100\.0 MB of 346\.0 MB, 25\.0 MB\/s, ETA 9\.8s$/,
    );
    // a log (not a terminal): one line at the end, never cut
    const log = sink(false, 20);
    const l = new ProgressRenderer(log, () => 0);
    l.onProgress({ stage, done: 346_000_000, total: 346_000_000, unit: 'bytes' });
    assert.equal(log.text, `${stage}: 346.0 MB in 0.0s\n`);
  });
  it('a download of unknown size shows bytes and rate until its last event', () => {
    const out = sink(true, 200);
    let now = 0;
    const r = new ProgressRenderer(out, () => now);
    r.onProgress({ stage: 'download a/b/x.onnx', done: 0, total: 0, unit: 'bytes' });
    now = 2000;
    r.onProgress({ stage: 'download a/b/x.onnx', done: 3_000_000, total: 0, unit: 'bytes' });
    assert.ok(out.text.endsWith('download a/b/x.onnx: 3.0 MB, 1.5 MB/s'), JSON.stringify(out.text));
    now = 3000;
    r.onProgress({ stage: 'download a/b/x.onnx', done: 5_000_000, total: 0, unit: 'bytes' });
    r.onProgress({ stage: 'download a/b/x.onnx', done: 5_000_000, total: 5_000_000, unit: 'bytes' });
    assert.equal(out.text.split('\n').length, 2, JSON.stringify(out.text)); // one line, ended once
    assert.ok(out.text.endsWith('download a/b/x.onnx: 5.0 MB in 3.0s\n'), JSON.stringify(out.text));
  });
});

describe('ProgressRenderer.stop (Ctrl-C)', () => {
  it('erases a half-drawn line and draws nothing more; warnings still print', () => {
    const out = sink(true);
    let now = 0;
    const r = new ProgressRenderer(out, () => now);
    r.onProgress({ stage: 'image features', done: 0, total: 10, unit: 'images' });
    now = 1000;
    r.onProgress({ stage: 'image features', done: 3, total: 10, unit: 'images' });
    assert.match(out.text, /image features: {2}30%/);
    r.stop();
    assert.ok(out.text.endsWith('\r\x1b[K'), JSON.stringify(out.text));
    const before = out.text;
    now = 2000;
    r.onProgress({ stage: 'image features', done: 10, total: 10, unit: 'images' });
    r.finishLine();
    assert.equal(out.text, before);
    r.warning('stopping');
    assert.equal(out.text, `${before}warning: stopping\n`);
  });
});
