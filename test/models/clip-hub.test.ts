import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { readdir, readFile, stat } from 'node:fs/promises';
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import { RECORD_DIR, readDownloadRecord } from '../../src/io/cache-files.js';
import { isHubId, resolveModelFiles } from '../../src/models/_hub.js';
import { clipModelFiles, createOnnxClipEncoder } from '../../src/models/onnx-clip-encoder.js';
import type { ClipDissectError } from '../../src/numeric/errors.js';
import type { ProgressEvent } from '../../src/progress.js';
import { assembleModelDir, compare, GOLDEN, goldenMatrix, NEEDS_SHARED } from './clip-helpers.js';

const ID = 'test-org/tiny-clip';

/** Files under `dir`, recursively, relative to it; the download records (RECORD_DIR) left out. */
async function listFiles(dir: string, prefix = ''): Promise<string[]> {
  const out: string[] = [];
  let entries: import('node:fs').Dirent[];
  try {
    entries = await readdir(join(dir, prefix), { withFileTypes: true });
  } catch {
    return out;
  }
  for (const e of entries) {
    const rel = prefix ? `${prefix}/${e.name}` : e.name;
    if (rel === RECORD_DIR) continue;
    if (e.isDirectory()) out.push(...(await listFiles(dir, rel)));
    else out.push(rel);
  }
  return out.sort();
}

describe('hub ids and resolution errors', () => {
  test('hub ids', () => {
    assert.ok(isHubId('Xenova/clip-vit-base-patch16'));
    assert.ok(isHubId('openai/clip-vit-large-patch14-336'));
    for (const bad of ['clip', 'a/b/c', '../x', 'a/..', '/abs/path', './rel/x', 'a b/c', 'x/y.git'])
      assert.ok(!isHubId(bad), bad);
  });

  test('a network failure is reported with the URL', async () => {
    const failing = (async () => {
      throw new TypeError('fetch failed');
    }) as unknown as typeof fetch;
    await assert.rejects(
      resolveModelFiles(ID, ['config.json'], {
        cacheDir: join(tmpdir(), 'clip-dissect-never-created'),
        fetch: failing,
      }),
      /cannot download test-org\/tiny-clip\/config\.json from https:\/\/huggingface\.co\/test-org\/tiny-clip\/resolve\/main\/config\.json: fetch failed/,
    );
  });

  test('neither a folder nor a hub id', async () => {
    await assert.rejects(
      resolveModelFiles('no/such/folder', ['config.json']),
      /neither a folder nor a Hugging Face model id/,
    );
    await assert.rejects(
      resolveModelFiles('', ['config.json']),
      /must be a folder or a Hugging Face model id/,
    );
  });
});

describe('CLIP models from a hub (loopback server)', { skip: NEEDS_SHARED }, () => {
  let served: string;
  let root: string;
  let cleanup: () => Promise<void>;
  let server: Server;
  let baseUrl: string;
  const requests: string[] = [];
  /** Per path: how to misbehave. */
  const faults = new Map<string, 'truncate' | 'bad-sha' | 'good-sha' | 'redirect'>();

  before(async () => {
    ({ dir: served, root, cleanup } = await assembleModelDir('served'));
    server = createServer(async (req: IncomingMessage, res: ServerResponse) => {
      const url = req.url ?? '';
      requests.push(url);
      const prefix = `/${ID}/resolve/main/`;
      if (url.startsWith('/cdn/')) {
        const bytes = await readFile(join(served, url.slice('/cdn/'.length)));
        res.writeHead(200, { 'content-length': bytes.length });
        res.end(bytes);
        return;
      }
      if (!url.startsWith(prefix)) {
        res.writeHead(404).end('Repository not found');
        return;
      }
      const file = url.slice(prefix.length);
      let bytes: Buffer;
      try {
        bytes = await readFile(join(served, file));
      } catch {
        res.writeHead(404).end('Entry not found');
        return;
      }
      const fault = faults.get(file);
      if (fault === 'redirect') {
        res.writeHead(302, { location: `/cdn/${file}` }).end();
      } else if (fault === 'truncate') {
        res.writeHead(200, { 'content-length': bytes.length });
        res.write(bytes.subarray(0, bytes.length >> 1));
        res.destroy(); // the connection breaks halfway
      } else {
        const sha = createHash('sha256').update(bytes).digest('hex');
        const etag = fault === 'bad-sha' ? '0'.repeat(64) : sha;
        res.writeHead(200, {
          'content-length': bytes.length,
          ...(fault ? { 'x-linked-etag': `"${etag}"`, 'x-linked-size': bytes.length } : {}),
        });
        res.end(bytes);
      }
    });
    await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
    baseUrl = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
  });
  after(async () => {
    await new Promise((r) => server?.close(r));
    await cleanup?.();
  });

  test('downloads on first use with progress, then works from the cache and offline', async () => {
    const cacheDir = join(root, 'cache-1');
    const events: ProgressEvent[] = [];
    requests.length = 0;
    faults.set('onnx/vision_model.onnx', 'redirect');
    faults.set('tokenizer.json', 'good-sha');
    const enc = await createOnnxClipEncoder(
      ID,
      { cacheDir, baseUrl: `${baseUrl}/`, threads: 1 },
      { onProgress: (e) => events.push(e) },
    );
    faults.clear();
    try {
      assert.equal(enc.modelId, ID);
      const got = await enc.encodeText(GOLDEN.concepts);
      assert.ok(compare(got, await goldenMatrix('text_embeds.npy')).relative <= 1e-4);
    } finally {
      await enc.release();
    }
    const files = clipModelFiles('fp32');
    assert.deepEqual(
      requests.filter((r) => !r.startsWith('/cdn/')),
      files.map((f) => `/${ID}/resolve/main/${f}`),
    );
    const dir = join(cacheDir, 'models', 'test-org', 'tiny-clip');
    assert.deepEqual(await listFiles(dir), [...files].sort()); // no temporary files left
    for (const f of files) {
      const bytes = await readFile(join(dir, f));
      assert.deepEqual(bytes, await readFile(join(served, f)));
      const rec = await readDownloadRecord(dir, f);
      assert.equal(rec?.sha256, createHash('sha256').update(bytes).digest('hex'), f);
      assert.equal(rec?.size, bytes.length, f);
    }
    // progress: bytes per file, ending at the file size
    for (const f of files) {
      const mine = events.filter((e) => e.stage === `download ${ID}/${f}`);
      assert.ok(mine.length >= 2, f);
      assert.ok(mine.every((e) => e.unit === 'bytes'));
      const last = mine[mine.length - 1];
      assert.equal(last.done, (await stat(join(served, f))).size);
      assert.equal(last.total, last.done);
    }

    // second use: nothing fetched, with or without offline
    requests.length = 0;
    for (const offline of [false, true]) {
      const again = await createOnnxClipEncoder(ID, { cacheDir, baseUrl, offline, threads: 1 });
      await again.release();
    }
    assert.deepEqual(requests, []);
  });

  test('offline with an empty cache names the missing file and the folder', async () => {
    const cacheDir = join(root, 'cache-offline');
    requests.length = 0;
    await assert.rejects(
      createOnnxClipEncoder(ID, { cacheDir, baseUrl, offline: true }),
      (e: ClipDissectError) => {
        assert.equal(e.code, 'ERR_OFFLINE');
        assert.match(e.message, /config\.json is not in the cache folder/);
        assert.ok(e.message.includes(join(cacheDir, 'models', 'test-org', 'tiny-clip')), e.message);
        assert.ok(e.message.includes(`${baseUrl}/${ID}/resolve/main/config.json`), e.message);
        return true;
      },
    );
    assert.deepEqual(requests, []);
  });

  test('a missing file (HTTP 404) fails the download and leaves no partial file', async () => {
    const cacheDir = join(root, 'cache-404');
    await assert.rejects(
      createOnnxClipEncoder(ID, { cacheDir, baseUrl, dtype: 'q8' }),
      (e: ClipDissectError) => {
        assert.equal(e.code, 'ERR_MODEL_DOWNLOAD');
        assert.match(
          e.message,
          /onnx\/text_model_quantized\.onnx .*HTTP 404.*model 'test-org\/tiny-clip' has no file onnx\/text_model_quantized\.onnx at revision 'main'/,
        );
        return true;
      },
    );
    const dir = join(cacheDir, 'models', 'test-org', 'tiny-clip');
    // the files before the missing one are complete and kept; nothing else
    assert.deepEqual(await listFiles(dir), clipModelFiles('q8').slice(0, 4).sort());
    await assert.rejects(createOnnxClipEncoder('nobody/nothing', { cacheDir, baseUrl }), /HTTP 404/);
  });

  test("the signal stops a download in the middle of a file with the signal's reason", async () => {
    const cacheDir = join(root, 'cache-abort');
    const reason = new Error('stopped by the caller');
    const ac = new AbortController();
    const events: ProgressEvent[] = [];
    await assert.rejects(
      createOnnxClipEncoder(
        ID,
        {
          cacheDir,
          baseUrl,
          // the older option still hears the downloads
          onProgress: (e) => {
            events.push(e);
            if (e.stage === `download ${ID}/onnx/text_model.onnx`) ac.abort(reason);
          },
        },
        { signal: ac.signal },
      ),
      reason,
    );
    assert.equal(events.filter((e) => e.stage === `download ${ID}/onnx/text_model.onnx`).length, 1);
    const dir = join(cacheDir, 'models', 'test-org', 'tiny-clip');
    // the files before it are complete and kept; no partial file, no temporary file
    assert.deepEqual(await listFiles(dir), clipModelFiles().slice(0, 4).sort());
  });

  test('a broken connection or a wrong SHA-256 leaves nothing under the final name', async () => {
    for (const fault of ['truncate', 'bad-sha'] as const) {
      const cacheDir = join(root, `cache-${fault}`);
      faults.clear();
      faults.set('onnx/text_model.onnx', fault);
      await assert.rejects(createOnnxClipEncoder(ID, { cacheDir, baseUrl }), (e: ClipDissectError) => {
        assert.equal(e.code, 'ERR_MODEL_DOWNLOAD');
        assert.match(
          e.message,
          fault === 'bad-sha' ? /SHA-256 is [0-9a-f]{64} but the server announced 0{64}/ : /text_model\.onnx/,
        );
        return true;
      });
      const dir = join(cacheDir, 'models', 'test-org', 'tiny-clip');
      assert.deepEqual(await listFiles(dir), clipModelFiles().slice(0, 4).sort(), fault);
    }
    faults.clear();
    // a later run completes the cache
    const cacheDir = join(root, 'cache-truncate');
    const enc = await createOnnxClipEncoder(ID, { cacheDir, baseUrl, threads: 1 });
    await enc.release();
  });
});
