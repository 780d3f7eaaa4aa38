import assert from 'node:assert/strict';
import { readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { fileURLToPath } from 'node:url';
import { npyToMatrix, readNpy } from '../../src/io/npy.js';
import { createOnnxClipEncoder } from '../../src/models/onnx-clip-encoder.js';
import { createOnnxSentenceEncoder } from '../../src/models/onnx-sentence-encoder.js';
import type { Matrix } from '../../src/numeric/matrix.js';
import { similarityReference } from '../../src/numeric/similarity-reference.js';
import { cli, tempDir } from '../helpers/cli.js';
import { assembleModelDir, NEEDS_SHARED } from '../models/clip-helpers.js';
import { tinyDissectArgs } from '../pipeline/helpers.js';

const MPNET = fileURLToPath(new URL('../../../test/fixtures/mpnet/model', import.meta.url));
// the fc layer of the fixture network has 10 units: class i names unit i
const CLASSES = [
  'tench, Tinca tinca',
  'goldfish',
  'great white shark',
  'dog',
  'cat',
  'traffic light',
  'ice cream',
  'fire hydrant',
  'zebra',
  'hot air balloon',
];

const load = async (p: string): Promise<Matrix> => npyToMatrix(await readNpy(p), p);

/** Mean over rows of the cosine of a[i] and b[i], written independently of the product. */
function meanCos(a: Matrix, b: Matrix): number {
  let s = 0;
  for (let i = 0; i < a.rows; i++) {
    const x = Array.from(a.data.subarray(i * a.cols, (i + 1) * a.cols));
    const y = Array.from(b.data.subarray(i * b.cols, (i + 1) * b.cols));
    const dot = x.reduce((t, v, j) => t + v * y[j], 0);
    s += dot / Math.hypot(...x) / Math.hypot(...y);
  }
  return s / a.rows;
}

describe('clip-dissect eval', () => {
  it('is listed in the main help and has its own', async () => {
    const main = await cli(['--help']);
    assert.match(main.stdout, /eval {9}score a layer's labels/);
    const help = await cli(['help', 'eval']);
    assert.equal(help.code, 0);
    assert.match(help.stdout, /--ground-truth FILE/);
    assert.match(help.stdout, /NetDissect tally\.csv/);
    const missing = await cli(['eval', '--layer', 'fc']);
    assert.equal(missing.code, 2);
    assert.match(missing.stderr, /missing --results \(see/);
  });

  describe('on a tiny dissection with the tiny CLIP and MPNet', { skip: NEEDS_SHARED }, () => {
    let clipDir = '';
    let cleanup: () => Promise<void> = async () => undefined;
    const out = tempDir('clip-dissect-eval-run-');
    const cacheDir = tempDir('clip-dissect-cache-');
    const classes = join(tempDir(), 'classes.txt');
    writeFileSync(classes, `${CLASSES.join('\n')}\n`);
    before(async () => {
      const m = await assembleModelDir();
      clipDir = m.dir;
      cleanup = m.cleanup;
      const r = await cli(
        tinyDissectArgs({ layers: 'layer4,fc', concepts: classes, clip: clipDir, out, cacheDir }),
      );
      assert.equal(r.code, 0, r.stderr);
    });
    after(() => cleanup());
    const evalArgs = (extra: string[] = []) => [
      'eval',
      ...['--results', out, '--layer', 'fc', '--ground-truth', classes, '--mpnet', MPNET],
      ...['--threads', '1', '--cache-dir', cacheDir, '--offline', ...extra],
    ];

    it('prints the table and writes eval.json with the notebook protocol figures', async () => {
      // other methods' labels: a NetDissect tally (1-based units, any row order) and a MILAN csv
      const tally = join(tempDir(), 'tally.csv');
      const ndLabels = CLASSES.map((_, i) => ['scaly', 'sky-s', 'blue-c', 'dog', 'water'][i % 5]);
      const ndRows = ndLabels.map((l, i) => `${i + 1},texture,${l},0.1${i},green-c,1,2,3,0.4`).reverse();
      writeFileSync(tally, `unit,category,label,score,color-label,a,b,c,d\n${ndRows.join('\n')}\n`);
      const milan = join(tempDir(), 'milan.csv');
      const milanLabels = CLASSES.map((c, i) => (i % 2 ? `"${c}, and more"` : `animals ${i}`));
      writeFileSync(
        milan,
        `layer,unit,description\nlayer4,0,Edges\n${milanLabels.map((l, i) => `fc,${i},${l}`).join('\n')}\n`,
      );
      const r = await cli(evalArgs(['--compare', tally, '--compare', milan]));
      assert.equal(r.code, 0, r.stderr);
      const j = JSON.parse(readFileSync(join(out, 'eval.json'), 'utf8'));
      assert.equal(j.layer, 'fc');
      assert.equal(j.units, 10);
      assert.deepEqual(
        j.methods.map((m: { method: string; layout: string }) => [m.method, m.layout]),
        [
          ['CLIP-Dissect', 'clip-dissect'],
          ['tally.csv', 'netdissect'],
          ['milan.csv', 'layer-unit-description'],
        ],
      );
      const units = j.perUnit as {
        unit: number;
        groundTruth: string;
        rank: number;
        labels: Record<string, { label: string }>;
      }[];
      assert.deepEqual(
        units.map((u) => u.groundTruth),
        CLASSES,
      );
      assert.deepEqual(
        units.map((u) => u.labels['tally.csv'].label),
        ndLabels,
      );
      assert.deepEqual(
        units.map((u) => u.labels['milan.csv'].label),
        CLASSES.map((c, i) => (i % 2 ? `${c}, and more` : `animals ${i}`)),
      );
      const desc = readFileSync(join(out, 'descriptions.csv'), 'utf8')
        .trim()
        .split('\n')
        .filter((l) => l.startsWith('fc,'))
        .map((l) => l.split(',').slice(2, -1).join(',').replace(/^"|"$/g, ''));
      assert.deepEqual(
        units.map((u) => u.labels['CLIP-Dissect'].label),
        desc,
      );

      // accuracy: the full similarity from the saved features by the reference implementation, ranked here
      const args = JSON.parse(readFileSync(join(out, 'args.json'), 'utf8'));
      const S = similarityReference(
        'soft_wpmi',
        {
          imageFeatures: await load(join(out, 'image_features.npy')),
          textFeatures: await load(join(out, 'text_features.npy')),
          activations: await load(join(out, 'fc.npy')),
        },
        args.options,
      );
      const ranks: number[] = [];
      const best: number[] = [];
      for (let i = 0; i < 10; i++) {
        const row = Array.from(S.data.subarray(i * 10, (i + 1) * 10));
        const order = row.map((_, c) => c).sort((a, b) => row[b] - row[a] || a - b);
        ranks.push(order.indexOf(i) + 1);
        best.push(row[order[0]]);
      }
      assert.deepEqual(
        units.map((u) => u.rank),
        ranks,
      );
      const correct = ranks.map((x) => x === 1);
      let pairs = 0;
      let wins = 0;
      for (let a = 0; a < 10; a++)
        for (let b = 0; b < 10; b++)
          if (correct[a] && !correct[b]) {
            pairs++;
            wins += best[a] > best[b] ? 1 : best[a] === best[b] ? 0.5 : 0;
          }
      const acc = j.accuracy;
      assert.equal(acc.top1, ranks.filter((x) => x === 1).length / 10);
      assert.equal(acc.top5, ranks.filter((x) => x <= 5).length / 10);
      assert.ok(Math.abs(acc.meanRank - ranks.reduce((s, x) => s + x, 0) / 10) < 1e-9);
      assert.equal(acc.medianRank, [...ranks].sort((a, b) => a - b)[5]);
      if (pairs === 0) assert.equal(acc.auc, null);
      else assert.ok(Math.abs(acc.auc - wins / pairs) < 1e-6, `auc ${acc.auc} vs ${wins / pairs}`);
      assert.equal(acc.labelMismatches, 0);

      // cosines: the same encoders run here on the labels and the classes
      await using clip = await createOnnxClipEncoder(clipDir, { threads: 1 });
      await using mpnet = await createOnnxSentenceEncoder(MPNET, { threads: 1 });
      const clipGt = await clip.encodeText(CLASSES);
      const mpnetGt = await mpnet.encode(CLASSES);
      for (const m of j.methods as { method: string; clipCos: number; mpnetCos: number }[]) {
        const labels = units.map((u) => u.labels[m.method].label);
        const wantClip = meanCos(await clip.encodeText(labels), clipGt);
        const wantMpnet = meanCos(await mpnet.encode(labels), mpnetGt);
        assert.ok(Math.abs(m.clipCos - wantClip) < 1e-6, `${m.method} CLIP ${m.clipCos} vs ${wantClip}`);
        assert.ok(Math.abs(m.mpnetCos - wantMpnet) < 1e-6, `${m.method} mpnet ${m.mpnetCos} vs ${wantMpnet}`);
        // the printed table holds the same figures, 4 decimals
        const line = new RegExp(
          `^${m.method.replace('.', '\\.')} +${wantClip.toFixed(4)} +${wantMpnet.toFixed(4)}$`,
          'm',
        );
        assert.match(r.stdout, line);
      }
      // a label equal to its class scores 1 in both spaces: unit 3 of the tally is 'dog', class 'dog'
      const dog = units[3].labels['tally.csv'] as unknown as { clipCos: number; mpnetCos: number };
      assert.ok(Math.abs(dog.clipCos - 1) < 1e-6 && Math.abs(dog.mpnetCos - 1) < 1e-6);

      assert.match(r.stdout, new RegExp(`top-1 accuracy +${(100 * acc.top1).toFixed(2)}%`));
      assert.match(r.stdout, new RegExp(`top-5 accuracy +${(100 * acc.top5).toFixed(2)}%`));
      assert.match(r.stdout, new RegExp(`mean ${acc.meanRank.toFixed(2)}, median ${acc.medianRank}`));
      assert.match(r.stdout, /over the 10 concepts of /);
    });

    it('top-1 accuracy and AUC on a ground truth that the labels of even units match', async () => {
      const first = JSON.parse(readFileSync(join(out, 'eval.json'), 'utf8'));
      const labels = (first.perUnit as { labels: Record<string, { label: string }> }[]).map(
        (u) => u.labels['CLIP-Dissect'].label,
      );
      // even units: their own label (rank 1); odd units: a concept other than their label
      const gt = labels.map((l, i) => (i % 2 === 0 ? l : (CLASSES.find((c) => c !== l) as string)));
      const file = join(tempDir(), 'half.txt');
      writeFileSync(file, gt.join('\n'));
      const o = tempDir('clip-dissect-eval-out-');
      const r = await cli(evalArgs(['--out', o]).map((a) => (a === classes ? file : a)));
      assert.equal(r.code, 0, r.stderr);
      const j = JSON.parse(readFileSync(join(o, 'eval.json'), 'utf8'));
      const ranks = (j.perUnit as { rank: number }[]).map((u) => u.rank);
      assert.deepEqual(
        ranks.filter((_, i) => i % 2 === 0),
        [1, 1, 1, 1, 1],
      );
      assert.ok(ranks.filter((_, i) => i % 2 === 1).every((x) => x > 1));
      assert.equal(j.accuracy.top1, 0.5);
      // the winning scores of the runs's neurons, from neurons.json, and the pairwise AUC
      const neurons = JSON.parse(readFileSync(join(out, 'neurons.json'), 'utf8')).neurons.filter(
        (n: { layer: string }) => n.layer === 'fc',
      ) as { score: number }[];
      let wins = 0;
      for (let a = 0; a < 10; a += 2)
        for (let b = 1; b < 10; b += 2)
          wins += neurons[a].score > neurons[b].score ? 1 : neurons[a].score === neurons[b].score ? 0.5 : 0;
      assert.equal(j.accuracy.auc, Number((wins / 25).toFixed(6)));
      assert.match(r.stdout, new RegExp(`AUC +${(wins / 25).toFixed(4)}`));
      // a class named twice maps to its one concept: the CLIP cosine of an even unit is 1
      assert.ok(Math.abs(j.perUnit[0].labels['CLIP-Dissect'].clipCos - 1) < 1e-6);
    });

    it("--concepts finds the run's concept set when its path in args.json does not reach it", async () => {
      const args = JSON.parse(readFileSync(join(out, 'args.json'), 'utf8'));
      const moved = tempDir('clip-dissect-eval-moved-');
      for (const f of ['descriptions.csv', 'image_features.npy', 'text_features.npy', 'fc.npy'])
        writeFileSync(join(moved, f), readFileSync(join(out, f)));
      args.inputs.concepts.source = 'somewhere/else/classes.txt';
      writeFileSync(join(moved, 'args.json'), JSON.stringify(args));
      const lost = await cli(evalArgs().map((a) => (a === out ? moved : a)));
      assert.equal(lost.code, 0, lost.stderr);
      assert.match(
        lost.stderr,
        /warning: no accuracy: the run's concept file '.*somewhere\/else\/classes\.txt' \(recorded in .*args\.json\) cannot be read: it does not exist .*give the set with --concepts/,
      );
      const found = await cli([...evalArgs().map((a) => (a === out ? moved : a)), '--concepts', classes]);
      assert.equal(found.code, 0, found.stderr);
      const j = JSON.parse(readFileSync(join(moved, 'eval.json'), 'utf8'));
      assert.equal(typeof j.accuracy.top1, 'number');
    });

    it('without the class names among the concepts: cosines only, and a note why', async () => {
      const other = join(tempDir(), 'other.txt');
      writeFileSync(other, CLASSES.map((c, i) => (i === 4 ? 'kitten' : c)).join('\n'));
      const o = tempDir('clip-dissect-eval-out-');
      const r = await cli(evalArgs(['--out', o]).map((a) => (a === classes ? other : a)));
      assert.equal(r.code, 0, r.stderr);
      const j = JSON.parse(readFileSync(join(o, 'eval.json'), 'utf8'));
      assert.equal(j.accuracy, null);
      assert.match(
        j.accuracyNote,
        /1 of the 10 ground-truth classes are not concepts of the run \(first: "kitten"\)/,
      );
      assert.match(r.stdout, /no accuracy: 1 of the 10/);
      assert.ok(j.methods[0].clipCos > -1 && j.methods[0].clipCos < 1);
    });

    it('bad inputs exit 1 naming what is wrong', async () => {
      const layer = await cli(evalArgs().map((a) => (a === 'fc' ? 'fc2' : a)));
      assert.equal(layer.code, 1);
      assert.match(layer.stderr, /layer 'fc2' is not in the run .*; its layers are 'layer4', 'fc'/);

      const short = join(tempDir(), 'short.txt');
      writeFileSync(short, CLASSES.slice(0, 9).join('\n'));
      const gt = await cli(evalArgs().map((a) => (a === classes ? short : a)));
      assert.equal(gt.code, 1);
      assert.match(gt.stderr, /has 9 class names but layer 'fc' has 10 neurons/);

      const bad = join(tempDir(), 'bad.csv');
      writeFileSync(bad, 'neuron,concept\n0,dog\n');
      const layout = await cli(evalArgs(['--compare', bad]));
      assert.equal(layout.code, 1);
      assert.match(
        layout.stderr,
        /columns 'neuron', 'concept' are not a known layout; accepted layouts: NetDissect tally\.csv/,
      );

      const gap = join(tempDir(), 'gap.csv');
      writeFileSync(
        gap,
        `unit,category,label,score\n${[1, 2, 3].map((u) => `${u},object,dog,0.1`).join('\n')}\n`,
      );
      const units = await cli(evalArgs(['--compare', gap]));
      assert.equal(units.code, 1);
      assert.match(units.stderr, /7 of the layer's 10 units have no label \(first: unit 4, 1-based\)/);

      const wrongSet = join(tempDir(), 'wrong.txt');
      writeFileSync(wrongSet, CLASSES.slice(1).join('\n'));
      const concepts = await cli(evalArgs(['--concepts', wrongSet]));
      assert.equal(concepts.code, 1);
      assert.match(
        concepts.stderr,
        /the concept set .*wrong\.txt is not the run's: its concepts do not match the SHA-256/,
      );

      const notRun = await cli(evalArgs().map((a) => (a === out ? tempDir() : a)));
      assert.equal(notRun.code, 1);
      assert.match(
        notRun.stderr,
        /args\.json' cannot be read \(ENOENT\); --results must be a folder written by 'clip-dissect dissect --out'/,
      );

      const offline = await cli(evalArgs().map((a) => (a === MPNET ? 'nobody/uncached-mpnet' : a)));
      assert.equal(offline.code, 1);
      assert.match(offline.stderr, /model 'nobody\/uncached-mpnet': config\.json is not in the cache/);
    });
  });
});
