/**
 * The report of a real (tiny) dissection, opened in headless Chromium from file://: the table, a neuron's
 * top images, search, deep links, keyboard navigation, and no request outside file://. Saves
 * test-output/report.png. Skips without ../shared (the tiny CLIP's tokenizer) or /usr/bin/chromium.
 */
import assert from 'node:assert/strict';
import { existsSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { fileURLToPath, pathToFileURL } from 'node:url';
import type { Browser, Page } from 'playwright-core';
import { npyToMatrix, readNpy } from '../../src/io/npy.js';
import type { Matrix } from '../../src/numeric/matrix.js';
import { launchChromium, NEEDS_CHROMIUM } from '../helpers/browser.js';
import { cli, tempDir } from '../helpers/cli.js';
import { assembleModelDir, NEEDS_SHARED } from '../models/clip-helpers.js';
import { FOLDED, PREPROCESS_JSON, probeFolder } from '../pipeline/helpers.js';

const OUTPUT = fileURLToPath(new URL('../../../test-output/', import.meta.url));
const CONCEPTS = ['dog', 'cat', 'bird', 'car', 'tree', 'water', 'sky', 'grass', 'road', 'person'];

/** Waits until the page's URL hash matches (polled from here: the page's CSP forbids string evaluation). */
async function waitHash(page: Page, want: string | RegExp): Promise<string> {
  for (let i = 0; i < 100; i++) {
    const h = new URL(page.url()).hash;
    if (typeof want === 'string' ? h === want : want.test(h)) return h;
    await new Promise((r) => setTimeout(r, 20));
  }
  throw new Error(`the page's hash stayed ${new URL(page.url()).hash}, expected ${want}`);
}

/** descriptions.csv → layer → labels by unit (the concepts here need no CSV quoting). */
function descriptions(path: string): Map<string, string[]> {
  const out = new Map<string, string[]>();
  for (const line of readFileSync(path, 'utf8').trim().split('\n').slice(1)) {
    const [layer, unit, label] = line.split(',');
    const list = out.get(layer) ?? [];
    list[Number(unit)] = label;
    out.set(layer, list);
  }
  return out;
}

describe('the HTML report in Chromium', { skip: NEEDS_SHARED || NEEDS_CHROMIUM }, () => {
  let out = '';
  let stdout = '';
  let browser: Browser;
  let page: Page;
  let url = '';
  const requests: string[] = [];
  const errors: string[] = [];
  let labels = new Map<string, string[]>();
  let cleanup: () => Promise<void> = async () => undefined;
  let dissectArgs: (o: string) => string[] = () => [];

  before(async () => {
    const m = await assembleModelDir();
    cleanup = m.cleanup;
    const concepts = join(tempDir(), 'concepts.txt');
    writeFileSync(concepts, CONCEPTS.join('\n'));
    out = tempDir('clip-dissect-report-');
    const probe = probeFolder();
    const cacheDir = tempDir('clip-dissect-cache-');
    dissectArgs = (o: string) => [
      'dissect',
      ...['--target', FOLDED, '--layers', 'conv1,layer4', '--probe', probe, '--concepts', concepts],
      ...['--clip', m.dir, '--preprocess', PREPROCESS_JSON, '--top-k', '5', '--batch-size', '8'],
      ...['--threads', '1', '--cache-dir', cacheDir, '--out', o, '--quiet'],
    ];
    const r = await cli(dissectArgs(out));
    assert.equal(r.code, 0, r.stderr);
    stdout = r.stdout;
    labels = descriptions(join(out, 'descriptions.csv'));
    browser = await launchChromium();
    page = await browser.newPage({ viewport: { width: 1440, height: 900 } });
    page.on('request', (q) => requests.push(q.url()));
    page.on('pageerror', (e) => errors.push(e.message));
    url = pathToFileURL(join(out, 'report', 'index.html')).href;
  });
  after(async () => {
    await browser?.close();
    await cleanup();
  });

  it('dissect wrote the report and said so', () => {
    assert.match(stdout, /^report: 2 layers, 72 neurons, \d+ thumbnails \(\d+ written, 0 reused\)/m);
    for (const f of ['index.html', 'data.js', 'data.json', 'thumbs/index.json'])
      assert.ok(existsSync(join(out, 'report', f)), f);
  });

  it('the table has one row per neuron with the labels of descriptions.csv', async () => {
    for (const [layer, want] of labels) {
      await page.goto(`${url}#${layer}`);
      await page.waitForSelector('#tbody tr');
      const rows = await page.$$eval('#tbody tr', (trs) =>
        trs.map((tr) => [
          Number(tr.getAttribute('data-unit')),
          tr.querySelector('td.lab')?.getAttribute('title'),
        ]),
      );
      assert.equal(rows.length, want.length, layer);
      assert.deepEqual(
        rows.map((r) => r[1]),
        want,
        layer,
      );
      assert.deepEqual(
        rows.map((r) => r[0]),
        want.map((_, k) => k),
      );
    }
  });

  it('clicking a neuron shows its top images in activation order, with their activations', async () => {
    const A: Matrix = npyToMatrix(await readNpy(join(out, 'layer4.npy')), 'layer4.npy');
    await page.goto(`${url}#layer4`);
    await page.waitForSelector('#tbody tr');
    for (const unit of [3, 17]) {
      await page.click(`#tbody tr[data-unit="${unit}"]`);
      await waitHash(page, `#layer4/${unit}`);
      const shown = await page.$$eval('#topimgs figure', (fs) =>
        fs.map((f) => [Number(f.getAttribute('data-row')), f.querySelector('figcaption')?.textContent ?? '']),
      );
      const order = Array.from({ length: A.rows }, (_, i) => i).sort(
        (x, y) => A.data[y * A.cols + unit] - A.data[x * A.cols + unit] || x - y,
      );
      assert.deepEqual(
        shown.map((s) => s[0]),
        order.slice(0, 5),
        `unit ${unit}`,
      );
      shown.forEach(([, caption], t) => {
        const v = A.data[order[t] * A.cols + unit];
        assert.equal(caption, `#${t + 1} · ${Number(v.toPrecision(4))}`);
      });
      assert.equal(await page.textContent('#dlabel'), labels.get('layer4')?.[unit]);
      // every image shown has loaded from thumbs/
      const loaded = await page.$$eval('#topimgs img', (ims) =>
        ims.map(
          (im) =>
            (im as unknown as { complete: boolean; naturalWidth: number }).complete &&
            (im as unknown as { naturalWidth: number }).naturalWidth,
        ),
      );
      assert.deepEqual(loaded, [128, 128, 128, 128, 128]);
    }
  });

  it('a search for a label finds its neuron; Enter opens it', async () => {
    await page.goto(url);
    const label = labels.get('layer4')?.[9] as string;
    await page.fill('#search', label);
    await page.waitForSelector('#results.open .r');
    const found = await page.$$eval('#results .r .where', (ws) => ws.map((w) => w.textContent));
    assert.ok(found.includes('layer4/9'), `${label}: ${found.join(' ')}`);
    const nLabel = [...labels].reduce((s, [, ls]) => s + ls.filter((l) => l === label).length, 0);
    assert.ok(found.length >= nLabel);
    await page.fill('#search', 'no such concept');
    await page.waitForSelector('#results .count');
    assert.match((await page.textContent('#results .count')) ?? '', /no neuron has "no such concept"/);
    await page.fill('#search', label);
    await page.press('#search', 'Enter');
    await waitHash(page, /^#[^/]+\/\d+$/);
    assert.equal(await page.textContent('#dlabel'), label);
  });

  it('a deep link opens the right neuron; j / k step through the table', async () => {
    await page.goto(`${url}#layer4/42`);
    await page.waitForSelector('#dlabel');
    assert.equal(await page.textContent('#dlabel'), labels.get('layer4')?.[42]);
    assert.match((await page.textContent('.dhead .where')) ?? '', /layer4 · unit 42/);
    assert.equal(await page.getAttribute('#tbody tr.sel', 'data-unit'), '42');
    await page.keyboard.press('j');
    await waitHash(page, '#layer4/43');
    assert.equal(await page.textContent('#dlabel'), labels.get('layer4')?.[43]);
    await page.keyboard.press('k');
    await page.keyboard.press('k');
    await waitHash(page, '#layer4/41');
    // sorted by score, j goes to the next lower score
    await page.click('th[data-sort="score"]');
    await page.goto(`${url}#conv1/0`);
    await page.waitForSelector('#dlabel');
    assert.equal(await page.textContent('#dlabel'), labels.get('conv1')?.[0]);
  });

  it('trust: a badge column, sorting by stability, filtering by badge, the metrics of a neuron', async () => {
    const nj = JSON.parse(readFileSync(join(out, 'neurons.json'), 'utf8')) as {
      neurons: {
        layer: string;
        unit: number;
        dead: boolean;
        trust: { badge: string; stability: number; metrics: { auprc: number | null } };
      }[];
    };
    const l4 = nj.neurons.filter((n) => n.layer === 'layer4');
    await page.goto(`${url}#layer4`);
    await page.waitForSelector('#tbody tr');
    assert.match(
      (await page.textContent('#lsum')) ?? '',
      /Trust: high \d+ · medium \d+ · low \d+ · stability mean/,
    );
    const heads = await page.$$eval('#thead th', (ths) =>
      ths.map((t) => t.textContent?.replace(/[▲▼]/, '').trim()),
    );
    assert.deepEqual(heads.slice(3, 8), ['Score', 'Trust', 'Stability', 'p', 'Sim. r']);
    await page.click('th[data-sort="stability"]');
    const stab = await page.$$eval('#tbody tr', (trs) =>
      trs.map((tr) => Number(tr.getAttribute('data-unit'))),
    );
    const want = l4
      .slice()
      .sort(
        (a, b) => (b.dead ? -1 : b.trust.stability) - (a.dead ? -1 : a.trust.stability) || a.unit - b.unit,
      )
      .map((n) => n.unit);
    assert.deepEqual(stab, want, 'most stable first, dead last');
    await page.selectOption('#tfilter', '2');
    const low = await page.$$eval('#tbody tr', (trs) =>
      trs.map((tr) => Number(tr.getAttribute('data-unit'))),
    );
    assert.deepEqual(
      low.slice().sort((a, b) => a - b),
      l4.filter((n) => n.trust.badge === 'low').map((n) => n.unit),
    );
    const live = l4.find((n) => !n.dead) as (typeof l4)[number];
    await page.goto(`${url}#layer4/${live.unit}`);
    await page.waitForSelector('.tmet');
    const metrics = (await page.textContent('.tmet')) ?? '';
    assert.match(metrics, /correlationcosineAUPRCF1IoU/);
    const ap = live.trust.metrics.auprc;
    // data.js keeps 4 decimals, the page prints 3
    if (ap !== null && ap >= 0.01)
      assert.ok(metrics.includes((Math.round(ap * 1e4) / 1e4).toFixed(3)), `${metrics} holds AUPRC ${ap}`);
  });

  it('no request leaves file://; no script error; a screenshot for people', async () => {
    // the screenshot shows layer4's best-scored neuron, as a person would open it from the overview
    const nj = JSON.parse(readFileSync(join(out, 'neurons.json'), 'utf8')) as {
      neurons: { layer: string; unit: number; score: number; dead: boolean }[];
    };
    const best = nj.neurons
      .filter((n) => n.layer === 'layer4' && !n.dead)
      .sort((a, b) => b.score - a.score || a.unit - b.unit)[0];
    const shot = await browser.newPage({ viewport: { width: 1440, height: 900 } });
    shot.on('request', (q) => requests.push(q.url()));
    await shot.goto(`${url}#layer4/${best.unit}`);
    await shot.waitForSelector('#topimgs img');
    await shot.waitForLoadState('load');
    // with trust figures (dissect's default) the badge comes from stability and significance, not the rank
    assert.match(
      (await shot.textContent('.verdict')) ?? '',
      /^(high|medium|low) trust.*stability \d+%.*· p [0-9.e-]+ · z /,
    );
    mkdirSync(OUTPUT, { recursive: true });
    await shot.screenshot({ path: join(OUTPUT, 'report.png') });
    await shot.close();
    await page.goto(url);
    await page.waitForSelector('.overview');
    await page.screenshot({ path: join(OUTPUT, 'report-overview.png') });
    assert.ok(requests.length > 10);
    assert.deepEqual(
      requests.filter((u) => !u.startsWith('file://')),
      [],
    );
    assert.deepEqual(errors, []);
  });

  it('clip-dissect report DIR rebuilds it, reusing the thumbnails', async () => {
    const r = await cli(['report', out, '--quiet']);
    assert.equal(r.code, 0, r.stderr);
    assert.match(r.stdout, /^report: 2 layers, 72 neurons, (\d+) thumbnails \(0 written, \1 reused\)/);
  });

  it('dissect --no-report writes no report', async () => {
    const o = tempDir('clip-dissect-out-');
    const r = await cli([...dissectArgs(o), '--no-report']);
    assert.equal(r.code, 0, r.stderr);
    assert.ok(existsSync(join(o, 'neurons.json')));
    assert.equal(existsSync(join(o, 'report')), false);
    assert.doesNotMatch(r.stdout, /^report:/m);
  });
});
