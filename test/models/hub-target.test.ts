import assert from 'node:assert/strict';
import { existsSync, readFileSync } from 'node:fs';
import { readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import { hubCacheDir, hubFileUrl } from '../../src/models/_hub.js';
import { createOnnxTargetModel } from '../../src/models/onnx-target-model.js';
import { readId2Label, resolveTargetSource, targetModelFile } from '../../src/models/target-files.js';
import { topLevelBlocks } from '../../src/models/target-model.js';
import type { ClipDissectError } from '../../src/numeric/errors.js';
import { tempDir } from '../helpers/cli.js';
import { HF_FIXTURES, type LoopbackHub, startHub, withEnv } from '../helpers/hub.js';

const RESNET = join(HF_FIXTURES, 'resnet-tiny');
const VIT = join(HF_FIXTURES, 'vit-tiny');
const CLASSES = ['tench', 'goldfish', 'great white shark', 'tiger shark', 'hammerhead'];

/** golden.json of scripts/export_hf_target.py: PyTorch's logits and forward-hook outputs for its fixed input. */
interface Golden {
  logits: number[][];
  layers: Record<string, number[][]>;
}

/** The script's input: x[i] = f32(((i * 7919 + 13) % 1000) / 250 - 2), 2×3×32×32. */
function goldenInput(): Float32Array {
  const out = new Float32Array(2 * 3 * 32 * 32);
  for (let i = 0; i < out.length; i++) out[i] = ((i * 7919 + 13) % 1000) / 250 - 2;
  return out;
}

async function checkGolden(model: string, dir: string): Promise<void> {
  const golden = JSON.parse(readFileSync(join(dir, 'golden.json'), 'utf8')) as Golden;
  const m = await createOnnxTargetModel(model, { threads: 1 });
  try {
    const names = [...Object.keys(golden.layers), 'classifier'];
    const acts = await m.activations(goldenInput(), 2, names, 'avg');
    for (const [name, want] of [...Object.entries(golden.layers), ['classifier', golden.logits] as const]) {
      const got = acts.get(name);
      assert.ok(got, name);
      assert.equal(got.rows, 2, name);
      assert.equal(got.cols, want[0].length, name);
      const flat = want.flat();
      const scale = Math.max(...flat.map(Math.abs));
      for (let i = 0; i < flat.length; i++)
        assert.ok(
          Math.abs(got.data[i] - flat[i]) <= 1e-4 * scale,
          `${name}[${i}]: ${got.data[i]} vs ${flat[i]}`,
        );
    }
  } finally {
    await m.release();
  }
}

describe('Hugging Face targets (transformers.js layout)', () => {
  test('a local folder: module names, top-level blocks, id2label and PyTorch-equal outputs', async () => {
    const r = await resolveTargetSource(RESNET);
    assert.equal(r.model, join(RESNET, 'onnx', 'model.onnx'));
    assert.equal(r.preprocessorConfig, join(RESNET, 'preprocessor_config.json'));
    assert.equal(r.config, join(RESNET, 'config.json'));
    assert.deepEqual(await readId2Label(r.config as string), CLASSES);
    await checkGolden(r.model, RESNET);
    const m = await createOnnxTargetModel(r.model, { threads: 1 });
    try {
      assert.deepEqual(
        topLevelBlocks(m.layers()),
        [0, 1, 2, 3].map((i) => `resnet.encoder.stages.${i}`),
      );
    } finally {
      await m.release();
    }
    await assert.rejects(resolveTargetSource(RESNET, { dtype: 'fp16' }), /has no onnx\/model_fp16\.onnx/);
  });

  describe('from a loopback hub', () => {
    let hub: LoopbackHub;
    before(async () => {
      hub = await startHub({
        'test-org/resnet-tiny': {
          dir: RESNET,
          revisions: { v1: RESNET },
          alias: { 'onnx/model_quantized.onnx': join(RESNET, 'onnx', 'model.onnx') },
        },
        'test-org/vit-tiny': { dir: VIT },
        'test-org/private-vit': { dir: VIT, token: 'hf_good' },
        'test-org/bare': {
          dir: RESNET,
          alias: { 'config.json': '/nonexistent', 'preprocessor_config.json': '/nonexistent' },
        },
      });
    });
    after(() => hub.close());
    const paths = (from: number) => hub.requests.slice(from).map((r) => r.path);

    test('downloads the model, its external data and its JSON files once; then offline', async () => {
      const cacheDir = tempDir();
      const n = hub.requests.length;
      const r = await resolveTargetSource('test-org/vit-tiny', { cacheDir, baseUrl: hub.url });
      const dir = hubCacheDir('test-org/vit-tiny', { cacheDir });
      assert.deepEqual(paths(n), [
        '/test-org/vit-tiny/resolve/main/config.json',
        '/test-org/vit-tiny/resolve/main/preprocessor_config.json',
        '/test-org/vit-tiny/resolve/main/onnx/model.onnx',
        '/test-org/vit-tiny/resolve/main/onnx/model.onnx_data',
      ]);
      assert.equal(r.model, join(dir, 'onnx', 'model.onnx'));
      assert.equal(r.hubId, 'test-org/vit-tiny');
      assert.equal(r.revision, 'main');
      for (const f of ['config.json', 'preprocessor_config.json', 'onnx/model.onnx', 'onnx/model.onnx_data'])
        assert.deepEqual(await readFile(join(dir, f)), await readFile(join(VIT, f)), f);
      // no token configured: no Authorization header
      assert.ok(hub.requests.slice(n).every((q) => q.auth === undefined));
      await checkGolden(r.model, VIT);

      const m = hub.requests.length;
      const again = await resolveTargetSource('test-org/vit-tiny', {
        cacheDir,
        baseUrl: hub.url,
        offline: true,
      });
      assert.deepEqual(again, r);
      assert.equal(hub.requests.length, m);
    });

    test('a model without config.json / preprocessor_config.json: remembered as absent, offline too', async () => {
      const cacheDir = tempDir();
      const r = await resolveTargetSource('test-org/bare', { cacheDir, baseUrl: hub.url });
      assert.equal(r.config, undefined);
      assert.equal(r.preprocessorConfig, undefined);
      const n = hub.requests.length;
      const again = await resolveTargetSource('test-org/bare', { cacheDir, baseUrl: hub.url, offline: true });
      assert.deepEqual(again, r);
      assert.equal(hub.requests.length, n);
    });

    test('HF_ENDPOINT, --revision and a dtype variant', async () => {
      const cacheDir = tempDir();
      const n = hub.requests.length;
      const r = await withEnv({ HF_ENDPOINT: `${hub.url}/` }, () =>
        resolveTargetSource('test-org/resnet-tiny', { cacheDir, revision: 'v1', dtype: 'q8' }),
      );
      assert.deepEqual(paths(n), [
        '/test-org/resnet-tiny/resolve/v1/config.json',
        '/test-org/resnet-tiny/resolve/v1/preprocessor_config.json',
        '/test-org/resnet-tiny/resolve/v1/onnx/model_quantized.onnx',
      ]);
      assert.equal(r.revision, 'v1');
      assert.equal(
        r.model,
        join(hubCacheDir('test-org/resnet-tiny', { cacheDir, revision: 'v1' }), targetModelFile('q8')),
      );
      assert.ok(r.model.includes(join('test-org', 'resnet-tiny@v1')), r.model);
      assert.equal(
        hubFileUrl('a/b', 'onnx/model.onnx', { baseUrl: 'http://h/', revision: 'refs/pr/1' }),
        'http://h/a/b/resolve/refs%2Fpr%2F1/onnx/model.onnx',
      );
      await assert.rejects(
        resolveTargetSource('test-org/resnet-tiny', { cacheDir, baseUrl: hub.url, revision: 'nope' }),
        (e: ClipDissectError) => {
          assert.equal(e.code, 'ERR_MODEL_DOWNLOAD');
          assert.match(
            e.message,
            /HTTP 404.*RevisionNotFound.*model 'test-org\/resnet-tiny' has no revision 'nope'; check --revision/,
          );
          return true;
        },
      );
      await assert.rejects(
        resolveTargetSource('test-org/resnet-tiny', { cacheDir, revision: '../x' }),
        /the revision must be a branch, tag or commit/,
      );
    });

    test('HF_TOKEN is sent as a Bearer token; 401 without it or with a bad one says what to do', async () => {
      const cacheDir = tempDir();
      await withEnv({ HF_TOKEN: undefined }, () =>
        assert.rejects(
          resolveTargetSource('test-org/private-vit', { cacheDir, baseUrl: hub.url }),
          (e: Error) => {
            assert.match(
              e.message,
              /cannot download test-org\/private-vit\/config\.json from http:\/\/127\.0\.0\.1:\d+\/test-org\/private-vit\/resolve\/main\/config\.json: HTTP 401/,
            );
            assert.match(
              e.message,
              /model 'test-org\/private-vit' is private or gated, or does not exist; set HF_TOKEN to an access token/,
            );
            return true;
          },
        ),
      );
      await withEnv({ HF_TOKEN: 'hf_bad' }, () =>
        assert.rejects(
          resolveTargetSource('test-org/private-vit', { cacheDir, baseUrl: hub.url }),
          /HTTP 401.*the token was refused or has no access to model 'test-org\/private-vit'; check HF_TOKEN/,
        ),
      );
      const n = hub.requests.length;
      const r = await withEnv({ HF_TOKEN: 'hf_good' }, () =>
        resolveTargetSource('test-org/private-vit', { cacheDir, baseUrl: hub.url }),
      );
      assert.ok(existsSync(join(r.model)));
      assert.ok(hub.requests.slice(n).length === 4);
      assert.ok(hub.requests.slice(n).every((q) => q.auth === 'Bearer hf_good'));
    });

    test('404: a wrong id, a missing dtype variant', async () => {
      const cacheDir = tempDir();
      await assert.rejects(
        resolveTargetSource('test-org/no-such-model', { cacheDir, baseUrl: hub.url }),
        /HTTP 404.*RepoNotFound: there is no model 'test-org\/no-such-model'; check the id/,
      );
      await assert.rejects(
        resolveTargetSource('test-org/vit-tiny', { cacheDir, baseUrl: hub.url, dtype: 'fp16' }),
        /HTTP 404.*EntryNotFound: model 'test-org\/vit-tiny' has no file onnx\/model_fp16\.onnx at revision 'main'/,
      );
      await assert.rejects(
        resolveTargetSource('test-org/vit-tiny', { cacheDir: tempDir(), baseUrl: hub.url, offline: true }),
        /model 'test-org\/vit-tiny': config\.json is not in the cache folder .* offline mode forbids downloading it/,
      );
      await assert.rejects(
        resolveTargetSource('no-such-file.onnx'),
        /cannot read \(ENOENT\)|cannot be read \(ENOENT\)/,
      );
    });
  });
});
