import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { mkdirSync, readdirSync, readFileSync, writeFileSync } from 'node:fs';
import { createServer, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import {
  DownloadError,
  type DownloadRequest,
  downloadFile,
  hubAuthHeaders,
  hubFileUrl,
} from '../../src/io/download.js';
import { resolveModelFiles } from '../../src/models/_hub.js';
import { ClipDissectError } from '../../src/numeric/errors.js';
import type { ProgressEvent } from '../../src/progress.js';
import { tempDir } from '../helpers/cli.js';
import { HF_FIXTURES, startHub, withEnv } from '../helpers/hub.js';

const T = { timeout: 20_000 };
const BODY = Buffer.from(Array.from({ length: 300_000 }, (_, i) => (i * 7919) % 251));
const sha256 = (b: Uint8Array) => createHash('sha256').update(b).digest('hex');
const md5 = (b: Uint8Array) => createHash('md5').update(b).digest('hex');
/** The last progress event of a complete download of BODY. */
const finished = (stage: string): ProgressEvent => ({
  stage,
  done: BODY.length,
  total: BODY.length,
  unit: 'bytes',
});

describe('downloadFile', () => {
  // a loopback server: each path is one behaviour
  const open = new Set<ServerResponse>();
  const server = createServer((req, res) => {
    const path = req.url ?? '';
    if (path === '/file.bin') return res.writeHead(200, { 'content-length': BODY.length }).end(BODY);
    if (path === '/no-length.bin') {
      res.writeHead(200);
      res.write(BODY.subarray(0, 1000));
      return res.end(BODY.subarray(1000));
    }
    if (path === '/etag.bin')
      return res
        .writeHead(200, { 'content-length': BODY.length, 'x-linked-etag': `"${'0'.repeat(64)}"` })
        .end(BODY);
    if (path === '/short.bin') {
      // announces more than it sends, then closes the connection
      res.writeHead(200, { 'content-length': BODY.length * 2 });
      res.write(BODY);
      return setTimeout(() => res.socket?.destroy(), 20);
    }
    if (path === '/stall.bin') {
      // sends the first part, then nothing until the client gives up
      res.writeHead(200, { 'content-length': BODY.length });
      res.write(BODY.subarray(0, 70_000));
      open.add(res);
      return;
    }
    if (path === '/private.bin') return res.writeHead(401).end();
    if (path === '/forbidden.bin') return res.writeHead(403).end();
    if (path === '/teapot.bin') return res.writeHead(503).end();
    if (path === '/auth.bin') return res.writeHead(200).end(req.headers.authorization ?? 'none');
    res.writeHead(404).end();
  });
  let base = '';
  before(async () => {
    await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
    base = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
  });
  after(() => {
    for (const r of open) r.socket?.destroy();
    server.close();
  });
  const request = (dir: string, file: string, extra: Partial<DownloadRequest> = {}): DownloadRequest => ({
    url: `${base}/${file}`,
    path: join(dir, 'sub', file),
    label: `test file ${file}`,
    ...extra,
  });
  /** The folder's entries, hidden temporary files included. */
  const listing = (dir: string) => readdirSync(join(dir, 'sub')).sort();

  it('streams to the destination, records size and SHA-256, reports progress in bytes', T, async () => {
    const dir = tempDir();
    const events: ProgressEvent[] = [];
    const got = await downloadFile(request(dir, 'file.bin'), { onProgress: (e) => events.push(e) });
    assert.deepEqual(got, {
      url: `${base}/file.bin`,
      path: join(dir, 'sub', 'file.bin'),
      size: BODY.length,
      sha256: sha256(BODY),
      checkedAgainst: 'size',
    });
    assert.deepEqual(readFileSync(join(dir, 'sub', 'file.bin')), BODY);
    assert.deepEqual(listing(dir), ['file.bin']); // no temporary file left
    assert.ok(events.length >= 2 && events.every((e) => e.stage === 'download test file file.bin'));
    assert.ok(events.every((e) => e.unit === 'bytes' && e.total === BODY.length));
    assert.deepEqual(events.at(-1), finished('download test file file.bin'));
  });

  it('without a Content-Length reports total 0 until the last event, which has the size', T, async () => {
    const dir = tempDir();
    const events: ProgressEvent[] = [];
    const got = await downloadFile(request(dir, 'no-length.bin', { stage: 'fetch it' }), {
      onProgress: (e) => events.push(e),
    });
    assert.equal(got?.checkedAgainst, 'none');
    assert.ok(events.slice(0, -1).every((e) => e.total === 0 && e.stage === 'fetch it'));
    assert.deepEqual(events.at(-1), finished('fetch it'));
  });

  it('checks the expected SHA-256 and MD5', T, async () => {
    const dir = tempDir();
    const got = await downloadFile(
      request(dir, 'file.bin', {
        checks: [
          { algorithm: 'md5', value: md5(BODY).toUpperCase(), from: 'the published MD5' },
          { algorithm: 'sha256', value: sha256(BODY), from: 'a pin' },
        ],
      }),
    );
    assert.equal(got?.checkedAgainst, 'sha256');
    assert.equal(got?.md5, md5(BODY));
  });

  it(
    'refuses a hash mismatch: the temporary file is removed and an existing file left as it was',
    T,
    async () => {
      const dir = tempDir();
      mkdirSync(join(dir, 'sub'));
      writeFileSync(join(dir, 'sub', 'keep.txt'), '');
      writeFileSync(join(dir, 'sub', 'file.bin'), 'the old file');
      const want = 'ab'.repeat(32);
      await assert.rejects(
        downloadFile(
          request(dir, 'file.bin', { checks: [{ algorithm: 'sha256', value: want, from: 'a pin' }] }),
        ),
        (e: Error & { code?: string }) => {
          assert.ok(e instanceof DownloadError);
          assert.equal(e.code, 'ERR_DOWNLOAD');
          assert.equal(
            e.message,
            `cannot download test file file.bin from ${base}/file.bin: its SHA-256 is ${sha256(BODY)} but ${want} was expected (a pin); not using it (${BODY.length} bytes received)`,
          );
          return true;
        },
      );
      assert.equal(readFileSync(join(dir, 'sub', 'file.bin'), 'utf8'), 'the old file');
      assert.deepEqual(listing(dir), ['file.bin', 'keep.txt']);
      await assert.rejects(
        downloadFile(
          request(dir, 'file.bin', {
            path: join(dir, 'sub', 'other.bin'),
            checks: [{ algorithm: 'md5', value: '0'.repeat(32), from: 'the published MD5' }],
          }),
        ),
        /its MD5 is [0-9a-f]{32} but 0{32} was expected \(the published MD5\)/,
      );
      assert.deepEqual(listing(dir), ['file.bin', 'keep.txt']);
    },
  );

  it('checks the SHA-256 the server announces (X-Linked-Etag) and the announced length', T, async () => {
    const dir = tempDir();
    await assert.rejects(
      downloadFile(request(dir, 'etag.bin')),
      /etag\.bin: its SHA-256 is [0-9a-f]{64} but the server announced 0{64}; not using it/,
    );
    await assert.rejects(
      downloadFile(request(dir, 'short.bin')),
      new RegExp(
        `cannot download test file short\\.bin from ${base}/short\\.bin: (received ${BODY.length} bytes but the server announced ${BODY.length * 2}|the connection broke after \\d+ bytes)`,
      ),
    );
    assert.deepEqual(listing(dir), []);
  });

  it('explains HTTP 401, 403 and 404, naming the URL; a 404 may be accepted', T, async () => {
    const dir = tempDir();
    const cases: [string, RegExp][] = [
      [
        'private.bin',
        /HTTP 401 Unauthorized: the server refused access \(a private file, or a missing or wrong access token\)/,
      ],
      ['forbidden.bin', /HTTP 403 Forbidden: the server refused access/],
      [
        'missing.bin',
        /HTTP 404 Not Found: there is no such file at that address; check the URL or mirror; get it by hand$/,
      ],
      ['teapot.bin', /HTTP 503 Service Unavailable; get it by hand$/],
    ];
    for (const [file, why] of cases) {
      await assert.rejects(downloadFile(request(dir, file, { advice: 'get it by hand' })), (e: Error) => {
        assert.ok(
          e.message.startsWith(`cannot download test file ${file} from ${base}/${file}: `),
          e.message,
        );
        assert.match(e.message, why);
        return true;
      });
    }
    assert.equal(await downloadFile(request(dir, 'missing.bin', { allowNotFound: () => true })), undefined);
    // the caller's error type and explanation
    await assert.rejects(
      downloadFile(
        request(dir, 'private.bin', {
          error: (m, cause) => new ClipDissectError('ERR_MODEL_DOWNLOAD', m, { cause }),
          explainHttpError: (res) => `HTTP ${res.status}: set HF_TOKEN`,
        }),
      ),
      (e: Error & { code?: string }) =>
        e.code === 'ERR_MODEL_DOWNLOAD' && /: HTTP 401: set HF_TOKEN$/.test(e.message),
    );
    assert.deepEqual(readdirSync(dir), []); // nothing was created for a failed request
  });

  it('a destination that cannot be written names the download and the file', T, async () => {
    const dir = tempDir();
    writeFileSync(join(dir, 'sub'), 'a file where the folder should be');
    await assert.rejects(
      downloadFile(request(dir, 'file.bin')),
      new RegExp(
        `cannot download test file file\\.bin from ${base}/file\\.bin: cannot write .*sub/\\.file\\.bin\\.\\d+\\.[0-9a-f]{12}\\.download \\(`,
      ),
    );
  });

  it('a network failure names the URL and says what to check', T, async () => {
    const closed = createServer();
    await new Promise<void>((r) => closed.listen(0, '127.0.0.1', r));
    const port = (closed.address() as AddressInfo).port;
    await new Promise((r) => closed.close(r));
    await assert.rejects(
      downloadFile({ url: `http://127.0.0.1:${port}/x.bin`, path: join(tempDir(), 'x.bin'), label: 'x.bin' }),
      new RegExp(
        `cannot download x\\.bin from http://127\\.0\\.0\\.1:${port}/x\\.bin: fetch failed .*check the network`,
      ),
    );
  });

  it('an abort mid-stream rejects with the reason and leaves no partial file', T, async () => {
    const dir = tempDir();
    const controller = new AbortController();
    const pending = downloadFile(request(dir, 'stall.bin'), { signal: controller.signal });
    // the server sent part of the file and stalls: the temporary file exists when the abort comes
    await new Promise((r) => setTimeout(r, 300));
    assert.equal(listing(dir).filter((f) => /^\.stall\.bin\.\d+\.[0-9a-f]{12}\.download$/.test(f)).length, 1);
    controller.abort(new Error('stopped by the test'));
    await assert.rejects(pending, /stopped by the test/);
    assert.deepEqual(listing(dir), []);
    // an aborted signal stops before any request
    await assert.rejects(
      downloadFile(request(dir, 'file.bin'), { signal: AbortSignal.abort(new Error('already')) }),
      /already/,
    );
    assert.deepEqual(listing(dir), []);
  });

  it('hub URLs follow HF_ENDPOINT and the revision; HF_TOKEN is sent as a bearer token', T, async () => {
    await withEnv({ HF_ENDPOINT: 'http://mirror.test/', HF_TOKEN: 'hf_abc' }, async () => {
      assert.equal(hubFileUrl('a/b', 'onnx/m.onnx'), 'http://mirror.test/a/b/resolve/main/onnx/m.onnx');
      assert.equal(
        hubFileUrl('a/b', 'x y.json', { revision: 'refs/pr/1', baseUrl: base }),
        `${base}/a/b/resolve/refs%2Fpr%2F1/x%20y.json`,
      );
      assert.deepEqual(hubAuthHeaders(), { authorization: 'Bearer hf_abc' });
      assert.deepEqual(hubAuthHeaders('mine'), { authorization: 'Bearer mine' });
      const dir = tempDir();
      await downloadFile(request(dir, 'auth.bin', { headers: hubAuthHeaders() }));
      assert.equal(readFileSync(join(dir, 'sub', 'auth.bin'), 'utf8'), 'Bearer hf_abc');
    });
    await withEnv({ HF_ENDPOINT: undefined, HF_TOKEN: '' }, async () => {
      assert.equal(hubFileUrl('a/b', 'c'), 'https://huggingface.co/a/b/resolve/main/c');
      assert.deepEqual(hubAuthHeaders(), {});
    });
  });

  it('hub files: the signal of the hub options stops resolveModelFiles and leaves no file', T, async () => {
    const hub = await startHub({ 'test-org/resnet-tiny': { dir: join(HF_FIXTURES, 'resnet-tiny') } });
    try {
      const cacheDir = tempDir();
      const controller = new AbortController();
      const files = ['config.json', 'onnx/model.onnx'];
      const pending = resolveModelFiles('test-org/resnet-tiny', files, {
        cacheDir,
        baseUrl: hub.url,
        signal: controller.signal,
        // stop once the first file is in place
        onProgress: (e) => {
          if (e.stage.endsWith('config.json') && e.total > 0 && e.done === e.total)
            controller.abort(new Error('stop'));
        },
      });
      await assert.rejects(pending, /stop/);
      const dir = join(cacheDir, 'models', 'test-org', 'resnet-tiny');
      assert.deepEqual(readdirSync(dir).sort(), ['.clip-dissect', 'config.json']);
      assert.deepEqual(
        hub.requests.map((r) => r.path),
        ['/test-org/resnet-tiny/resolve/main/config.json'],
      );
    } finally {
      await hub.close();
    }
  });
});
