/**
 * Benchmark of the HTML report at ResNet-50 scale (not a test): a synthetic dissect results folder with 5
 * layers of 64/256/512/1024/2048 neurons (3904, as conv1 + layer1..4 of ResNet-50) over N probe JPEGs, then
 * buildReport and the page in headless Chromium.
 *
 *   npm run bench:report -- --images 10000
 *
 * Prints: build time, thumbnails and their mean size, the report folder's size (and data.js), and the page's
 * load times from file:// (navigation start → first render of the overview, and of a layer4 neuron with its
 * 2048-row table), median of 5 loads; sorting the 2048 rows by score and stepping to the next neuron.
 * The JPEGs are synthetic (gradients, shapes and noise, 320×240): their thumbnails are about the size of
 * photos' thumbnails, which vary with content.
 */
import { mkdtempSync, readdirSync, rmSync, statSync } from 'node:fs';
import { cpus, tmpdir } from 'node:os';
import { join } from 'node:path';
import { pathToFileURL } from 'node:url';
import { parseArgs } from 'node:util';
import sharp from 'sharp';
import { buildReport } from '../src/report/html-report.js';
import { launchChromium, NEEDS_CHROMIUM } from '../test/helpers/browser.js';
import { writeSyntheticResults } from '../test/helpers/report-fixture.js';

const { values } = parseArgs({
  options: {
    images: { type: 'string', default: '2000' },
    keep: { type: 'boolean' },
  },
});
const N = Number(values.images);
const LAYERS = [
  { name: 'conv1', neurons: 64 },
  { name: 'layer1', neurons: 256 },
  { name: 'layer2', neurons: 512 },
  { name: 'layer3', neurons: 1024 },
  { name: 'layer4', neurons: 2048 },
];

const dir = mkdtempSync(join(tmpdir(), 'clip-dissect-bench-report-'));
const mb = (b: number) => `${(b / 1e6).toFixed(1)} MB`;
const median = (xs: number[]) => xs.slice().sort((a, b) => a - b)[Math.floor(xs.length / 2)];
try {
  console.log(
    `bench/report: ${LAYERS.length} layers, ${LAYERS.reduce((s, l) => s + l.neurons, 0)} neurons, ${N} probe images; ${cpus().length} × ${cpus()[0]?.model ?? 'cpu'}, node ${process.version}, sharp ${sharp.versions.sharp}`,
  );
  let t = performance.now();
  await writeSyntheticResults(dir, LAYERS, N, { deadEvery: 50, imageSize: [320, 240], concepts: 3000 });
  console.log(`synthetic results folder: ${((performance.now() - t) / 1000).toFixed(1)}s`);

  t = performance.now();
  const r = await buildReport({ dir });
  const build = (performance.now() - t) / 1000;
  const thumbs = readdirSync(join(r.dir, 'thumbs')).filter((f) => f.endsWith('.webp'));
  const thumbBytes = thumbs.reduce((s, f) => s + statSync(join(r.dir, 'thumbs', f)).size, 0);
  const dataJs = statSync(join(r.dir, 'data.js')).size;
  console.log(`build: ${build.toFixed(1)}s (${r.thumbnails.written} thumbnails written)`);
  console.log(
    `thumbnails: ${thumbs.length} of ${N} probe images (${((100 * thumbs.length) / N).toFixed(0)}%), mean ${(thumbBytes / thumbs.length / 1000).toFixed(1)} KB, ${mb(thumbBytes)}`,
  );
  console.log(`report folder: ${mb(r.bytes)} (data.js ${mb(dataJs)}, data.json the same again)`);
  const rebuild = await buildReport({ dir });
  console.log(`rebuild (thumbnails reused): ${rebuild.seconds.toFixed(1)}s`);

  if (NEEDS_CHROMIUM) console.log(`page timings skipped: ${NEEDS_CHROMIUM}`);
  else {
    const browser = await launchChromium();
    const url = pathToFileURL(r.index).href;
    const outside: string[] = [];
    const load = async (hash: string, selector: string) => {
      const page = await browser.newPage({ viewport: { width: 1440, height: 900 } });
      page.on('request', (q) => {
        if (!q.url().startsWith('file://')) outside.push(q.url());
      });
      const t0 = performance.now();
      await page.goto(url + hash, { waitUntil: 'commit' });
      await page.waitForSelector(selector);
      const wall = performance.now() - t0;
      const ready = (await page.evaluate('window.__reportReady')) as number;
      return { page, wall, ready };
    };
    const over: number[] = [];
    const neuron: number[] = [];
    const walls: number[] = [];
    for (let i = 0; i < 5; i++) {
      const a = await load('', '.overview .card');
      over.push(a.ready);
      await a.page.close();
      const b = await load('#layer4/1517', '#tbody tr.sel');
      neuron.push(b.ready);
      walls.push(b.wall);
      if (i < 4) await b.page.close();
      else {
        const page = b.page;
        // timed inside the page: the click and key handlers render synchronously
        const sort = (await page.evaluate(`(() => {
          const t = performance.now();
          document.querySelector('th[data-sort="score"]').click();
          return performance.now() - t;
        })()`)) as number;
        const step = (await page.evaluate(`(() => {
          const t = performance.now();
          document.dispatchEvent(new KeyboardEvent('keydown', { key: 'j' }));
          return performance.now() - t;
        })()`)) as number;
        const rows = await page.$$eval('#tbody tr', (trs) => trs.length);
        console.log(
          `layer4 table: ${rows} rows in the DOM of 2048 (paged); sort by score ${sort.toFixed(0)} ms, next neuron ${step.toFixed(0)} ms (in the page)`,
        );
        await page.close();
      }
    }
    console.log(
      `page load from file:// (navigation start → rendered, median of 5): overview ${median(over).toFixed(0)} ms; #layer4/1517 with its table ${median(neuron).toFixed(0)} ms (${median(walls).toFixed(0)} ms wall from node)`,
    );
    console.log(`requests outside file://: ${outside.length}`);
    await browser.close();
  }
} finally {
  if (values.keep) console.log(`kept ${dir}`);
  else rmSync(dir, { recursive: true, force: true });
}
