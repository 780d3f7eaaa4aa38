import assert from 'node:assert/strict';
import { readdirSync } from 'node:fs';
import { mkdir, mkdtemp, readdir, readFile, rm, stat, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, test } from 'node:test';
import { isTempName, writeFileAtomic } from '../../src/io/atomic.js';

describe('writeFileAtomic', () => {
  let dir = '';
  beforeEach(async () => {
    dir = await mkdtemp(join(tmpdir(), 'atomic-test-'));
  });
  afterEach(async () => {
    await rm(dir, { recursive: true, force: true });
  });

  test('writes a string as UTF-8', async () => {
    const path = join(dir, 'a.txt');
    await writeFileAtomic(path, 'héllo ✓\n');
    assert.equal(await readFile(path, 'utf8'), 'héllo ✓\n');
    assert.deepEqual(await readdir(dir), ['a.txt']);
  });

  test('writes a Uint8Array (including a view with an offset)', async () => {
    const path = join(dir, 'b.bin');
    const backing = Uint8Array.from({ length: 100 }, (_, i) => i);
    await writeFileAtomic(path, backing.subarray(10, 20));
    assert.deepEqual([...(await readFile(path))], [10, 11, 12, 13, 14, 15, 16, 17, 18, 19]);
  });

  test('writes an iterable of chunks in order, including empty chunks', async () => {
    const path = join(dir, 'c.bin');
    function* chunks() {
      yield Uint8Array.of(1, 2);
      yield new Uint8Array(0);
      yield Uint8Array.of(3);
      yield Buffer.from([4, 5, 6]);
    }
    await writeFileAtomic(path, chunks());
    assert.deepEqual([...(await readFile(path))], [1, 2, 3, 4, 5, 6]);
  });

  test('an empty iterable makes an empty file', async () => {
    const path = join(dir, 'empty.bin');
    await writeFileAtomic(path, []);
    assert.equal((await stat(path)).size, 0);
  });

  test('many large chunks (64 MiB) are written without loss', async () => {
    const path = join(dir, 'big.bin');
    const chunk = new Uint8Array(1 << 20);
    function* chunks() {
      for (let i = 0; i < 64; i++) {
        chunk.fill(i); // the same buffer refilled: a chunk must be written before the next is produced
        yield chunk;
      }
    }
    await writeFileAtomic(path, chunks(), { fsync: false });
    const back = await readFile(path);
    assert.equal(back.length, 64 << 20);
    for (let i = 0; i < 64; i++) {
      assert.equal(back[i << 20], i);
      assert.equal(back[((i + 1) << 20) - 1], i);
    }
  });

  test('creates missing parent directories', async () => {
    const path = join(dir, 'x', 'y', 'z', 'd.txt');
    await writeFileAtomic(path, 'deep');
    assert.equal(await readFile(path, 'utf8'), 'deep');
  });

  test('replaces an existing file', async () => {
    const path = join(dir, 'e.txt');
    await writeFile(path, 'old content that is longer');
    await writeFileAtomic(path, 'new');
    assert.equal(await readFile(path, 'utf8'), 'new');
    assert.deepEqual(await readdir(dir), ['e.txt']);
  });

  test('a failing iterable leaves the old file and no temporary file', async () => {
    const path = join(dir, 'f.txt');
    await writeFile(path, 'keep me');
    function* failing() {
      yield Buffer.from('partial');
      throw new Error('producer failed');
    }
    await assert.rejects(writeFileAtomic(path, failing()), /producer failed/);
    assert.equal(await readFile(path, 'utf8'), 'keep me');
    assert.deepEqual(await readdir(dir), ['f.txt']);
  });

  test('failing rename (target is a directory) removes the temporary file', async () => {
    const path = join(dir, 'g');
    await mkdir(path);
    await assert.rejects(writeFileAtomic(path, 'data'), (err: NodeJS.ErrnoException) => {
      assert.ok(['EISDIR', 'EPERM', 'ENOTEMPTY', 'EEXIST'].includes(err.code!), err.code);
      return true;
    });
    assert.deepEqual(await readdir(dir), ['g']);
  });

  test('concurrent writers to one path: the result is one complete write, no leftovers', async () => {
    const path = join(dir, 'h.bin');
    const payloads = Array.from({ length: 8 }, (_, i) => new Uint8Array(256 * 1024).fill(i + 1));
    await Promise.all(payloads.map((p) => writeFileAtomic(path, [p.subarray(0, 1000), p.subarray(1000)])));
    const back = await readFile(path);
    assert.equal(back.length, 256 * 1024);
    assert.ok(back.every((b) => b === back[0]));
    assert.deepEqual(await readdir(dir), ['h.bin']);
  });

  test('temporary file name is hidden, unique and in the same directory: .tmp-<pid>-<random>-<name>', async () => {
    const path = join(dir, 'i.txt');
    const seen: string[] = [];
    function* spy() {
      yield Buffer.from('a');
      seen.push(...readdirSync(dir)); // between two chunks only the temporary file exists
      yield Buffer.from('b');
    }
    await writeFileAtomic(path, spy());
    assert.equal(seen.length, 1);
    assert.match(seen[0], new RegExp(`^\\.tmp-${process.pid}-[0-9a-f]{12}-i\\.txt$`));
    assert.ok(isTempName(seen[0]));
    assert.ok(!isTempName('i.txt'));
    assert.equal(await readFile(path, 'utf8'), 'ab');
  });
});
