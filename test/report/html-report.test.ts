import assert from 'node:assert/strict';
import { existsSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, it } from 'node:test';
import sharp from 'sharp';
import { ClipDissectError } from '../../src/numeric/errors.js';
import { buildReport, REPORT_BANDS } from '../../src/report/html-report.js';
import { cli, tempDir } from '../helpers/cli.js';
import { syntheticJpeg, writeSyntheticResults } from '../helpers/report-fixture.js';

interface ReportLayer {
  name: string;
  n: number;
  label: number[];
  dead: number[];
  nImg: number;
  img: number[];
  act: number[];
  strip: number[];
  cut: number[];
}
interface ReportData {
  concepts: string[];
  images: Record<string, string>;
  meta: { stripSize: number; seed: number; topImages: number };
  layers: ReportLayer[];
}

const readData = (dir: string): ReportData =>
  JSON.parse(readFileSync(join(dir, 'report', 'data.json'), 'utf8')) as ReportData;

/** Rows of column j sorted by activation, descending (ties by row). */
function columnOrder(a: Float32Array, rows: number, cols: number, j: number): number[] {
  return Array.from({ length: rows }, (_, i) => i).sort((x, y) => a[y * cols + j] - a[x * cols + j] || x - y);
}

describe('buildReport', () => {
  const N = 300;
  const LAYERS = [
    { name: 'layer3', neurons: 12 },
    { name: 'layer4', neurons: 40 },
  ];

  it('per neuron: the top images in activation order with their values, random strips inside the top 0.1/1/5% bands', async () => {
    const dir = tempDir('clip-dissect-report-');
    const syn = await writeSyntheticResults(dir, LAYERS, N, { deadEvery: 9 });
    const r = await buildReport({ dir, topImages: 6, stripSize: 4 });
    assert.equal(r.layers, 2);
    assert.equal(r.neurons, 52);
    assert.deepEqual(r.warnings, []);
    assert.ok(existsSync(join(dir, 'report', 'index.html')));
    const js = readFileSync(join(dir, 'report', 'data.js'), 'utf8');
    assert.match(js, /^window\.CLIP_DISSECT_REPORT = \{/);
    const data = readData(dir);
    const bandSizes = REPORT_BANDS.map((q) => Math.max(1, Math.ceil(q * N)));
    assert.deepEqual(bandSizes, [1, 3, 15]);
    for (const L of data.layers) {
      const A = syn.activations.get(L.name)!;
      const K = A.cols;
      assert.equal(L.n, K);
      assert.equal(L.nImg, 6);
      assert.deepEqual(
        L.label.map((c) => data.concepts[c]),
        syn.labels.get(L.name),
      );
      assert.deepEqual(
        L.dead,
        Array.from({ length: K }, (_, j) => j).filter((j) => j % 9 === 8),
      );
      for (let j = 0; j < K; j++) {
        if (L.dead.includes(j)) continue;
        const order = columnOrder(A.data, N, K, j);
        assert.deepEqual(L.img.slice(j * 6, j * 6 + 6), order.slice(0, 6), `${L.name}/${j} top images`);
        const values = L.act.slice(j * 6, j * 6 + 6);
        values.forEach((v, t) => {
          assert.equal(v, Number(A.data[order[t] * K + j].toPrecision(4)));
        });
        for (let b = 0; b < 3; b++) {
          const strip = L.strip.slice((j * 3 + b) * 4, (j * 3 + b) * 4 + 4);
          const band = order.slice(0, bandSizes[b]);
          const shown = strip.filter((x) => x >= 0);
          assert.equal(shown.length, Math.min(4, bandSizes[b]));
          assert.equal(new Set(shown).size, shown.length, 'distinct');
          for (const x of shown)
            assert.ok(band.includes(x), `${L.name}/${j} band ${b}: row ${x} is in the band`);
          assert.equal(L.cut[j * 3 + b], Number(A.data[order[bandSizes[b] - 1] * K + j].toPrecision(4)));
        }
      }
    }
    // the strips are seeded: the same seed gives the same strips, another seed others
    const again = await buildReport({ dir, topImages: 6, stripSize: 4 });
    assert.equal(again.thumbnails.written, 0);
    assert.deepEqual(readData(dir).layers[1].strip, data.layers[1].strip);
    await buildReport({ dir, topImages: 6, stripSize: 4, seed: 7 });
    assert.notDeepEqual(readData(dir).layers[1].strip, data.layers[1].strip);
  });

  it("index.html inlines the page's stylesheet and script (src/report/page) whole and loads nothing but data.js", async () => {
    const dir = tempDir('clip-dissect-report-');
    await writeSyntheticResults(dir, [{ name: 'layer1', neurons: 3 }], 20);
    await buildReport({ dir });
    const html = readFileSync(join(dir, 'report', 'index.html'), 'utf8');
    const page = (name: string) =>
      readFileSync(new URL(`../../../src/report/page/${name}`, import.meta.url), 'utf8');
    assert.ok(html.includes(`<style>\n${page('report.css')}</style>`));
    assert.ok(html.includes(`<script>\n${page('report.js')}</script>`));
    const shell = html.replace(page('report.js'), '').replace(page('report.css'), '');
    assert.deepEqual(
      [...shell.matchAll(/<(script|link|img|iframe)\b[^>]*>/g)].map((m) => m[0]),
      ['<script src="data.js">', '<script>'],
    );
  });

  it('activations handed in memory (as dissect does) give the report the .npy files give; bad shapes are refused', async () => {
    const dir = tempDir('clip-dissect-report-');
    const syn = await writeSyntheticResults(dir, LAYERS, N, { deadEvery: 9 });
    await buildReport({ dir, topImages: 6, stripSize: 4 });
    // everything but the build time
    const content = () => ({
      ...(readData(dir) as unknown as Record<string, unknown>),
      generated: undefined,
    });
    const fromFiles = content();
    // the files are gone: only the map can give the values
    for (const l of LAYERS) rmSync(join(dir, `${l.name}.npy`));
    const r = await buildReport({ dir, topImages: 6, stripSize: 4, activations: syn.activations });
    assert.deepEqual(r.warnings, []);
    assert.deepEqual(content(), fromFiles);
    const wrong = new Map([['layer3', { rows: N, cols: 11, data: new Float32Array(N * 11) }]]);
    await assert.rejects(
      buildReport({ dir, activations: wrong }),
      /the activations of layer3: shape \[300, 11\]/,
    );
  });

  it('writes one WebP thumbnail per probe image shown anywhere, reuses them on a rebuild and drops unused ones', async () => {
    const dir = tempDir('clip-dissect-report-');
    await writeSyntheticResults(dir, LAYERS, N);
    const r = await buildReport({ dir, thumbSize: 96 });
    const data = readData(dir);
    const shown = new Set<number>();
    for (const L of data.layers) for (const x of [...L.img, ...L.strip]) if (x >= 0) shown.add(x);
    const thumbs = readdirSync(join(dir, 'report', 'thumbs')).filter((f) => f.endsWith('.webp'));
    assert.equal(thumbs.length, shown.size);
    assert.deepEqual(new Set(thumbs.map((f) => Number(f.slice(0, -5)))), shown);
    assert.deepEqual(r.thumbnails, { total: shown.size, written: shown.size, reused: 0, failed: 0 });
    assert.deepEqual(
      Object.keys(data.images)
        .map(Number)
        .sort((a, b) => a - b),
      [...shown].sort((a, b) => a - b),
    );
    assert.equal(data.images[thumbs[0].slice(0, -5)].startsWith('class_a/img_'), true);
    const meta = await sharp(join(dir, 'report', 'thumbs', thumbs[0])).metadata();
    assert.equal(meta.format, 'webp');
    assert.equal(meta.width, 96);
    assert.equal(meta.height, 96);

    const same = await buildReport({ dir, thumbSize: 96 });
    assert.deepEqual(same.thumbnails, { total: shown.size, written: 0, reused: shown.size, failed: 0 });
    const other = await buildReport({ dir, thumbSize: 64 });
    assert.equal(other.thumbnails.written, shown.size, 'another size: all rewritten');
    // fewer images per neuron and no strips wanted: thumbnails no longer shown are removed
    const fewer = await buildReport({ dir, thumbSize: 64, topImages: 1, stripSize: 1 });
    const left = readdirSync(join(dir, 'report', 'thumbs')).filter((f) => f.endsWith('.webp'));
    assert.equal(left.length, fewer.thumbnails.total);
    assert.ok(fewer.thumbnails.total < shown.size);
  });

  it('a probe image replaced at the same path gets a new thumbnail; the others are reused', async () => {
    const dir = tempDir('clip-dissect-report-');
    const syn = await writeSyntheticResults(dir, LAYERS, N);
    const first = await buildReport({ dir, thumbSize: 64 });
    const data = readData(dir);
    const row = Number(Object.keys(data.images)[0]);
    const thumbPath = join(dir, 'report', 'thumbs', `${row}.webp`);
    const before = readFileSync(thumbPath);
    // another picture under the same name (as a fresh export of the probe set might write)
    writeFileSync(syn.images[row], await syntheticJpeg(row + 1000));
    const r = await buildReport({ dir, thumbSize: 64 });
    assert.deepEqual(r.thumbnails, {
      total: first.thumbnails.total,
      written: 1,
      reused: first.thumbnails.total - 1,
      failed: 0,
    });
    assert.notDeepEqual(readFileSync(thumbPath), before, 'the thumbnail shows the new picture');
    const want = await sharp(syn.images[row])
      .resize(64, 64, { fit: 'cover' })
      .webp({ quality: 80 })
      .toBuffer();
    assert.deepEqual(readFileSync(thumbPath), want);
    // the same content again: all reused
    const again = await buildReport({ dir, thumbSize: 64 });
    assert.deepEqual(again.thumbnails.reused, first.thumbnails.total);
  });

  it('CIFAR records: thumbnails reused while the record is unchanged, redone when its pixels change', async () => {
    const dir = tempDir('clip-dissect-report-');
    const n = 20;
    await writeSyntheticResults(dir, [{ name: 'fc', neurons: 3 }], n);
    // the same results over the records of a CIFAR-10 file (1 label byte + 3072 pixel bytes each)
    const cifar = join(tempDir(), 'data_batch_1.bin');
    const records = Buffer.alloc(n * 3073);
    for (let r = 0; r < n; r++) records.fill((r * 37) & 255, r * 3073 + 1, (r + 1) * 3073);
    writeFileSync(cifar, records);
    writeFileSync(
      join(dir, 'images.txt'),
      Array.from({ length: n }, (_, r) => `cifar:${cifar}#${r}\n`).join(''),
    );
    const first = await buildReport({ dir, thumbSize: 32 });
    assert.equal(first.thumbnails.written, first.thumbnails.total);
    assert.equal((await buildReport({ dir, thumbSize: 32 })).thumbnails.reused, first.thumbnails.total);
    const row = Number(Object.keys(readData(dir).images)[0]);
    records.fill(255 - ((row * 37) & 255), row * 3073 + 1, (row + 1) * 3073);
    writeFileSync(cifar, records);
    const r = await buildReport({ dir, thumbSize: 32 });
    assert.deepEqual([r.thumbnails.written, r.thumbnails.reused], [1, first.thumbnails.total - 1]);
  });

  it('an unreadable probe image gets a placeholder and a warning, not a failure', async () => {
    const dir = tempDir('clip-dissect-report-');
    const syn = await writeSyntheticResults(dir, [{ name: 'fc', neurons: 3 }], 20);
    for (const p of syn.images) writeFileSync(p, 'not an image');
    const warnings: string[] = [];
    const r = await buildReport({ dir }, { onWarning: (w) => warnings.push(w) });
    assert.equal(r.thumbnails.failed, r.thumbnails.total);
    assert.ok(r.thumbnails.total > 0);
    assert.match(warnings[0], /thumbnail of image \d+ \(.*img_\d+\.jpg\)/);
    const data = JSON.parse(readFileSync(join(dir, 'report', 'data.json'), 'utf8'));
    assert.equal(data.missing.length, r.thumbnails.total);
  });

  it('errors name the missing folder, neurons.json, or the activations file that does not fit', async () => {
    const missing = join(tempDir(), 'nope');
    await assert.rejects(buildReport({ dir: missing }), (e: unknown) => {
      assert.ok(e instanceof ClipDissectError);
      assert.equal(e.code, 'ERR_REPORT_INPUT');
      assert.ok(e.message.includes(missing));
      return true;
    });
    const empty = tempDir();
    await assert.rejects(buildReport({ dir: empty }), /neurons\.json: not found/);
    const dir = tempDir('clip-dissect-report-');
    await writeSyntheticResults(dir, [{ name: 'fc', neurons: 3 }], 10);
    writeFileSync(
      join(dir, 'images.txt'),
      readFileSync(join(dir, 'images.txt'), 'utf8').split('\n').slice(2).join('\n'),
    );
    await assert.rejects(buildReport({ dir }), /fc\.npy: shape \[10, 3\] does not fit 8 images/);
    await assert.rejects(
      buildReport({ dir, thumbSize: 0 }),
      /'thumbSize' must be an integer from 1 to 2048 but got 0/,
    );
  });

  it('without activation files it falls back to the top images of neurons.json, without values', async () => {
    const dir = tempDir('clip-dissect-report-');
    await writeSyntheticResults(dir, [{ name: 'fc', neurons: 3 }], 10);
    rmSync(join(dir, 'fc.npy'));
    const warnings: string[] = [];
    await buildReport({ dir }, { onWarning: (w) => warnings.push(w) });
    assert.match(warnings.join('\n'), /fc\.npy: not found/);
    const L = readData(dir).layers[0];
    assert.equal(L.nImg, 3);
    assert.deepEqual(L.img.slice(0, 3), [0, 1, 2]);
    assert.deepEqual(L.act.slice(0, 3), [null, null, null]);
    assert.deepEqual(L.strip, []);
  });

  it('stops at the next thumbnail when the signal aborts, before writing the page', async () => {
    const dir = tempDir('clip-dissect-report-');
    await writeSyntheticResults(dir, [{ name: 'fc', neurons: 3 }], 20);
    const ac = new AbortController();
    let after = 0;
    await assert.rejects(
      buildReport(
        { dir, concurrency: 1 },
        {
          signal: ac.signal,
          onProgress: (e) => {
            if (ac.signal.aborted) after++;
            if (e.stage === 'thumbnails' && e.done === 2) ac.abort(new Error('stop'));
          },
        },
      ),
      /^Error: stop$/,
    );
    assert.equal(after, 0, 'no progress after the abort');
    assert.ok(!existsSync(join(dir, 'report', 'index.html')));
    assert.equal(readdirSync(join(dir, 'report', 'thumbs')).length, 2);
    await assert.rejects(buildReport({ dir }, { signal: AbortSignal.abort() }), { name: 'AbortError' });
  });
});

describe('clip-dissect report', () => {
  it('is listed in the main help and has its own', async () => {
    assert.match((await cli(['--help'])).stdout, /report {7}build the interactive HTML report/);
    const h = await cli(['help', 'report']);
    assert.equal(h.code, 0);
    assert.match(h.stdout, /--top-images N/);
    assert.match(h.stdout, /--thumb-size PX/);
  });

  it('no folder exits 2; a missing folder or neurons.json exits 1 naming the path', async () => {
    const none = await cli(['report']);
    assert.equal(none.code, 2);
    assert.match(none.stderr, /missing DIR/);
    const missing = join(tempDir(), 'nope');
    const r = await cli(['report', missing]);
    assert.equal(r.code, 1);
    assert.ok(r.stderr.includes(`${missing}: no such folder`), r.stderr);
    const empty = tempDir();
    const r2 = await cli(['report', empty]);
    assert.equal(r2.code, 1);
    assert.ok(r2.stderr.includes(join(empty, 'neurons.json')), r2.stderr);
    const bad = await cli(['report', empty, '--thumb-size', 'big']);
    assert.equal(bad.code, 1);
    assert.match(bad.stderr, /--thumb-size must be an integer >= 16 but got 'big'/);
  });

  it('builds the report and prints where it is', async () => {
    const dir = tempDir('clip-dissect-report-');
    await writeSyntheticResults(dir, [{ name: 'fc', neurons: 5 }], 30);
    const r = await cli(['report', dir, '--top-images', '3', '--thumb-size', '64', '--quiet']);
    assert.equal(r.code, 0, r.stderr);
    assert.equal(r.stderr, '');
    assert.match(
      r.stdout,
      /^report: 1 layer, 5 neurons, \d+ thumbnails \(\d+ written, 0 reused\), [\d.]+ MB in [\d.]+s → .*report\/index\.html$/m,
    );
    assert.equal(readData(dir).meta.topImages, 3);
  });
});
