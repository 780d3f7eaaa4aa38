/**
 * The Node adapter behind `#platform`, through the port interfaces only (integration: real files, real
 * sharp, real worker threads).
 */
import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { statSync } from 'node:fs';
import { mkdtemp, readFile, rm, stat, symlink, utimes, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import { platform } from '#platform';

const FIXTURES = new URL('../../../test/fixtures/images/', import.meta.url);

describe('platform (Node adapter)', () => {
  let dir = '';
  before(async () => {
    dir = await mkdtemp(join(tmpdir(), 'cd-platform-'));
  });
  after(async () => {
    await rm(dir, { recursive: true, force: true });
  });

  test('files: write, stat, read in chunks, exclusive open and link, errors keep their POSIX code', async () => {
    const { files, paths } = platform;
    const p = paths.join(dir, 'a.bin');
    const bytes = new Uint8Array(3000).map((_, i) => i % 251);
    await files.writeFile(p, bytes);
    const st = await files.stat(p);
    assert.equal(st.size, 3000);
    assert.ok(st.isFile() && !st.isDirectory() && !st.isFIFO());
    assert.equal(typeof st.mtimeNs, 'bigint');
    const chunks: Uint8Array[] = [];
    for await (const c of files.readChunks(p, 1024)) chunks.push(c.slice());
    assert.deepEqual(
      chunks.map((c) => c.length),
      [1024, 1024, 952],
    );
    assert.deepEqual(Buffer.concat(chunks), Buffer.from(bytes));
    await assert.rejects(files.open(p, 'wx'), { code: 'EEXIST' });
    await assert.rejects(files.link(p, p), { code: 'EEXIST' });
    await assert.rejects(files.stat(paths.join(dir, 'missing')), { code: 'ENOENT' });
    const fh = await files.open(p, 'r-nonblocking');
    try {
      const buf = new Uint8Array(10);
      assert.equal(await fh.read(buf, 0, 10, 2990), 10);
      assert.deepEqual(buf, bytes.subarray(2990));
    } finally {
      await fh.close();
    }
    const names = (await files.readdir(dir)).map((e) => e.name);
    assert.deepEqual(names, ['a.bin']);
  });

  test("files: one bigint stat gives the same numbers as Node's Stats (ms times to the last bit)", async () => {
    const p = join(dir, 'times.bin');
    await writeFile(p, 'x');
    // fractional milliseconds, and a time before 1970
    for (const t of [1733567890.123456, 1.5e9 + 0.000789, -12345.678901]) {
      await utimes(p, t, t);
      const want = statSync(p);
      const got = await platform.files.stat(p);
      for (const k of ['mtimeMs', 'ctimeMs', 'size', 'ino', 'dev'] as const)
        assert.equal(got[k], want[k], `${k} at ${t}`);
      assert.equal(got.mtimeNs, statSync(p, { bigint: true }).mtimeNs);
    }
  });

  test('hashing: incremental SHA-256 equals one-shot', () => {
    const h = platform.hashing.sha256();
    h.update(new TextEncoder().encode('clip-')).update(new TextEncoder().encode('dissect'));
    assert.equal(h.digestHex(), createHash('sha256').update('clip-dissect').digest('hex'));
  });

  test('images: header and raw decode of a real PNG; a WebP thumbnail', async () => {
    const bytes = new Uint8Array(await readFile(new URL('gray16.png', FIXTURES)));
    const h = await platform.images.header(bytes);
    assert.equal(h.format, 'png');
    assert.equal(h.space, 'grey16');
    const raw = await platform.images.decodeRaw(bytes, 'grey16');
    assert.equal(raw.data.length, raw.width * raw.height * raw.channels * 2);
    const thumb = await platform.images.thumbnailWebp(bytes, 16, 80);
    assert.equal(new TextDecoder().decode(thumb.subarray(8, 12)), 'WEBP');
    assert.ok(platform.images.inputFormats().includes('jpeg'));
    await assert.rejects(platform.images.header(new Uint8Array([1, 2, 3, 4])));
  });

  test('workers: a worker gets its data, answers and exits', async () => {
    const script = join(dir, 'echo-worker.mjs');
    await writeFile(
      script,
      `import { platform } from ${JSON.stringify(new URL('../../src/platform/node/index.js', import.meta.url).href)};
const ch = platform.workers.parent();
ch.onMessage((m) => { ch.postMessage({ got: m, data: ch.data }); });`,
    );
    assert.equal(platform.workers.parent(), undefined);
    const w = platform.workers.spawn(new URL(`file://${script}`), { k: 7 });
    const reply = await new Promise((resolve, reject) => {
      w.onMessage(resolve);
      w.onError(reject);
      w.postMessage('hi');
    });
    assert.deepEqual(reply, { got: 'hi', data: { k: 7 } });
    await w.terminate();
  });

  test('host: cores, pid, environment, exit hooks', () => {
    const { host } = platform;
    assert.ok(host.availableParallelism() >= 1);
    assert.equal(host.pid, process.pid);
    assert.ok(host.isProcessAlive(process.pid));
    assert.equal(host.env('PATH'), process.env['PATH']);
    assert.deepEqual(host.runtimeVersions, { node: process.version });
    const off = host.onExit(() => undefined);
    off();
  });

  test('files.readdirRaw: name bytes as stored, non-UTF-8 names told apart, links followed; stat ctimeNs; hashing.md5', async () => {
    const { files, paths } = platform;
    const raw = paths.join(dir, 'raw');
    await files.mkdir(paths.join(raw, 'sub'), { recursive: true });
    await writeFile(Buffer.concat([Buffer.from(`${raw}/`), Buffer.from([0x64, 0xff])]), 'x'); // 'd\xff'
    await symlink(paths.join(raw, 'sub'), paths.join(raw, 'link'));
    await symlink(paths.join(raw, 'missing'), paths.join(raw, 'broken'));
    const entries = (await files.readdirRaw(raw)).sort((a, b) => Buffer.compare(a.nameBytes, b.nameBytes));
    assert.deepEqual(
      await Promise.all(
        entries.map(async (e) => [
          Array.from(e.nameBytes),
          e.nameIsUtf8,
          e.isDirectory(),
          await e.isDirectoryFollowingLinks(),
        ]),
      ),
      [
        [Array.from(Buffer.from('broken')), true, false, false],
        [[0x64, 0xff], false, false, false],
        [Array.from(Buffer.from('link')), true, false, true],
        [Array.from(Buffer.from('sub')), true, true, true],
      ],
    );
    const st = await files.stat(paths.join(raw, 'sub'));
    assert.equal(st.ctimeNs, (await stat(paths.join(raw, 'sub'), { bigint: true })).ctimeNs);
    const h = platform.hashing.md5();
    h.update(new TextEncoder().encode('clip-')).update(new TextEncoder().encode('dissect'));
    assert.equal(h.digestHex(), createHash('md5').update('clip-dissect').digest('hex'));
  });
});
