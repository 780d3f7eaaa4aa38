import assert from 'node:assert/strict';
import { copyFileSync, mkdirSync, readdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { fileURLToPath } from 'node:url';
import { BUILTIN_CONCEPT_SETS } from '../../src/data/builtin-concepts.js';
import { DEFAULT_CLIP_MODEL } from '../../src/models/onnx-clip-encoder.js';
import { dissect } from '../../src/pipeline/dissect.js';
import { cli, tempDir } from '../helpers/cli.js';
import { HF_FIXTURES, type LoopbackHub, startHub, withEnv } from '../helpers/hub.js';
import { assembleModelDir, NEEDS_SHARED } from '../models/clip-helpers.js';
import { probeFolder } from '../pipeline/helpers.js';

const SHARED_20K = fileURLToPath(new URL('../../../../shared/data/concepts/20k.txt', import.meta.url));
const MPNET = fileURLToPath(new URL('../../../test/fixtures/mpnet/model', import.meta.url));
const CLASSES = ['tench', 'goldfish', 'great white shark', 'tiger shark', 'hammerhead'];

// The one-command job, `dissect --target <hub id> --out DIR`, against a loopback hub that serves the tiny
// Hugging Face ResNet as test-org/resnet-tiny and the tiny CLIP under the default CLIP id. The probe set is
// given (the built-in cifar100_val would be downloaded from the internet); the 20k concepts are the paper's
// list from ../shared, placed in the cache as a first run would have downloaded them.
describe('clip-dissect dissect --target <hub id> (loopback hub)', { skip: NEEDS_SHARED }, () => {
  let hub: LoopbackHub;
  let cleanup: () => Promise<void> = async () => undefined;
  const cacheDir = tempDir('clip-dissect-cache-');
  const probe = probeFolder();
  before(async () => {
    const clip = await assembleModelDir();
    cleanup = clip.cleanup;
    hub = await startHub({
      'test-org/resnet-tiny': { dir: join(HF_FIXTURES, 'resnet-tiny') },
      [DEFAULT_CLIP_MODEL]: { dir: clip.dir },
    });
    const sha = BUILTIN_CONCEPT_SETS['20k'].sha256;
    mkdirSync(join(cacheDir, 'concepts'), { recursive: true });
    copyFileSync(SHARED_20K, join(cacheDir, 'concepts', `${sha}-20k.txt`));
  });
  after(async () => {
    await hub?.close();
    await cleanup();
  });
  const run = (argv: string[]) => withEnv({ HF_ENDPOINT: hub.url, HF_TOKEN: undefined }, () => cli(argv));

  it("the run's signal stops the hub download in the middle of a file: no partial file, the reason", async () => {
    // a cache of its own (the 20k list placed as before), so that the other tests still download everything
    const cache = tempDir('clip-dissect-cache-abort-');
    mkdirSync(join(cache, 'concepts'), { recursive: true });
    const sha = BUILTIN_CONCEPT_SETS['20k'].sha256;
    copyFileSync(SHARED_20K, join(cache, 'concepts', `${sha}-20k.txt`));
    const reason = new Error('stopped by the user');
    const ac = new AbortController();
    const file = `download ${DEFAULT_CLIP_MODEL}/onnx/vision_model.onnx`;
    await withEnv({ HF_ENDPOINT: hub.url, HF_TOKEN: undefined }, () =>
      assert.rejects(
        dissect(
          { target: 'test-org/resnet-tiny', probe, concepts: '20k', cacheDir: cache, trust: false },
          { signal: ac.signal, onProgress: (e) => void (e.stage === file && ac.abort(reason)) },
        ),
        reason,
      ),
    );
    const clipDir = join(cache, 'models', ...DEFAULT_CLIP_MODEL.split('/'));
    const left = readdirSync(clipDir, { recursive: true, encoding: 'utf8' });
    assert.ok(!left.some((f) => /vision_model\.onnx|\.download$/.test(f)), left.join(', '));
  });

  it('chooses the paper defaults, prints each choice, downloads the target and records its class names', async () => {
    const out = tempDir('clip-dissect-out-');
    const common = ['--probe', probe, '--cache-dir', cacheDir, '--threads', '1', '--top-k', '5'];
    const r = await run([
      'dissect',
      '--target',
      'test-org/resnet-tiny',
      '--out',
      out,
      ...common,
      '--no-report',
    ]);
    assert.equal(r.code, 0, r.stderr);
    const stages = [0, 1, 2, 3].map((i) => `resnet.encoder.stages.${i}`).join(',');
    for (const line of [
      `clip: ${DEFAULT_CLIP_MODEL} (ViT-B/16, as in the paper; --clip to choose)`,
      "concepts: 20k (the paper's 20,000 most common English words; --concepts to choose)",
      `layers: ${stages} (the network's top-level blocks; --layers to choose)`,
    ])
      assert.ok(r.stderr.split('\n').includes(line), `${line}\n---\n${r.stderr}`);
    assert.doesNotMatch(r.stderr, /^probe: /m);
    // downloads: sizes in kB, each file once
    assert.match(r.stderr, /^download test-org\/resnet-tiny\/onnx\/model\.onnx: 110\.2 kB in \d/m);
    assert.match(
      r.stderr,
      new RegExp(`^download ${DEFAULT_CLIP_MODEL}/onnx/vision_model\\.onnx: [\\d.]+ [kM]B in`, 'm'),
    );
    assert.match(r.stdout, /^soft_wpmi: 4 layers × 20000 concepts over 22 images/m);
    assert.match(r.stdout, /^resnet\.encoder\.stages\.3: 32 neurons/m);
    const args = JSON.parse(readFileSync(join(out, 'args.json'), 'utf8'));
    assert.equal(args.inputs.target.hubId, 'test-org/resnet-tiny');
    assert.equal(args.inputs.target.revision, 'main');
    assert.deepEqual(args.inputs.target.classNames.names, CLASSES);
    assert.equal(args.inputs.target.preprocessing.resize, 36); // ConvNeXt: int(32 / 0.875)
    assert.equal(args.inputs.concepts.given, '20k');
    assert.deepEqual(
      args.layers.map((l: { name: string }) => l.name),
      stages.split(','),
    );

    // cached: layers lists the model offline; eval of the classifier takes its ground truth from id2label
    const layers = await run(['layers', 'test-org/resnet-tiny', '--cache-dir', cacheDir, '--offline']);
    assert.equal(layers.code, 0, layers.stderr);
    assert.match(layers.stdout, /^ {6}resnet\.encoder\.stages\.3 +spatial +32 /m);
    assert.match(
      layers.stdout,
      new RegExp(`^top-level blocks \\(dissect's default layers\\): ${stages}$`, 'm'),
    );

    const concepts = join(tempDir(), 'concepts.txt');
    writeFileSync(concepts, [...CLASSES, 'dog', 'cat', 'car'].join('\n'));
    const out2 = tempDir('clip-dissect-out-');
    const fc = await run([
      'dissect',
      ...[
        '--target',
        'test-org/resnet-tiny',
        '--layers',
        'classifier',
        '--concepts',
        concepts,
        '--out',
        out2,
      ],
      ...common,
      ...['--offline', '--no-report', '-q'],
    ]);
    assert.equal(fc.code, 0, fc.stderr);
    const ev = await run([
      'eval',
      '--results',
      out2,
      '--layer',
      'classifier',
      '--mpnet',
      MPNET,
      '--cache-dir',
      cacheDir,
    ]);
    assert.equal(ev.code, 0, ev.stderr);
    assert.match(ev.stdout, /^classifier: 5 units against .*config\.json \(id2label\)$/m);
    assert.match(ev.stdout, /over the 8 concepts of .*concepts\.txt:\n {2}top-1 accuracy/);
    const noGt = await run([
      'eval',
      '--results',
      out,
      '--layer',
      'resnet.encoder.stages.3',
      '--mpnet',
      MPNET,
    ]);
    assert.equal(noGt.code, 1);
    assert.match(
      noGt.stderr,
      /the target's class names \(.*\) are 5 but layer 'resnet\.encoder\.stages\.3' has 32 neurons; evaluate the classifier layer/,
    );
  });

  it('without --probe: cifar100_val, printed before anything is downloaded', async () => {
    const r = await run([
      ...['dissect', '--target', join(HF_FIXTURES, 'resnet-tiny'), '--out', tempDir()],
      ...['--cache-dir', tempDir(), '--offline'],
    ]);
    assert.equal(r.code, 1);
    assert.ok(
      r.stderr
        .split('\n')
        .includes('probe: cifar100_val (the CIFAR-100 validation images; --probe to choose)'),
      r.stderr,
    );
    // offline with an empty cache: the default CLIP is missing, named with its folder
    assert.match(
      r.stderr,
      /^clip-dissect: error: model 'Xenova\/clip-vit-base-patch16': config\.json is not in the cache folder/m,
    );
  });

  it('a wrong hub id exits 1 before any CLIP download, with what to do', async () => {
    const n = hub.requests.length;
    const r = await run([
      'dissect',
      '--target',
      'test-org/resnet-tyni',
      '--out',
      tempDir(),
      '--cache-dir',
      tempDir(),
    ]);
    assert.equal(r.code, 1);
    assert.match(
      r.stderr,
      /^clip-dissect: error: cannot download test-org\/resnet-tyni\/config\.json from http:\/\/127\.0\.0\.1:\d+\/test-org\/resnet-tyni\/resolve\/main\/config\.json: HTTP 404 Not Found, RepoNotFound: there is no model 'test-org\/resnet-tyni'; check the id$/m,
    );
    assert.deepEqual(
      hub.requests.slice(n).map((q) => q.path),
      ['/test-org/resnet-tyni/resolve/main/config.json'],
    );
  });
});
