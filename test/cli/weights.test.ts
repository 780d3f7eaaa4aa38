import assert from 'node:assert/strict';
import { readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { fileURLToPath } from 'node:url';
import { linearWeightsBetween } from '../../src/models/_onnx-weights.js';
import { createOnnxClipEncoder } from '../../src/models/onnx-clip-encoder.js';
import { createOnnxSentenceEncoder } from '../../src/models/onnx-sentence-encoder.js';
import { pearsonPValue } from '../../src/numeric/stats.js';
import { cli, tempDir } from '../helpers/cli.js';
import { NEEDS_SHARED } from '../models/clip-helpers.js';
import { FOLDED, RESULTS_CONCEPTS, runTinyDissection } from '../pipeline/helpers.js';

const MPNET = fileURLToPath(new URL('../../../test/fixtures/mpnet/model', import.meta.url));

const CONCEPTS = RESULTS_CONCEPTS;
const CLASSES = [
  'tench',
  'goldfish',
  'white shark',
  'tiger shark',
  'hammerhead',
  'electric ray',
  'stingray',
  'cock',
  'hen',
  'ostrich',
];

/** r computed naively from its definition (independent of src/numeric/stats.ts). */
function naiveR(x: number[], y: number[]): number {
  const n = x.length;
  const mx = x.reduce((a, b) => a + b, 0) / n;
  const my = y.reduce((a, b) => a + b, 0) / n;
  let sxy = 0;
  let sxx = 0;
  let syy = 0;
  for (let i = 0; i < n; i++) {
    sxy += (x[i] - mx) * (y[i] - my);
    sxx += (x[i] - mx) ** 2;
    syy += (y[i] - my) ** 2;
  }
  return sxy / Math.sqrt(sxx * syy);
}

/** Every weight with the cosine of its class (rows of G) and concept (rows of C), largest weight first. */
function sortedPairs(
  W: Float32Array,
  G: number[][],
  C: number[][],
): { w: number; s: number; t: number; f: number }[] {
  const pairs: { w: number; s: number; t: number; f: number }[] = [];
  for (let t = 0; t < G.length; t++)
    for (let f = 0; f < C.length; f++)
      pairs.push({ w: W[t * C.length + f], s: G[t].reduce((a, v, j) => a + v * C[f][j], 0), t, f });
  return pairs.sort((a, b) => b.w - a.w || a.t * C.length + a.f - (b.t * C.length + b.f));
}

describe('clip-dissect weights', () => {
  it('is listed in the main help and has its own', async () => {
    assert.match((await cli(['--help'])).stdout, /weights {6}weights between two layers/);
    const help = await cli(['help', 'weights']);
    assert.equal(help.code, 0);
    assert.match(help.stdout, /--ground-truth FILE/);
  });

  it('missing flags exit 2', async () => {
    const r = await cli(['weights', '--results', tempDir()]);
    assert.equal(r.code, 2);
    assert.match(r.stderr, /missing --from, --to, --ground-truth/);
  });

  describe('on a tiny dissection', { skip: NEEDS_SHARED }, () => {
    let clipDir = '';
    let cleanup: () => Promise<void> = async () => undefined;
    const run = tempDir('clip-dissect-run-');
    const gt = join(tempDir(), 'classes.txt');
    writeFileSync(gt, `${CLASSES.join('\n')}\n`);
    before(async () => {
      ({ clipDir, cleanup } = await runTinyDissection(run, CONCEPTS));
    });
    after(() => cleanup());

    it('reports the top weights, r and p, the top-k curve and writes weights.json / weights.svg', async () => {
      const out = tempDir('clip-dissect-weights-');
      const r = await cli([
        'weights',
        ...['--results', run, '--from', 'layer4', '--to', 'fc', '--ground-truth', gt],
        ...['--show', '5', '--top-weights', '100', '--text-space', 'clip', '--out', out, '--quiet'],
      ]);
      assert.equal(r.code, 0, r.stderr);
      assert.match(
        r.stdout,
        /^layer4 → fc: 10×64 weights of \/fc\/Gemm \('fc\.weight', through GlobalAveragePool → Flatten\); similarity in clip text space \(/,
      );
      assert.match(r.stdout, /weight vs similarity, all weights: +r = -?0\.\d{4}, p = [\d.e-]+ \(n = 640\)/);
      assert.match(r.stdout, /top 100 weights: r = .* \(n = 100\)/);
      const json = JSON.parse(readFileSync(join(out, 'weights.json'), 'utf8'));
      const svg = readFileSync(join(out, 'weights.svg'), 'utf8');
      assert.match(svg, /^<svg xmlns="http:\/\/www\.w3\.org\/2000\/svg"/);
      assert.match(svg, /mean cosine similarity of the top k/);

      // independent recomputation: W from the ONNX, labels from neurons.json, texts through the tiny CLIP
      const lw = await linearWeightsBetween(FOLDED, { name: 'layer4' }, { name: 'fc' });
      const neurons = JSON.parse(readFileSync(join(run, 'neurons.json'), 'utf8')).neurons as {
        label: string;
        score: number;
      }[];
      const enc = await createOnnxClipEncoder(clipDir, { threads: 1 });
      const embed = async (texts: string[]) => {
        const e = await enc.encodeText(texts);
        return texts.map((_, i) => {
          const row = Array.from(e.data.subarray(i * e.cols, (i + 1) * e.cols));
          const norm = Math.hypot(...row);
          return row.map((v) => v / norm);
        });
      };
      const C = await embed(neurons.map((n) => n.label));
      const G = await embed(CLASSES);
      await enc.release();
      const pairs = sortedPairs(lw.weight.data, G, C);
      assert.equal(json.textSpace, 'clip');
      const rAll = naiveR(
        pairs.map((p) => p.w),
        pairs.map((p) => p.s),
      );
      assert.ok(Math.abs(json.correlationAll.r - rAll) < 1e-5, `r ${json.correlationAll.r} vs ${rAll}`);
      assert.ok(Math.abs(json.correlationAll.p - pearsonPValue(rAll, 640).p) < 1e-4);
      const top = pairs.slice(0, 100);
      const rTop = naiveR(
        top.map((p) => p.w),
        top.map((p) => p.s),
      );
      assert.ok(Math.abs(json.correlationTop.r - rTop) < 1e-5);
      assert.equal(json.correlationTop.n, 100);
      assert.deepEqual(
        json.top.map((e: { fromUnit: number; toUnit: number }) => [e.toUnit, e.fromUnit]),
        pairs.slice(0, 5).map((p) => [p.t, p.f]),
      );
      assert.equal(json.top[0].fromConcept, neurons[pairs[0].f].label);
      assert.equal(json.top[0].toClass, CLASSES[pairs[0].t]);
      assert.ok(Math.abs(json.top[0].similarity - pairs[0].s) < 1e-5);
      // the curve: k = 4 … 512, then all 640
      assert.deepEqual(
        json.curve.map((c: { k: number }) => c.k),
        [4, 8, 16, 32, 64, 128, 256, 512, 640],
      );
      for (const c of json.curve) {
        const want = pairs.slice(0, c.k).reduce((a, p) => a + p.s, 0) / c.k;
        assert.ok(Math.abs(c.meanSimilarity - want) < 1e-5, `k = ${c.k}`);
      }
      // winning score vs largest outgoing weight
      const maxW = Array.from({ length: 64 }, (_, f) =>
        Math.max(...Array.from({ length: 10 }, (_, t) => lw.weight.data[t * 64 + f])),
      );
      const rScore = naiveR(
        neurons.map((n) => n.score),
        maxW,
      );
      assert.ok(Math.abs(json.scoreVsMaxWeight.r - rScore) < 1e-5);
    });

    it('bad inputs exit 1 with the reason', async () => {
      const short = join(tempDir(), 'short.txt');
      writeFileSync(short, 'a\nb\n');
      const a = await cli([
        'weights',
        '--results',
        run,
        '--from',
        'layer4',
        '--to',
        'fc',
        '--ground-truth',
        short,
      ]);
      assert.equal(a.code, 1);
      assert.match(a.stderr, /the ground truth has 2 class names but layer 'fc' has 10 units/);
      const b = await cli([
        'weights',
        '--results',
        run,
        '--from',
        'layer3',
        '--to',
        'fc',
        '--ground-truth',
        gt,
      ]);
      assert.equal(b.code, 1);
      assert.match(b.stderr, /'from' 'layer3' was not dissected in .*; its layers are 'layer4'/);
      const c = await cli([
        'weights',
        '--results',
        run,
        '--from',
        'layer4',
        '--to',
        'layer3',
        '--ground-truth',
        gt,
      ]);
      assert.equal(c.code, 1);
      assert.match(c.stderr, /layer 'layer3' of .* holds no Gemm or MatMul node/);
      const d = await cli([
        'weights',
        '--results',
        tempDir(),
        '--from',
        'layer4',
        '--to',
        'fc',
        '--ground-truth',
        gt,
      ]);
      assert.equal(d.code, 1);
      assert.match(d.stderr, /args\.json '.*' cannot be read \(ENOENT\)/);
      const e = await cli([
        'weights',
        '--results',
        run,
        '--from',
        'layer4',
        '--to',
        'fc',
        '--ground-truth',
        gt,
        '--text-space',
        'bert',
      ]);
      assert.equal(e.code, 1);
      assert.match(e.stderr, /--text-space must be 'mpnet' or 'clip' but got 'bert'/);
    });

    it("measures similarity by default with the sentence encoder of --mpnet, as the notebook's r", async () => {
      const out = tempDir('clip-dissect-weights-mpnet-');
      const r = await cli([
        'weights',
        ...['--results', run, '--from', 'layer4', '--to', 'fc', '--ground-truth', gt, '--mpnet', MPNET],
        ...['--show', '5', '--top-weights', '100', '--offline', '--threads', '1', '--out', out, '--quiet'],
      ]);
      assert.equal(r.code, 0, r.stderr);
      assert.ok(r.stdout.includes(`similarity in mpnet text space (${MPNET})`), r.stdout.split('\n')[0]);
      const json = JSON.parse(readFileSync(join(out, 'weights.json'), 'utf8'));
      assert.equal(json.textSpace, 'mpnet');
      assert.equal(json.textModel, MPNET);

      // independent recomputation with the sentence encoder
      const lw = await linearWeightsBetween(FOLDED, { name: 'layer4' }, { name: 'fc' });
      const labels = (
        JSON.parse(readFileSync(join(run, 'neurons.json'), 'utf8')).neurons as { label: string }[]
      ).map((n) => n.label);
      await using enc = await createOnnxSentenceEncoder(MPNET, { threads: 1 });
      const rows = async (texts: string[]) => {
        const e = await enc.encode(texts);
        return texts.map((_, i) => Array.from(e.data.subarray(i * e.cols, (i + 1) * e.cols)));
      };
      const pairs = sortedPairs(lw.weight.data, await rows(CLASSES), await rows(labels));
      // the listed weights, their similarities, r and the curve equal the direct recomputation
      for (const [i, e] of (
        json.top as { toUnit: number; fromUnit: number; similarity: number }[]
      ).entries()) {
        assert.deepEqual([e.toUnit, e.fromUnit], [pairs[i].t, pairs[i].f]);
        assert.ok(
          Math.abs(e.similarity - pairs[i].s) < 1e-5,
          `rank ${i + 1}: ${e.similarity} vs ${pairs[i].s}`,
        );
      }
      const rAll = naiveR(
        pairs.map((p) => p.w),
        pairs.map((p) => p.s),
      );
      assert.ok(Math.abs(json.correlationAll.r - rAll) < 1e-5, `r ${json.correlationAll.r} vs ${rAll}`);
      const top = pairs.slice(0, 100);
      const rTop = naiveR(
        top.map((p) => p.w),
        top.map((p) => p.s),
      );
      assert.ok(Math.abs(json.correlationTop.r - rTop) < 1e-5);
      for (const c of json.curve) {
        const want = pairs.slice(0, c.k).reduce((a, p) => a + p.s, 0) / c.k;
        assert.ok(Math.abs(c.meanSimilarity - want) < 1e-5, `k = ${c.k}`);
      }
      assert.match(readFileSync(join(out, 'weights.svg'), 'utf8'), /mpnet cos similarity/);
    });

    it('--offline with an uncached --mpnet id exits 1 naming the missing file', async () => {
      const r = await cli([
        'weights',
        ...['--results', run, '--from', 'layer4', '--to', 'fc', '--ground-truth', gt],
        ...['--mpnet', 'nobody/uncached-mpnet', '--offline', '--cache-dir', tempDir(), '--out', tempDir()],
      ]);
      assert.equal(r.code, 1);
      assert.match(r.stderr, /model 'nobody\/uncached-mpnet': config\.json is not in the cache/);
    });
  });
});
