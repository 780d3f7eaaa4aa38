import assert from 'node:assert/strict';
import { readFileSync, renameSync, writeFileSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { npyToMatrix, readNpy } from '../../src/io/npy.js';
import { createOnnxClipEncoder } from '../../src/models/onnx-clip-encoder.js';
import { similarityReference } from '../../src/numeric/similarity-reference.js';
import { composeCandidates } from '../../src/pipeline/compose.js';
import { cli, tempDir } from '../helpers/cli.js';
import { NEEDS_SHARED } from '../models/clip-helpers.js';
import { RESULTS_CONCEPTS, runTinyDissection, tinyDissectArgs } from '../pipeline/helpers.js';

const CONCEPTS = RESULTS_CONCEPTS;

describe('composeCandidates', () => {
  it('ordered pairs of distinct singles in permutation order, then the singles', () => {
    assert.deepEqual(
      composeCandidates(['a', 'b', 'c']).map((c) => `${c.kind}:${c.concept}`),
      [
        'pair:a b',
        'pair:a c',
        'pair:b a',
        'pair:b c',
        'pair:c a',
        'pair:c b',
        'single:a',
        'single:b',
        'single:c',
      ],
    );
    assert.equal(composeCandidates(Array.from({ length: 100 }, (_, i) => `w${i}`)).length, 10000);
  });
});

describe('clip-dissect compose', () => {
  it('is listed in the main help; missing flags exit 2, bad units 1', async () => {
    assert.match((await cli(['--help'])).stdout, /compose {6}explain chosen neurons/);
    const r = await cli(['compose', '--results', tempDir()]);
    assert.equal(r.code, 2);
    assert.match(r.stderr, /missing --layer, --units/);
    const u = await cli(['compose', '--results', tempDir(), '--layer', 'x', '--units', '3,a']);
    assert.equal(u.code, 1);
    assert.match(u.stderr, /--units must be an integer >= 0 but got 'a'/);
  });

  describe('on a tiny dissection', { skip: NEEDS_SHARED }, () => {
    let clipDir = '';
    let cleanup: () => Promise<void> = async () => undefined;
    const run = tempDir('clip-dissect-run-');
    before(async () => {
      ({ clipDir, cleanup } = await runTinyDissection(run, CONCEPTS, ['--template', 'a photo of {}']));
    });
    after(() => cleanup());

    it('--pool-size 5: 25 candidates scored over the whole layer, as the reference similarity scores them', async () => {
      const out = tempDir('clip-dissect-compose-');
      const r = await cli([
        'compose',
        ...['--results', run, '--layer', 'layer4', '--units', '0,5,0', '--pool-size', '5', '--show', '25'],
        ...['--out', out, '--threads', '1', '--quiet'],
      ]);
      assert.equal(r.code, 0, r.stderr);
      assert.match(
        r.stdout,
        /^soft_wpmi over layer layer4: 2 units, 5 single concepts each \(25 candidates\)/,
      );
      assert.match(r.stdout, /^layer4 unit 0: best singles /m);
      const json = JSON.parse(readFileSync(join(out, 'compose.json'), 'utf8'));
      assert.equal(json.template, 'a photo of {}');
      // --json prints the same result; --top, the old spelling of --show, warns and works
      const j = await cli([
        'compose',
        ...['--results', run, '--layer', 'layer4', '--units', '0', '--pool-size', '5', '--top', '3'],
        ...['--out', tempDir(), '--threads', '1', '--quiet', '--json'],
      ]);
      assert.equal(j.code, 0, j.stderr);
      assert.equal(j.stderr, 'warning: compose --top is deprecated; use --show\n');
      const printed = JSON.parse(j.stdout);
      assert.equal(printed.units[0].top.length, 3);
      assert.deepEqual(printed.units[0].top, json.units[0].top.slice(0, 3));
      assert.deepEqual(
        json.units.map((u: { unit: number }) => u.unit),
        [0, 5],
      );

      const load = async (f: string) => npyToMatrix(await readNpy(join(run, f)), f);
      const I = await load('image_features.npy');
      const A = await load('layer4.npy');
      const T = await load('text_features.npy');
      const args = JSON.parse(readFileSync(join(run, 'args.json'), 'utf8'));
      const enc = await createOnnxClipEncoder(clipDir, { threads: 1 });
      try {
        // the singles: the unit's top 5 by the reference on the run's own features
        const S0 = similarityReference(
          'soft_wpmi',
          { imageFeatures: I, textFeatures: T, activations: A },
          args.options,
        );
        for (const u of json.units as {
          unit: number;
          candidates: number;
          original: { concept: string; score: number }[];
          top: { concept: string; kind: string; score: number }[];
        }[]) {
          assert.equal(u.candidates, 25);
          assert.equal(u.top.length, 25);
          assert.equal(u.top.filter((c) => c.kind === 'pair').length, 20);
          assert.equal(u.top.filter((c) => c.kind === 'single').length, 5);
          const row0 = Array.from(S0.data.subarray(u.unit * S0.cols, (u.unit + 1) * S0.cols));
          const singles = row0
            .map((s, i) => [s, i])
            .sort((a, b) => b[0] - a[0] || a[1] - b[1])
            .slice(0, 5)
            .map(([, i]) => CONCEPTS[i]);
          assert.deepEqual(
            u.top
              .filter((c) => c.kind === 'single')
              .map((c) => c.concept)
              .sort(),
            [...singles].sort(),
          );
          // every candidate's score, recomputed: CLIP text features of the templated candidates, then the
          // reference soft_wpmi over all 64 neurons with the candidates as the concept set
          const cands = composeCandidates(singles);
          const e = await enc.encodeText(cands.map((c) => `a photo of ${c.concept}`));
          const S = similarityReference(
            'soft_wpmi',
            { imageFeatures: I, textFeatures: { rows: e.rows, cols: e.cols, data: e.data }, activations: A },
            args.options,
          );
          const want = new Map(cands.map((c, i) => [c.concept, S.data[u.unit * S.cols + i]]));
          for (const c of u.top) {
            const w = want.get(c.concept);
            assert.ok(w !== undefined, c.concept);
            assert.ok(
              Math.abs(c.score - w) <= 2e-4 * Math.max(1, Math.abs(w)),
              `${c.concept}: ${c.score} vs ${w}`,
            );
          }
          for (let i = 1; i < u.top.length; i++) assert.ok(u.top[i - 1].score >= u.top[i].score, 'sorted');
        }
      } finally {
        await enc.release();
      }
    });

    it('a relative --concepts path is recorded absolute, so compose works from another folder', async () => {
      const home = process.cwd();
      const dir = tempDir('clip-dissect-rel-');
      writeFileSync(join(dir, 'concepts.txt'), CONCEPTS.join('\n'));
      const rel = tempDir('clip-dissect-run-rel-');
      process.chdir(dir);
      let r: Awaited<ReturnType<typeof cli>>;
      try {
        r = await cli(
          tinyDissectArgs({ layers: 'layer4', concepts: 'concepts.txt', clip: clipDir, out: rel }),
        );
      } finally {
        process.chdir(home);
      }
      assert.equal(r.code, 0, r.stderr);
      const args = JSON.parse(readFileSync(join(rel, 'args.json'), 'utf8'));
      assert.equal(args.inputs.concepts.source, resolve(dir, 'concepts.txt'));
      assert.equal(args.inputs.concepts.given, 'concepts.txt');
      assert.equal(args.cwd, resolve(dir));
      const compose = ['compose', '--results', rel, '--layer', 'layer4', '--units', '3', '--pool-size', '3'];
      const ok = await cli([...compose, '--out', tempDir(), '--quiet']);
      assert.equal(ok.code, 0, ok.stderr);

      // a relative path as older versions wrote it: resolved against the recorded cwd
      args.inputs.concepts.source = 'concepts.txt';
      writeFileSync(join(rel, 'args.json'), JSON.stringify(args));
      const old = await cli([...compose, '--out', tempDir(), '--quiet']);
      assert.equal(old.code, 0, old.stderr);

      // the file moved away: the error names it and --concepts overrides it
      const moved = join(tempDir(), 'moved.txt');
      renameSync(join(dir, 'concepts.txt'), moved);
      const lost = await cli([...compose, '--out', tempDir(), '--quiet']);
      assert.equal(lost.code, 1);
      assert.ok(
        lost.stderr.includes(
          `the run's concept file '${resolve(dir, 'concepts.txt')}' (recorded in ${join(rel, 'args.json')}) cannot be read: it does not exist`,
        ),
        lost.stderr,
      );
      assert.match(lost.stderr, /give the set with --concepts/);
      const found = await cli([...compose, '--concepts', moved, '--out', tempDir(), '--quiet']);
      assert.equal(found.code, 0, found.stderr);
      const other = join(tempDir(), 'other.txt');
      writeFileSync(other, CONCEPTS.slice(1).join('\n'));
      const wrong = await cli([...compose, '--concepts', other, '--out', tempDir(), '--quiet']);
      assert.equal(wrong.code, 1);
      assert.match(wrong.stderr, /the concept set '.*other\.txt' is not the run's/);
    });

    it('bad inputs exit 1 with the reason', async () => {
      const a = await cli(['compose', '--results', run, '--layer', 'layer4', '--units', '64']);
      assert.equal(a.code, 1);
      assert.match(a.stderr, /unit 64 is not a neuron of layer 'layer4', which has units 0\.\.63/);
      const b = await cli(['compose', '--results', run, '--layer', 'fc', '--units', '1']);
      assert.equal(b.code, 1);
      assert.match(b.stderr, /'layer' 'fc' was not dissected in .*; its layers are 'layer4'/);
      const c = await cli([
        'compose',
        '--results',
        run,
        '--layer',
        'layer4',
        '--units',
        '1',
        '--pool-size',
        '13',
      ]);
      assert.equal(c.code, 1);
      assert.match(c.stderr, /'poolSize' 13 is larger than the run's concept set \(12 concepts\)/);
    });
  });
});
