import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { existsSync, mkdirSync, readdirSync, readFileSync, writeFileSync } from 'node:fs';
import { hostname } from 'node:os';
import { join } from 'node:path';
import { describe, test } from 'node:test';
import { checkWritableFolder, LOCK_FILE, lockFolder, releaseHeldLocks } from '../../src/io/folders.js';
import { ArgumentError, ClipDissectError } from '../../src/numeric/errors.js';
import { tempDir } from '../helpers/cli.js';

describe('checkWritableFolder', () => {
  test('a folder that can be created passes without being created', async () => {
    const dir = tempDir();
    await checkWritableFolder(join(dir, 'a', 'b'), 'out');
    assert.ok(!existsSync(join(dir, 'a')));
    await checkWritableFolder(dir, 'out');
  });

  test('a file in the way, a file as an ancestor, a pseudo file system: ArgumentErrors naming the option', async () => {
    const dir = tempDir();
    const file = join(dir, 'f');
    writeFileSync(file, 'x');
    const fails = async (path: string, pattern: RegExp) =>
      assert.rejects(
        checkWritableFolder(path, 'cacheDir', 'cache'),
        (e: unknown) => e instanceof ArgumentError && e.option === 'cacheDir' && pattern.test(e.message),
      );
    await fails(file, /^'cacheDir' .*\/f is a file, not a folder: the cache cannot go there/);
    await fails(join(file, 'x', 'y'), /cannot be created as the cache: .*\/f is a file, not a folder/);
    await fails('/proc/1/x', /is under \/proc, a kernel pseudo file system/);
    await fails('/sys/x', /is under \/sys/);
    await fails('', /'cacheDir' must be a cache but got ""/);
  });
});

describe('lockFolder', () => {
  test('holds the pid, host, start and command; a second lock fails while it is held; release removes it', async () => {
    const dir = join(tempDir(), 'results');
    const lock = await lockFolder(dir, 'dissect');
    const info = JSON.parse(readFileSync(join(dir, LOCK_FILE), 'utf8'));
    assert.equal(info.pid, process.pid);
    assert.equal(info.host, hostname());
    assert.equal(info.command, 'dissect');
    assert.ok(Date.now() - Date.parse(info.started) < 60_000);
    await assert.rejects(
      lockFolder(dir, 'report'),
      (e: unknown) =>
        e instanceof ClipDissectError &&
        e.code === 'ERR_BUSY' &&
        e.message.startsWith(
          `results folder ${dir} is in use by pid ${process.pid} (started ${info.started}: dissect)`,
        ),
    );
    await lock.release();
    await lock.release(); // idempotent
    // the lock created the folder and nothing else was written there: it goes with the lock
    assert.ok(!existsSync(dir), 'the empty folder the lock created is removed');
    mkdirSync(dir);
    const again = await lockFolder(dir, 'report');
    await again.release();
    assert.deepEqual(readdirSync(dir), [], 'a folder that existed before stays');
  });

  test('a stale lock (a pid that has exited) is taken over by exactly one of several runs at once', async () => {
    const dir = tempDir();
    const dead = spawnSync(process.execPath, ['-e', '0']).pid as number;
    writeFileSync(join(dir, LOCK_FILE), JSON.stringify({ pid: dead, host: hostname(), started: 'then' }));
    const warnings: string[] = [];
    const runs = await Promise.allSettled(
      Array.from({ length: 4 }, () => lockFolder(dir, 'dissect', (w) => warnings.push(w))),
    );
    const won = runs.filter((r) => r.status === 'fulfilled');
    assert.equal(won.length, 1);
    for (const r of runs)
      if (r.status === 'rejected') assert.match(String(r.reason), new RegExp(`in use by pid ${process.pid}`));
    assert.ok(warnings.some((w) => w.includes(`locked by pid ${dead}`)));
    await (won[0] as PromiseFulfilledResult<Awaited<ReturnType<typeof lockFolder>>>).value.release();
    assert.deepEqual(readdirSync(dir), []);
  });

  test("another host's lock is never taken over; releaseHeldLocks() removes this process's locks", async () => {
    const dir = tempDir();
    writeFileSync(join(dir, LOCK_FILE), JSON.stringify({ pid: 1, host: 'elsewhere', started: 'then' }));
    await assert.rejects(
      lockFolder(dir, 'dissect'),
      /in use by pid 1 on elsewhere .*remove .* if that run is over/,
    );
    const mine = tempDir();
    await lockFolder(mine, 'dissect');
    releaseHeldLocks();
    assert.ok(!existsSync(join(mine, LOCK_FILE)));
  });
});
