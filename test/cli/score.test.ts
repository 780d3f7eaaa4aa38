import assert from 'node:assert/strict';
import { readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { cli, tempDir } from '../helpers/cli.js';
import { assembleModelDir, NEEDS_SHARED } from '../models/clip-helpers.js';
import { RESULTS_CONCEPTS, tinyDissectArgs } from '../pipeline/helpers.js';

const TRUST = ['--bootstraps', '6', '--permutations', '5', '--trust-seed', '3'];

describe('clip-dissect score', () => {
  it('is listed in the main help; missing flags exit 2, bad values 1', async () => {
    assert.match((await cli(['--help'])).stdout, /score {8}which labels to trust/);
    assert.match((await cli(['help', 'score'])).stdout, /--concept-labels FILE/);
    const r = await cli(['score']);
    assert.equal(r.code, 2);
    assert.match(r.stderr, /missing --results/);
    const b = await cli(['score', '--results', tempDir(), '--bootstraps', '0']);
    assert.equal(b.code, 1);
    assert.match(b.stderr, /--bootstraps must be an integer >= 1 but got '0'/);
    const f = await cli(['score', '--results', tempDir(), '--active-fraction', '2']);
    assert.equal(f.code, 1);
    assert.match(f.stderr, /'activeFraction' must be in \(0, 1\] but got 2/);
  });

  describe('on a tiny dissection with trust figures', { skip: NEEDS_SHARED }, () => {
    let clipDir = '';
    let cleanup: () => Promise<void> = async () => undefined;
    const run = tempDir('clip-dissect-run-');
    before(async () => {
      const m = await assembleModelDir();
      clipDir = m.dir;
      cleanup = m.cleanup;
      const concepts = join(tempDir(), 'concepts.txt');
      writeFileSync(concepts, RESULTS_CONCEPTS.join('\n'));
      const r = await cli(
        tinyDissectArgs({
          layers: 'conv1,layer4',
          concepts,
          clip: clipDir,
          out: run,
          trust: true,
          extra: TRUST,
        }),
      );
      assert.equal(r.code, 0, r.stderr);
      assert.match(r.stdout, /trust: stability +[0-9.]+, simulation r/);
    });
    after(() => cleanup());
    const neurons = () => JSON.parse(readFileSync(join(run, 'neurons.json'), 'utf8'));

    it('dissect writes per-neuron trust and a per-layer summary into neurons.json', () => {
      const j = neurons();
      const l = j.layers[0];
      assert.equal(l.trust.settings.bootstraps, 6);
      assert.equal(l.trust.settings.permutations, 5);
      assert.equal(l.trust.settings.presence, 'clip');
      assert.equal(l.trust.summary.neurons, l.nNeurons);
      for (const n of j.neurons) {
        const t = n.trust;
        assert.ok(t, `unit ${n.unit} of ${n.layer} has trust`);
        if (n.dead) {
          assert.equal(t.badge, 'dead');
          continue;
        }
        assert.ok(t.stability >= 0 && t.stability <= 1);
        assert.ok(t.p > 0 && t.p <= 1, `p ${t.p}`);
        assert.ok(['high', 'medium', 'low'].includes(t.badge));
        assert.equal(t.scoredLabel, t.fitLabel, "dissect judges the fit half's label");
        assert.equal(t.fitLabelMatches, t.fitLabel === n.label);
        for (const v of Object.values(t.metrics) as (number | null)[])
          assert.ok(v === null || (v >= -1 && v <= 1), `metric ${v}`);
      }
    });

    it("score reproduces dissect's figures for the run's labels and scores a labels file beside them", async () => {
      const out = tempDir();
      const r = await cli([
        'score',
        ...['--results', run, '--labels', join(run, 'descriptions.csv'), '--out', out, '-q', ...TRUST],
      ]);
      assert.equal(r.code, 0, r.stderr);
      assert.match(r.stdout, /^conv1 \(presence: clip, clip\)$/m);
      assert.match(r.stdout, /^ {2}stability +[0-9.]+ \/ [0-9.]+ +[0-9.]+ \/ [0-9.]+$/m);
      assert.match(r.stdout, /^ {2}AUPRC /m);
      const s = JSON.parse(readFileSync(join(out, 'score.json'), 'utf8'));
      assert.deepEqual(
        s.methods.map((m: { method: string }) => m.method),
        ['CLIP-Dissect', join(run, 'descriptions.csv')],
      );
      const dis = neurons().neurons.filter((n: { layer: string }) => n.layer === 'layer4');
      const own = s.methods[0].layers.find((l: { layer: string }) => l.layer === 'layer4').neurons;
      for (const n of own) {
        const { label: _l, unit: _u, ...rest } = n;
        assert.deepEqual(rest, dis[n.unit].trust, `unit ${n.unit}`);
      }
      const given = s.methods[1].layers[1].neurons;
      for (const n of given)
        assert.equal(n.scoredLabel, dis[n.unit].label, 'a file label is judged as given');
    });

    it('uses ground-truth presence from --concept-labels and rejects a file of the wrong size', async () => {
      const rows = readFileSync(join(run, 'images.txt'), 'utf8').trim().split('\n').length;
      const csv = join(tempDir(), 'truth.csv');
      const body = Array.from({ length: rows }, (_, i) =>
        RESULTS_CONCEPTS.map((_, c) => ((i + c) % 3 === 0 ? 1 : 0)).join(','),
      );
      writeFileSync(csv, `${[RESULTS_CONCEPTS.join(','), ...body].join('\n')}\n`);
      const out = tempDir();
      const r = await cli([
        'score',
        '--results',
        run,
        '--layer',
        'conv1',
        '--concept-labels',
        csv,
        '--out',
        out,
        '-q',
        ...TRUST,
      ]);
      assert.equal(r.code, 0, r.stderr);
      assert.match(r.stdout, /conv1 \(presence: ground-truth\)/);
      const s = JSON.parse(readFileSync(join(out, 'score.json'), 'utf8'));
      assert.ok(
        s.methods[0].layers[0].neurons.every((n: { presence: string }) => n.presence === 'ground-truth'),
      );
      writeFileSync(csv, `${[RESULTS_CONCEPTS.join(','), ...body.slice(1)].join('\n')}\n`);
      const bad = await cli(['score', '--results', run, '--concept-labels', csv, '-q']);
      assert.equal(bad.code, 1);
      assert.match(bad.stderr, new RegExp(`${rows - 1} rows of labels but the probe set has ${rows} images`));
    });

    it('sanity: synthetic neurons from the run, recovery table and sanity.json; bad noise exits 1', async () => {
      const out = tempDir();
      const r = await cli([
        'sanity',
        '--results',
        run,
        '--neurons',
        '3',
        '--pairs',
        '10',
        '--noise',
        '0,1',
        '--similarity',
        'cos_similarity',
        '--out',
        out,
        '-q',
      ]);
      assert.equal(r.code, 0, r.stderr);
      assert.match(r.stdout, /^recovery, top-1 \/ top-5 \(single \| OR \| AND\)$/m);
      assert.match(r.stdout, /^ {2}cos_similarity +\d+%\/\d+%/m);
      assert.match(r.stdout, /^missing-label test, pass rate$/m);
      const s = JSON.parse(readFileSync(join(out, 'sanity.json'), 'utf8'));
      assert.equal(s.recovery.length, 2 * 3);
      assert.equal(s.tests.length, 2 * 2 * 6);
      const bad = await cli(['sanity', '--results', run, '--noise', '0,-1']);
      assert.equal(bad.code, 1);
      assert.match(bad.stderr, /--noise must be a number >= 0 but got '-1'/);
    });

    it('--json: score and sanity print their result as JSON, as written to score.json / sanity.json', async () => {
      const out = tempDir();
      const s = await cli([
        'score',
        '--results',
        run,
        '--layer',
        'conv1',
        '--out',
        out,
        '-q',
        '--json',
        ...TRUST,
      ]);
      assert.equal(s.code, 0, s.stderr);
      const printed = JSON.parse(s.stdout);
      const written = JSON.parse(readFileSync(join(out, 'score.json'), 'utf8'));
      assert.equal(printed.similarity, written.similarity);
      assert.deepEqual(
        printed.methods[0].layers[0].summary,
        JSON.parse(JSON.stringify(written.methods[0].layers[0].summary)),
      );
      const argv = ['sanity', '--results', run, '--neurons', '2', '--pairs', '4', '--noise', '0'];
      const y = await cli([...argv, '--similarity', 'cos_similarity', '--out', out, '-q', '--json']);
      assert.equal(y.code, 0, y.stderr);
      const sanity = JSON.parse(y.stdout);
      assert.deepEqual(sanity.recovery, JSON.parse(readFileSync(join(out, 'sanity.json'), 'utf8')).recovery);
    });

    it('asks for --layer when a NetDissect tally.csv meets several layers', async () => {
      const tally = join(tempDir(), 'tally.csv');
      writeFileSync(
        tally,
        `unit,category,label,score\n${Array.from({ length: 8 }, (_, i) => `${i + 1},object,dog,0.1`).join('\n')}\n`,
      );
      const r = await cli(['score', '--results', run, '--labels', tally, '-q']);
      assert.equal(r.code, 1);
      assert.match(
        r.stderr,
        /NetDissect tally\.csv, which names no layer: choose the layer it labels with --layer/,
      );
    });
  });
});
