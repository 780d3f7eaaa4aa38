import assert from 'node:assert/strict';
import { copyFileSync, existsSync, readdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, it } from 'node:test';
import { cli, tempDir } from '../helpers/cli.js';
import { NEEDS_SHARED, tinyClipForSuite } from '../models/clip-helpers.js';
import { FOLDED, MODELS, PREPROCESS_JSON, probeFolder } from '../pipeline/helpers.js';

const CONCEPTS = ['dog', 'cat', 'bird', 'car', 'tree', 'water', 'sky', 'grass', 'road', 'person'];

describe('clip-dissect dissect', () => {
  it('is listed in the main help and has its own', async () => {
    const main = await cli(['--help']);
    assert.match(main.stdout, /dissect {6}label every neuron/);
    const help = await cli(['help', 'dissect']);
    assert.equal(help.code, 0);
    assert.match(help.stdout, /--concepts FILE\|NAME/);
    assert.match(help.stdout, /--offline/);
    assert.match(
      help.stdout,
      /--clip-preprocess openai\|hf\n.*CLIP's crop: openai \(default\) as clip\.load/,
    );
  });

  it('missing flags exit 2, bad values 1', async () => {
    const r = await cli(['dissect', '--target', FOLDED]);
    assert.equal(r.code, 2);
    assert.match(r.stderr, /missing --out \(see/);
    const bad = await cli([
      'dissect',
      ...['--target', FOLDED, '--layers', 'conv1', '--probe', 'x', '--concepts', 'y', '--out', 'z'],
      '--pool',
      'median',
    ]);
    assert.equal(bad.code, 1);
    assert.match(bad.stderr, /--pool must be/);
    const tpl = await cli([
      'dissect',
      ...['--target', FOLDED, '--layers', 'conv1', '--probe', 'x', '--concepts', 'y', '--out', 'z'],
      '--template',
      'a photo',
    ]);
    assert.equal(tpl.code, 1);
    assert.match(tpl.stderr, /--template must contain \{\}/);
    const pre = await cli([
      'dissect',
      ...['--target', FOLDED, '--layers', 'conv1', '--probe', 'x', '--concepts', 'y', '--out', 'z'],
      ...['--clip-preprocess', 'torchvision'],
    ]);
    assert.equal(pre.code, 1);
    assert.match(pre.stderr, /--clip-preprocess must be 'openai' or 'hf' but got 'torchvision'/);
  });

  it('--out or --cache-dir inside the probe folder: exit 1 before any model is opened, nothing written', async () => {
    const probe = probeFolder();
    const base = ['dissect', '--target', FOLDED, '--layers', 'conv1', '--probe', probe, '--concepts', 'y'];
    const r = await cli([...base, '--clip', join(tempDir(), 'no-clip'), '--out', join(probe, 'results')]);
    assert.equal(r.code, 1);
    assert.match(
      r.stderr,
      /the output folder \('out' \/ --out\) '.*results' is inside the probe folder '.*': a later run would read what this one writes there as probe images; choose a folder outside the probe folder/,
    );
    const c = await cli([...base, '--out', tempDir(), '--cache-dir', join(probe, 'sub', 'cache')]);
    assert.equal(c.code, 1);
    assert.match(
      c.stderr,
      /the cache folder \('cacheDir' \/ --cache-dir\) '.*cache' is inside the probe folder/,
    );
    assert.ok(!existsSync(join(probe, 'results')) && !existsSync(join(probe, 'sub')), 'nothing written');
  });

  describe('with the tiny CLIP', { skip: NEEDS_SHARED }, () => {
    const clip = tinyClipForSuite();
    const probe = probeFolder();
    const concepts = join(tempDir(), 'concepts.txt');
    writeFileSync(concepts, CONCEPTS.join('\n'));
    const cacheDir = tempDir('clip-dissect-cache-');
    const args = (out: string, extra: string[] = []) => [
      'dissect',
      ...['--target', FOLDED, '--layers', 'conv1,layer4', '--probe', probe, '--concepts', concepts],
      ...['--clip', clip.dir(), '--preprocess', PREPROCESS_JSON, '--top-k', '5', '--batch-size', '8'],
      ...['--threads', '1', '--cache-dir', cacheDir, '--out', out],
      ...extra,
    ];

    it('a target whose layer outputs NaN: exit 1 naming the layer, the probe image, the column and the count; no results', async () => {
      const out = tempDir('clip-dissect-out-');
      const nan = join(MODELS, 'nan_tiny_ts.onnx');
      // its own cache: the tests below count the chunks they compute in the shared one
      const swap: Record<string, string> = {
        [FOLDED]: nan,
        'conv1,layer4': 'conv1,bad',
        [cacheDir]: tempDir(),
      };
      const r = await cli(args(out, ['--quiet']).map((a) => swap[a] ?? a));
      assert.equal(r.code, 1);
      assert.match(
        r.stderr,
        /activations of layer 'bad' computed by .*nan_tiny_ts\.onnx: 88 of 22×4 values are not finite \(NaN or ±Infinity\); the first, NaN, is at row 0 \(probe image .*\.(jpg|png|jpeg)\), column 0 \(0-based\)/,
      );
      assert.ok(!existsSync(join(out, 'neurons.json')), 'no results written');
    });

    it('fewer than 8 probe images: trust figures skipped with a warning by default, an error when asked for', async () => {
      const small = tempDir('clip-dissect-probe-');
      for (const f of readdirSync(probe).slice(0, 6)) copyFileSync(join(probe, f), join(small, f));
      // its own cache too: the test below counts the chunks it computes in the shared one
      const ownCache = tempDir();
      const swap = (a: string) => (a === probe ? small : a === cacheDir ? ownCache : a);
      const out = tempDir('clip-dissect-out-');
      const r = await cli(args(out, ['--no-report']).map(swap));
      assert.equal(r.code, 0, r.stderr);
      assert.match(
        r.stderr,
        /warning: the trust figures need at least 8 probe images \(a fit and a held-out half\) but the probe set has 6: trust figures skipped/,
      );
      const neurons = JSON.parse(readFileSync(join(out, 'neurons.json'), 'utf8'));
      assert.ok(
        JSON.stringify(neurons).includes('"label"') && !JSON.stringify(neurons).includes('"stability"'),
      );
      const asked = tempDir('clip-dissect-out-');
      const e = await cli(args(asked, ['--bootstraps', '5']).map(swap));
      assert.equal(e.code, 1);
      assert.match(e.stderr, /the trust figures need at least 8 probe images .* has 6$/m);
      assert.doesNotMatch(e.stderr, /text features:/, 'refused before any feature is computed');
    });

    it('labels both layers: progress on stderr, a summary on stdout; a rerun is served from the cache', async () => {
      const out = tempDir('clip-dissect-out-');
      const r = await cli(args(out));
      assert.equal(r.code, 0, r.stderr);
      for (const stage of ['text features', 'images', 'similarity conv1', 'similarity layer4'])
        assert.match(r.stderr, new RegExp(`^${stage}: .* done in`, 'm'), stage);
      assert.match(r.stdout, /^soft_wpmi: 2 layers × 10 concepts over 22 images/m);
      assert.match(r.stdout, /computed 1\/1 text chunk and 1\/1 image chunk/);
      assert.match(r.stdout, /^conv1: 8 neurons.*most frequent labels: /m);
      assert.match(r.stdout, /^layer4: 64 neurons/m);
      assert.match(r.stdout, /^ {2}unit +\d+ {2}\S/m);
      for (const f of ['descriptions.csv', 'neurons.json', 'conv1.npy', 'layer4.npy', 'args.json'])
        assert.ok(existsSync(join(out, f)), f);
      assert.equal(readFileSync(join(out, 'descriptions.csv'), 'utf8').trim().split('\n').length, 1 + 8 + 64);

      const out2 = tempDir('clip-dissect-out-');
      const again = await cli(args(out2, ['--quiet']));
      assert.equal(again.code, 0, again.stderr);
      assert.equal(again.stderr.includes('done in'), false, '--quiet');
      assert.match(again.stdout, /computed 0\/1 text chunk and 0\/1 image chunk/);
      assert.equal(
        readFileSync(join(out2, 'descriptions.csv'), 'utf8'),
        readFileSync(join(out, 'descriptions.csv'), 'utf8'),
      );
    });

    it("--clip-preprocess hf: transformers' crop, other CLIP image features (recomputed), recorded in args.json", async () => {
      const out = tempDir('clip-dissect-out-');
      const r = await cli(args(out, ['--quiet', '--clip-preprocess', 'hf']));
      assert.equal(r.code, 0, r.stderr);
      assert.match(r.stdout, /computed \d\/1 text chunk and 1\/1 image chunk/);
      const clip = JSON.parse(readFileSync(join(out, 'args.json'), 'utf8')).inputs.clip;
      assert.equal(clip.preprocess, 'hf');
      assert.equal(clip.preprocessing.cropRounding, 'floor');
    });

    it('--offline with an uncached hub id exits 1 and names the missing file', async () => {
      const r = await cli([
        ...args(tempDir()).map((a) => (a === clip.dir() ? 'nobody/uncached-clip' : a)),
        '--offline',
        '--cache-dir',
        tempDir(),
      ]);
      assert.equal(r.code, 1);
      assert.match(
        r.stderr,
        /^clip-dissect: error: model 'nobody\/uncached-clip': config\.json is not in the cache/m,
      );
      assert.match(r.stderr, /offline/);
    });

    it('an unknown layer exits 1 naming it', async () => {
      const r = await cli(args(tempDir()).map((a) => (a === 'conv1,layer4' ? 'conv1,layer9' : a)));
      assert.equal(r.code, 1);
      assert.match(r.stderr, /unknown layer 'layer9'/);
    });
  });
});
