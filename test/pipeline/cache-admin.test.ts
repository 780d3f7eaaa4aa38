import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import {
  copyFileSync,
  existsSync,
  mkdirSync,
  readFileSync,
  statSync,
  utimesSync,
  writeFileSync,
} from 'node:fs';
import { readFile } from 'node:fs/promises';
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { downloadRecordPath, LAST_USED, RECORD_DIR } from '../../src/io/cache-files.js';
import { resolveModelFiles } from '../../src/models/_hub.js';
import { ArgumentError } from '../../src/numeric/errors.js';
import type { Matrix } from '../../src/numeric/matrix.js';
import { cacheKey, FeatureCache, fileSha256, modelSha256s } from '../../src/pipeline/cache.js';
import { type CacheEntry, cleanCache, scanCache, verifyCache } from '../../src/pipeline/cache-admin.js';
import { tempDir } from '../helpers/cli.js';
import { makeFifo } from '../helpers/data.js';
import { FOLDED, MODELS } from './helpers.js';

const ID = 'tiny/model';
const FILES = ['config.json', 'onnx/model.onnx'];
const SERVED: Record<string, Buffer> = {
  'config.json': Buffer.from('{"model_type":"test"}\n'),
  'onnx/model.onnx': readFileSync(FOLDED),
};
const OTHER_MODEL = `${MODELS}nhwc_tiny_ts.onnx`;
/** With external data (resnet_small_dynamo.onnx.data): dissect keys it by both files' hashes. */
const DYNAMO = `${MODELS}resnet_small_dynamo.onnx`;

const matrix = (rows: number, cols: number): Matrix => ({
  rows,
  cols,
  data: Float32Array.from({ length: rows * cols }, (_, i) => Math.cos(i)),
});

const sha256 = (b: Uint8Array) => createHash('sha256').update(b).digest('hex');
const ids = (entries: CacheEntry[]) => entries.map((e) => `${e.kind}:${e.id}`).sort();
const DAY = 86400e3;

function age(path: string, days: number): void {
  const t = new Date(Date.now() - days * DAY);
  utimesSync(path, t, t);
}

describe('cache admin: list, clean and verify a real cache folder', () => {
  let server: Server;
  let baseUrl = '';
  before(async () => {
    server = createServer((req, res) => {
      const file = (req.url ?? '').slice(`/${ID}/resolve/main/`.length);
      const bytes = SERVED[file];
      if (!req.url?.startsWith(`/${ID}/resolve/main/`) || !bytes) return res.writeHead(404).end();
      res
        .writeHead(200, { 'content-length': bytes.length, 'x-linked-etag': `"${sha256(bytes)}"` })
        .end(bytes);
    });
    await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
    baseUrl = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
  });
  after(() => new Promise((r) => server.close(r)));

  /** A cache with one hub model, features of it and of another model, a concept set, a probe set, leftovers. */
  async function makeCache(): Promise<{ dir: string; keys: Record<string, string> }> {
    const dir = tempDir('clip-dissect-cache-admin-');
    await resolveModelFiles(ID, FILES, { cacheDir: dir, baseUrl });
    const fc = new FeatureCache(dir, { fsync: false });
    const mine = await fileSha256(FOLDED);
    const other = await fileSha256(OTHER_MODEL);
    const keys: Record<string, string> = {};
    const put = async (name: string, kind: string, parts: Record<string, unknown>) => {
      keys[name] = cacheKey(parts);
      await fc.put(keys[name], kind, matrix(3, 4), parts);
    };
    await put('text', 'text', { what: 'clip-text-features', clip: { text: mine }, chunk: 0 });
    await put('acts', 'activations', { what: 'activations', model: mine, layer: 'conv1', chunk: 0 });
    await put('otherActs', 'activations', { what: 'activations', model: other, layer: 'conv1', chunk: 0 });
    await put('kept', 'kept', { what: 'kept-images', manifest: 'a'.repeat(64), chunk: 0 });
    await put('dynamo', 'activations', {
      what: 'activations',
      model: (await modelSha256s([DYNAMO]))[0],
      chunk: 0,
    });
    const words = Buffer.from('dog\ncat\n');
    mkdirSync(join(dir, 'concepts'));
    writeFileSync(join(dir, 'concepts', `${sha256(words)}-mini.txt`), words);
    const member = Buffer.alloc(3074 * 2, 7);
    mkdirSync(join(dir, 'datasets', 'cifar-100-binary'), { recursive: true });
    writeFileSync(join(dir, 'datasets', 'cifar-100-binary', 'test.bin'), member);
    writeFileSync(
      join(dir, 'datasets', 'cifar-100-binary.json'),
      JSON.stringify({ members: { 'test.bin': { size: member.length, sha256: sha256(member) } } }),
    );
    writeFileSync(join(dir, 'models', 'tiny', 'model', 'onnx', 'model.onnx.123.0123456789ab.download'), 'x');
    mkdirSync(join(dir, 'features', 'kept', 'bb'));
    writeFileSync(join(dir, 'features', 'kept', 'bb', `${'b'.repeat(64)}.npy`), 'y'); // no sidecar: partial
    return { dir, keys };
  }

  it('lists entries by kind with sizes and last use; a hub download is recorded', async () => {
    const { dir, keys } = await makeCache();
    // an interrupted atomic write (writeFileAtomic's hidden temporary name)
    writeFileSync(join(dir, 'features', 'kept', 'bb', `.tmp-123-0123456789ab-${'c'.repeat(64)}.npy`), 'z');
    const entries = await scanCache(dir);
    assert.deepEqual(
      ids(entries),
      [
        `features:activations/${keys.acts}`,
        `features:activations/${keys.dynamo}`,
        `features:activations/${keys.otherActs}`,
        `features:kept/${keys.kept}`,
        `features:text/${keys.text}`,
        'concepts:mini.txt',
        'models:tiny/model',
        `partial:features/kept/bb/${'b'.repeat(64)}.npy`,
        `partial:features/kept/bb/.tmp-123-0123456789ab-${'c'.repeat(64)}.npy`,
        'partial:models/tiny/model/onnx/model.onnx.123.0123456789ab.download',
        'probes:cifar-100-binary',
      ].sort(),
    );
    const model = entries.find((e) => e.kind === 'models') as CacheEntry;
    // config.json and onnx/model.onnx (their records and the last-used stamp count in bytes only)
    assert.equal(model.files, 2);
    assert.ok(model.bytes > SERVED['onnx/model.onnx'].length);
    const rec = JSON.parse(readFileSync(downloadRecordPath(model.paths[0], 'onnx/model.onnx'), 'utf8'));
    assert.equal(rec.sha256, sha256(SERVED['onnx/model.onnx']));
    assert.equal(rec.size, SERVED['onnx/model.onnx'].length);
    assert.equal(rec.checkedAgainst, 'sha256');
    assert.ok(Date.now() - model.lastUsed.getTime() < 60e3);
    assert.deepEqual(await scanCache(join(dir, 'absent')), []);
  });

  it('a use moves the last use: a feature read, a model resolved again', async () => {
    const { dir, keys } = await makeCache();
    const fc = new FeatureCache(dir, { fsync: false });
    const side = fc.path(keys.text, 'text').replace(/\.npy$/, '.json');
    age(side, 40);
    age(fc.path(keys.text, 'text'), 40);
    const stamp = join(dir, 'models', 'tiny', 'model', RECORD_DIR, LAST_USED);
    for (const f of [stamp, ...FILES.map((f) => join(dir, 'models', 'tiny', 'model', f))]) age(f, 40);
    for (const f of FILES) age(downloadRecordPath(join(dir, 'models', 'tiny', 'model'), f), 40);
    let old = (await scanCache(dir)).filter((e) => Date.now() - e.lastUsed.getTime() > 30 * DAY);
    assert.deepEqual(ids(old), [`features:text/${keys.text}`, 'models:tiny/model']);
    assert.ok(await fc.get(keys.text, 'text'));
    await resolveModelFiles(ID, FILES, { cacheDir: dir, offline: true });
    old = (await scanCache(dir)).filter((e) => Date.now() - e.lastUsed.getTime() > 30 * DAY);
    assert.deepEqual(old, []);
  });

  it('clean --older-than removes only entries unused for that long', async () => {
    const { dir, keys } = await makeCache();
    const fc = new FeatureCache(dir, { fsync: false });
    for (const f of [fc.path(keys.kept, 'kept'), fc.path(keys.kept, 'kept').replace(/\.npy$/, '.json')])
      age(f, 31);
    const concept = (await scanCache(dir)).find((e) => e.kind === 'concepts') as CacheEntry;
    age(concept.paths[0], 45);
    const dry = await cleanCache(dir, { olderThanMs: 30 * DAY }, { dryRun: true });
    assert.deepEqual(ids(dry.removed), ['concepts:mini.txt', `features:kept/${keys.kept}`]);
    assert.equal((await scanCache(dir)).length, 10, 'a dry run removes nothing');
    const r = await cleanCache(dir, { olderThanMs: 30 * DAY });
    assert.deepEqual(ids(r.removed), ids(dry.removed));
    assert.equal(r.bytes, dry.bytes);
    assert.ok(!existsSync(concept.paths[0]));
    assert.ok(
      !existsSync(join(dir, 'features', 'kept', keys.kept.slice(0, 2))),
      'its emptied shard folder went',
    );
    assert.equal((await scanCache(dir)).length, 8);
    assert.equal(await fc.get(keys.kept, 'kept'), undefined);
  });

  it('clean --model removes a hub model and the features computed with it; a path only the features', async () => {
    const { dir, keys } = await makeCache();
    const r = await cleanCache(dir, { model: ID });
    assert.deepEqual(ids(r.removed), [
      `features:activations/${keys.acts}`,
      `features:text/${keys.text}`,
      'models:tiny/model',
    ]);
    assert.ok(!existsSync(join(dir, 'models', 'tiny')), 'the emptied owner folder went');
    const byPath = await cleanCache(dir, { model: OTHER_MODEL });
    assert.deepEqual(ids(byPath.removed), [`features:activations/${keys.otherActs}`]);
    assert.ok(existsSync(OTHER_MODEL));
    const external = await cleanCache(dir, { model: DYNAMO });
    assert.deepEqual(ids(external.removed), [`features:activations/${keys.dynamo}`]);
    await assert.rejects(cleanCache(dir, { model: 'nobody/nothing' }), (e: Error) => {
      assert.ok(e instanceof ArgumentError);
      assert.match(e.message, /model 'nobody\/nothing' is neither cached in .*models \(no models cached\)/);
      return true;
    });
    await assert.rejects(cleanCache(dir, { all: true, model: ID }), /exactly one of/);
    await assert.rejects(cleanCache(dir, {}), /exactly one of/);
    await assert.rejects(cleanCache(dir, { olderThanMs: -1 }), /'olderThanMs' must be a number >= 0/);
  });

  it('verify and clean stop when their signal aborts: clean before removing anything', async () => {
    const { dir } = await makeCache();
    const ac = new AbortController();
    const seen: number[] = [];
    await assert.rejects(
      verifyCache(
        dir,
        {},
        {
          signal: ac.signal,
          onProgress: (e) => {
            seen.push(e.done);
            ac.abort(new Error('stop'));
          },
        },
      ),
      /^Error: stop$/,
    );
    assert.deepEqual(seen, [0], 'no entry verified after the abort');
    await assert.rejects(cleanCache(dir, { all: true }, {}, { signal: AbortSignal.abort() }), {
      name: 'AbortError',
    });
    assert.equal((await scanCache(dir)).length, 10);
  });

  it('clean --all empties the cache of everything it lists', async () => {
    const { dir } = await makeCache();
    const r = await cleanCache(dir, { all: true });
    assert.equal(r.removed.length, 10);
    assert.deepEqual(await scanCache(dir), []);
  });

  it('verify and list never open a FIFO in the cache (a features entry, a download record)', {
    timeout: 20_000,
  }, async () => {
    const { dir, keys } = await makeCache();
    const fc = new FeatureCache(dir, { fsync: false });
    makeFifo(fc.path(keys.acts, 'activations'), true);
    makeFifo(downloadRecordPath(join(dir, 'models', 'tiny', 'model'), 'config.json'), true);
    assert.ok((await scanCache(dir)).length > 0);
    const by = Object.fromEntries((await verifyCache(dir)).map((r) => [`${r.entry.kind}:${r.entry.id}`, r]));
    assert.equal(by[`features:activations/${keys.acts}`].status, 'corrupt');
    assert.match(
      by[`features:activations/${keys.acts}`].detail,
      /is a FIFO \(named pipe\), not a regular file/,
    );
    assert.notEqual(by['models:tiny/model'].status, 'ok');
  });

  it('verify: ok, unverified without a record, corrupt after a byte flips; --delete makes the next use fetch again', async () => {
    const { dir, keys } = await makeCache();
    let results = await verifyCache(dir);
    assert.deepEqual(
      results.map((r) => r.status),
      results.map(() => 'ok'),
    );
    assert.equal(results.length, 8, 'partial files are not verified');
    const modelDir = join(dir, 'models', 'tiny', 'model');
    copyFileSync(OTHER_MODEL, join(modelDir, 'onnx', 'extra.onnx'));
    const flip = (p: string, at = 200) => {
      const b = readFileSync(p);
      b[at] ^= 1;
      writeFileSync(p, b);
    };
    flip(join(modelDir, 'onnx', 'model.onnx'));
    const fc = new FeatureCache(dir, { fsync: false });
    flip(fc.path(keys.acts, 'activations'), 130);
    flip(join(dir, 'datasets', 'cifar-100-binary', 'test.bin'));
    results = await verifyCache(dir);
    const by = Object.fromEntries(results.map((r) => [`${r.entry.kind}:${r.entry.id}`, r]));
    assert.equal(by['models:tiny/model'].status, 'corrupt');
    assert.match(
      by['models:tiny/model'].detail,
      /^onnx\/model\.onnx: SHA-256 differs from the download record$/,
    );
    assert.equal(by[`features:activations/${keys.acts}`].status, 'corrupt');
    assert.match(by[`features:activations/${keys.acts}`].detail, /^SHA-256 [0-9a-f]{12}… instead of/);
    assert.equal(by['probes:cifar-100-binary'].status, 'corrupt');
    assert.equal(by['concepts:mini.txt'].status, 'ok');
    assert.ok(existsSync(fc.path(keys.acts, 'activations')), 'verify alone deletes nothing');

    results = await verifyCache(dir, { remove: true });
    assert.equal(results.filter((r) => r.removed).length, 3);
    assert.ok(!existsSync(join(modelDir, 'onnx', 'model.onnx')));
    assert.ok(existsSync(join(modelDir, 'config.json')), 'a model loses only its bad files');
    assert.ok(!existsSync(fc.path(keys.acts, 'activations')));
    results = await verifyCache(dir);
    const model = results.find((r) => r.entry.kind === 'models');
    assert.equal(model?.status, 'unverified');
    assert.match(model?.detail ?? '', /no download record for onnx\/extra\.onnx/);
    // the next use downloads the deleted file again, verified and recorded
    await resolveModelFiles(ID, FILES, { cacheDir: dir, baseUrl });
    assert.deepEqual(await readFile(join(modelDir, 'onnx', 'model.onnx')), SERVED['onnx/model.onnx']);
    assert.ok(statSync(downloadRecordPath(modelDir, 'onnx/model.onnx')).size > 0);
  });
});
