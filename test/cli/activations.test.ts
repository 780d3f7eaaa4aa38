import assert from 'node:assert/strict';
import { existsSync, readFileSync, symlinkSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, it } from 'node:test';
import { npyToMatrix, readNpy } from '../../src/io/npy.js';
import { layerFileNames, RESULTS_SCHEMA_VERSION, readActivationsJson } from '../../src/results/index.js';
import { cli, tempDir } from '../helpers/cli.js';
import { makeFifo } from '../helpers/data.js';
import { saveWithExternalData } from '../helpers/external-data.js';
import { assertClose } from '../models/helpers.js';
import {
  FOLDED,
  GOLDEN_IMAGES,
  golden,
  LAYERS,
  NOFOLD,
  PREPROCESS_JSON,
  probeFolder,
} from '../pipeline/helpers.js';

const readJson = (p: string) => JSON.parse(readFileSync(p, 'utf8'));

/** `activations` of layer2 of the unfolded fixture network over `probe`, with the fixture preprocessing. */
const layer2Args = (probe: string) => [
  'activations',
  '--target',
  NOFOLD,
  '--layers',
  'layer2',
  '--probe',
  probe,
  '--preprocess',
  PREPROCESS_JSON,
];

describe('clip-dissect activations', () => {
  const probe = probeFolder();

  for (const pool of ['avg', 'max'] as const) {
    it(`writes numpy-readable N×K files equal to the PyTorch hooks (--pool ${pool})`, async () => {
      const out = tempDir('clip-dissect-out-');
      const r = await cli([
        'activations',
        '--target',
        NOFOLD,
        '--layers',
        LAYERS.join(','),
        '--probe',
        probe,
        '--preprocess',
        PREPROCESS_JSON,
        '--pool',
        pool,
        '--batch-size',
        '8',
        '--out',
        out,
      ]);
      assert.equal(r.code, 0, r.stderr);
      for (const name of LAYERS) {
        const arr = await readNpy(join(out, `${name}.npy`));
        assert.equal(arr.dtype, 'float32');
        assertClose(npyToMatrix(arr, name), await golden(name, pool), `${name} ${pool}`);
      }
      assert.deepEqual(readFileSync(join(out, 'images.txt'), 'utf8').split('\n'), [
        ...GOLDEN_IMAGES.map((n) => join(probe, n)),
        '',
      ]);
      const j = readJson(join(out, 'activations.json'));
      assert.equal(j.command, 'activations');
      // the results contract reads it back: versioned, the layers' files found
      const rec = await readActivationsJson(out);
      assert.equal(rec.schemaVersion, RESULTS_SCHEMA_VERSION);
      assert.deepEqual(
        rec.layers.map((l) => l.file),
        LAYERS.map((n) => `${n}.npy`),
      );
      if (pool === 'avg') {
        // --json: the table as JSON
        const again = await cli([
          'activations',
          ...['--target', NOFOLD, '--layers', LAYERS.join(','), '--probe', probe],
          ...['--preprocess', PREPROCESS_JSON, '--out', tempDir('clip-dissect-out-'), '-q', '--json'],
        ]);
        assert.equal(again.code, 0, again.stderr);
        const p = JSON.parse(again.stdout);
        assert.equal(p.pool, 'avg');
        assert.equal(p.images, 22);
        assert.deepEqual(
          p.layers.map((l: { layer: string }) => l.layer),
          LAYERS,
        );
      }
      assert.equal(j.pool, pool);
      assert.deepEqual(
        j.layers.map((l: { name: string; file: string; shape: number[] }) => [l.name, l.file, l.shape]),
        [
          ['conv1', 'conv1.npy', [22, 8]],
          ['layer1', 'layer1.npy', [22, 8]],
          ['layer2', 'layer2.npy', [22, 16]],
          ['layer3', 'layer3.npy', [22, 32]],
          ['layer4', 'layer4.npy', [22, 64]],
          ['fc', 'fc.npy', [22, 10]],
        ],
      );
      assert.equal(j.layers[4].tensor, '/layer4/layer4.1/relu_1/Relu_output_0');
      assert.deepEqual(j.layers[4].outputShape, ['batch', 64, 2, 2]);
      assert.equal(j.preprocessing.source, PREPROCESS_JSON);
      assert.equal(j.preprocessing.resize, 72);
      assert.equal(j.preprocessing.crop, 64);
      assert.equal(j.target.exporter, 'torchscript');
      assert.deepEqual(j.target.inputShape, [3, 64, 64]);
      assert.equal(j.probe.images, 22);
      assert.equal(j.probe.rows, 22);
      assert.equal(j.batchSize, 8);
      assert.deepEqual(j.skipped, []);
      for (const k of ['version', 'node', 'onnxruntime', 'sharp', 'date'])
        assert.equal(typeof j[k], 'string', k);
      for (const k of ['inference', 'total', 'write']) assert.equal(typeof j.timings[k], 'number', k);
      // the summary on stdout
      assert.match(
        r.stdout,
        new RegExp(
          `^activations \\(${pool} pooling\\) of 6 layers over 22 images in [\\d.]+s \\([\\d.]+ images/s\\)$`,
          'm',
        ),
      );
      assert.match(r.stdout, /^ {2}layer4 +64$/m);
      assert.match(r.stdout, /^wrote:\n {2}.*conv1\.npy\n/m);
      assert.ok(r.stdout.includes(join(out, 'activations.json')));
      // progress on stderr (not a TTY: one line when the stage ends)
      assert.match(r.stderr, /^activations: 22\/22 images done in /m);
    });
  }

  it('prints the model warnings on stderr and records them (folded BatchNorm)', async () => {
    const out = tempDir('clip-dissect-out-');
    const r = await cli([
      'activations',
      '--target',
      FOLDED,
      '--layers',
      'conv1',
      '--probe',
      probe,
      '--preprocess',
      PREPROCESS_JSON,
      '-q',
      '--out',
      out,
    ]);
    assert.equal(r.code, 0, r.stderr);
    assert.match(r.stderr, /^warning: conv1: the exporter folded the BatchNorm/m);
    assert.doesNotMatch(r.stderr, /images done/); // -q
    const j = readJson(join(out, 'activations.json'));
    assert.ok(j.warnings.some((w: string) => /folded the BatchNorm/.test(w)));
    assertClose(
      npyToMatrix(await readNpy(join(out, 'conv1.npy')), 'conv1'),
      await golden('bn1', 'avg'),
      'conv1',
    );
  });

  it('a corrupt image: exit 1 naming the file; --skip-bad-images leaves it out and lists it', async () => {
    const bad = probeFolder({ 'm_truncated.jpg': 'truncated.jpg' });
    const args = layer2Args(bad);
    const out = tempDir('clip-dissect-out-');
    const r = await cli([...args, '--out', out]);
    assert.equal(r.code, 1);
    assert.match(r.stderr, /clip-dissect: error: .*m_truncated\.jpg: corrupt or truncated image/);
    const r2 = await cli([...args, '--skip-bad-images', '--out', out]);
    assert.equal(r2.code, 0, r2.stderr);
    assert.match(r2.stdout, /over 22 images in .*; 1 unreadable image skipped/);
    assert.match(r2.stdout, /^skipped:\n {2}.*m_truncated\.jpg: corrupt or truncated image/m);
    const j = readJson(join(out, 'activations.json'));
    assert.deepEqual(
      j.skipped.map((s: { index: number; source: string }) => [s.index, s.source]),
      [[10, join(bad, 'm_truncated.jpg')]],
    );
    assert.equal(j.probe.images, 23);
    assert.equal(j.probe.rows, 22);
    const lines = readFileSync(join(out, 'images.txt'), 'utf8').trim().split('\n');
    assert.equal(lines.length, 22);
    assert.ok(!lines.some((l) => l.includes('truncated')));
    assertClose(
      npyToMatrix(await readNpy(join(out, 'layer2.npy')), 'layer2'),
      await golden('layer2', 'avg'),
      'layer2',
    );
  });

  it('a FIFO named like an image in the probe folder: exit 1 naming it; --skip-bad-images skips it (never waits on it)', {
    timeout: 60_000,
  }, async () => {
    const probe = probeFolder();
    makeFifo(join(probe, 'n_pipe.jpg'));
    const args = layer2Args(probe);
    const out = tempDir('clip-dissect-out-');
    const r = await cli([...args, '--out', out]);
    assert.equal(r.code, 1);
    assert.match(
      r.stderr,
      /n_pipe\.jpg: cannot read image file: .*n_pipe\.jpg is a FIFO \(named pipe\), not a regular file/,
    );
    const r2 = await cli([...args, '--skip-bad-images', '--out', out]);
    assert.equal(r2.code, 0, r2.stderr);
    assert.match(r2.stdout, /1 unreadable image skipped/);
    assert.equal(readFileSync(join(out, 'images.txt'), 'utf8').trim().split('\n').length, 22);
  });

  it('a FIFO as the target model: exit 1 naming it, never opened', { timeout: 20_000 }, async () => {
    const fifo = makeFifo(join(tempDir(), 'model.onnx'));
    const r = await cli([...layer2Args(probeFolder()), '--target', fifo, '--out', tempDir()]);
    assert.equal(r.code, 1);
    assert.match(r.stderr, /model\.onnx is a FIFO \(named pipe\), not a regular file/);
  });

  it('--out or --cache-dir inside the probe folder (links resolved): exit 1 before any work, nothing written', async () => {
    const probe = probeFolder();
    const link = join(tempDir(), 'probe-link');
    symlinkSync(probe, link);
    const args = layer2Args(probe);
    for (const [flags, re] of [
      [
        ['--out', join(probe, 'acts')],
        /the output folder \('out' \/ --out\) '.*acts' is inside the probe folder '.*': a later run would read what this one writes there as probe images/,
      ],
      [['--out', probe], /the output folder .* is inside the probe folder/],
      [
        ['--out', join(link, 'x', 'y')],
        /the output folder \('out' \/ --out\) '.*probe-link\/x\/y' is inside the probe folder/,
      ],
      [
        ['--out', tempDir(), '--cache-dir', join(probe, 'cache')],
        /the cache folder \('cacheDir' \/ --cache-dir\) '.*cache' is inside the probe folder/,
      ],
    ] as const) {
      const r = await cli([...args, ...flags]);
      assert.equal(r.code, 1, flags.join(' '));
      assert.match(r.stderr, re);
    }
    assert.ok(!existsSync(join(probe, 'acts')) && !existsSync(join(probe, 'images.txt')), 'nothing written');
  });

  it('an empty probe folder: exit 1', async () => {
    const empty = tempDir('clip-dissect-probe-');
    const r = await cli([
      'activations',
      '--target',
      NOFOLD,
      '--layers',
      'fc',
      '--probe',
      empty,
      '--preprocess',
      PREPROCESS_JSON,
      '--out',
      tempDir(),
    ]);
    assert.equal(r.code, 1);
    assert.match(r.stderr, /clip-dissect: error: probe source .*: no image files in /);
  });

  it('an unknown layer: exit 1 with the closest names', async () => {
    const r = await cli([
      'activations',
      '--target',
      NOFOLD,
      '--layers',
      'conv1,layer_4',
      '--probe',
      probe,
      '--preprocess',
      PREPROCESS_JSON,
      '--out',
      tempDir(),
    ]);
    assert.equal(r.code, 1);
    assert.match(r.stderr, /clip-dissect: error: unknown layer 'layer_4'; closest layers first: 'layer4', /);
  });

  it('--resize/--crop/--interpolation/--mean/--std override the default preprocessing', async () => {
    const out = tempDir('clip-dissect-out-');
    // Resize(72) + CenterCrop(64), ImageNet mean/std: the preprocessing of the golden values
    const r = await cli([
      'activations',
      '--target',
      NOFOLD,
      '--layers',
      'layer4',
      '--probe',
      probe,
      '--resize',
      '72',
      '--crop',
      '64',
      '--interpolation',
      'bilinear',
      '--mean',
      '0.485,0.456,0.406',
      '--out',
      out,
      '-q',
    ]);
    assert.equal(r.code, 0, r.stderr);
    assertClose(
      npyToMatrix(await readNpy(join(out, 'layer4.npy')), 'layer4'),
      await golden('layer4', 'avg'),
      'layer4',
    );
    const bad = await cli([
      'activations',
      '--target',
      NOFOLD,
      '--layers',
      'fc',
      '--probe',
      probe,
      '--crop',
      '64x',
      '--out',
      out,
    ]);
    assert.equal(bad.code, 1);
    assert.match(bad.stderr, /--crop must be a size such as 224 or 224x224 \(height x width\) but got '64x'/);
    const bad2 = await cli([
      'activations',
      '--target',
      NOFOLD,
      '--layers',
      'fc',
      '--probe',
      probe,
      '--std',
      '1,2',
      '--out',
      out,
    ]);
    assert.equal(bad2.code, 1);
    assert.match(bad2.stderr, /--std must be three numbers R,G,B/);
  });

  it('--preprocess: a bad file or a crop that does not fit the model is exit 1 naming it', async () => {
    const dir = tempDir('clip-dissect-pre-');
    const bad = join(dir, 'bad.json');
    writeFileSync(bad, '{"resize": 72, "crop": 64, "interp": "bilinear"}');
    const big = join(dir, 'big.json');
    writeFileSync(big, '{"resize": 256, "crop": 224}');
    const base = ['activations', '--target', NOFOLD, '--layers', 'fc', '--probe', probe, '--out', tempDir()];
    const r = await cli([...base, '--preprocess', bad]);
    assert.equal(r.code, 1);
    assert.match(r.stderr, /error: .*bad\.json: unknown key 'interp'/);
    const r2 = await cli([...base, '--preprocess', big]);
    assert.equal(r2.code, 1);
    assert.match(r2.stderr, /takes 64×64 images but the preprocessing in .*big\.json crops to 224×224/);
    const r3 = await cli(base);
    assert.equal(r3.code, 1);
    assert.match(
      r3.stderr,
      /default preprocessing \(torchvision ImageNet.*crops to 224×224; give a preprocessing whose crop is 64×64/,
    );
  });

  it('a raw tensor name becomes a file name without slashes', async () => {
    const out = tempDir('clip-dissect-out-');
    const tensor = '/layer4/layer4.1/relu_1/Relu_output_0';
    const r = await cli([
      'activations',
      '--target',
      NOFOLD,
      '--layers',
      tensor,
      '--probe',
      probe,
      '--preprocess',
      PREPROCESS_JSON,
      '--workers',
      '0',
      '--out',
      out,
    ]);
    assert.equal(r.code, 0, r.stderr);
    const file = '_layer4_layer4.1_relu_1_Relu_output_0.npy';
    assertClose(npyToMatrix(await readNpy(join(out, file)), tensor), await golden('layer4', 'avg'), tensor);
    assert.equal(readJson(join(out, 'activations.json')).layers[0].file, file);
    assert.equal(readJson(join(out, 'activations.json')).workers, 0);
  });

  it("a target whose external data location is written './x.bin' works; one outside its folder exits 1, named", async () => {
    const model = saveWithExternalData(NOFOLD, tempDir(), 'model.onnx', './x.bin').model;
    const args = (target: string, out: string) => [
      ...['activations', '--target', target, '--layers', 'layer4', '--probe', probe],
      ...['--preprocess', PREPROCESS_JSON, '--workers', '0', '--out', out],
    ];
    const out = tempDir('clip-dissect-out-');
    const r = await cli(args(model, out));
    assert.equal(r.code, 0, r.stderr);
    assertClose(
      npyToMatrix(await readNpy(join(out, 'layer4.npy')), 'layer4'),
      await golden('layer4', 'avg'),
      'layer4',
    );
    const outside = saveWithExternalData(NOFOLD, join(tempDir(), 'm'), 'model.onnx', '../w.bin').model;
    const bad = await cli(args(outside, tempDir()));
    assert.equal(bad.code, 1);
    assert.match(
      bad.stderr,
      /has external data location '\.\.\/w\.bin'; it must be a path relative to the model's folder/,
    );
    assert.doesNotMatch(bad.stderr, /\n\s+at /, 'no stack trace');
  });

  it('usage errors: missing and unknown flags exit 2, bad choices and numbers exit 1', async () => {
    const r = await cli(['activations', '--target', NOFOLD, '--layers', 'fc']);
    assert.equal(r.code, 2);
    assert.match(r.stderr, /activations: missing --probe, --out/);
    const base = ['activations', '--target', NOFOLD, '--layers', 'fc', '--probe', probe, '--out', tempDir()];
    const cases: [string[], RegExp][] = [
      [['--pool', 'mean'], /--pool must be 'avg' or 'max' but got 'mean'/],
      [['--device', 'tpu'], /--device must be 'cpu' or 'cuda'/],
      [['--token', 'first'], /--token must be 'cls' or 'mean'/],
      [['--batch-size', '0'], /--batch-size must be an integer >= 1 but got '0'/],
      [['--threads', 'two'], /--threads must be an integer >= 1/],
      [['--workers=-1'], /--workers must be an integer >= 0/],
      [['--frobnicate'], /Unknown option '--frobnicate'/],
    ];
    for (const [extra, re] of cases) {
      const x = await cli([...base, ...extra]);
      assert.equal(x.code, extra[0] === '--frobnicate' ? 2 : 1, extra.join(' '));
      assert.match(x.stderr, re);
    }
  });

  it('help', async () => {
    const r = await cli(['help', 'activations']);
    assert.equal(r.code, 0);
    assert.match(r.stdout, /^Usage: clip-dissect activations --target MODEL/);
    assert.match(r.stdout, /--skip-bad-images/);
    const r2 = await cli(['activations', '--help']);
    assert.equal(r2.stdout, r.stdout);
    const main = await cli(['--help']);
    assert.match(main.stdout, /^ {2}activations +run a network over probe images/m);
  });
});

describe('layerFileNames', () => {
  it('replaces unsafe characters and keeps names apart', () => {
    assert.deepEqual(
      [...layerFileNames(['layer4', '/a/b:c', '_a_b_c', 'images', '..', 'Layer4']).entries()],
      [
        ['layer4', 'layer4.npy'],
        ['/a/b:c', '_a_b_c.npy'],
        ['_a_b_c', '_a_b_c_2.npy'],
        ['images', 'images_2.npy'],
        ['..', '_.npy'],
        ['Layer4', 'Layer4_2.npy'],
      ],
    );
  });
});
