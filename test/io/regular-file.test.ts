import assert from 'node:assert/strict';
import { mkdirSync, symlinkSync, writeFileSync } from 'node:fs';
import { createServer } from 'node:net';
import { join } from 'node:path';
import { describe, it } from 'node:test';
import { readNpy } from '../../src/io/npy.js';
import {
  NotRegularFileError,
  readRegularFile,
  readRegularText,
  readTextInput,
  regularFileStat,
} from '../../src/io/regular-file.js';
import { ArgumentError } from '../../src/numeric/errors.js';
import { tempDir } from '../helpers/cli.js';
import { makeFifo } from '../helpers/data.js';

// a hang (a blocking open of a FIFO, an endless read of /dev/zero) fails the test instead of stalling the run
const T = { timeout: 10_000 };

describe('readRegularFile', () => {
  it('reads a regular file, through a symbolic link too', T, async () => {
    const dir = tempDir();
    writeFileSync(join(dir, 'a.txt'), 'héllo');
    symlinkSync('a.txt', join(dir, 'link.txt'));
    for (const name of ['a.txt', 'link.txt']) {
      const bytes = await readRegularFile(join(dir, name));
      assert.ok(bytes instanceof Uint8Array);
      assert.deepEqual([...bytes], [...Buffer.from('héllo')]);
      assert.equal(await readRegularText(join(dir, name)), 'héllo');
      assert.equal((await regularFileStat(join(dir, name))).size, 6);
    }
  });
  it('refuses a FIFO without opening it (an open would wait for a writer)', T, async () => {
    const fifo = makeFifo(join(tempDir(), 'pipe.npy'));
    await assert.rejects(readRegularFile(fifo), (e: unknown) => {
      assert.ok(e instanceof NotRegularFileError);
      assert.equal(e.code, 'ERR_NOT_REGULAR_FILE');
      assert.match(e.message, /pipe\.npy is a FIFO \(named pipe\), not a regular file/);
      return true;
    });
  });
  it('refuses /dev/zero (a read would never end) and a socket', T, async () => {
    await assert.rejects(
      readRegularFile('/dev/zero'),
      /\/dev\/zero is a character device, not a regular file/,
    );
    const sock = join(tempDir(), 's.sock');
    const server = createServer();
    await new Promise<void>((res) => server.listen(sock, res));
    try {
      await assert.rejects(readRegularFile(sock), /s\.sock is a socket, not a regular file/);
    } finally {
      server.close();
    }
  });
  it("keeps readFile's errors for a missing file and a folder", T, async () => {
    const dir = tempDir();
    mkdirSync(join(dir, 'd'));
    await assert.rejects(readRegularFile(join(dir, 'nope')), { code: 'ENOENT' });
    await assert.rejects(readRegularFile(join(dir, 'd')), { code: 'EISDIR' });
  });
  it('readNpy refuses a FIFO and /dev/zero, naming them', T, async () => {
    const fifo = makeFifo(join(tempDir(), 'A.npy'));
    await assert.rejects(readNpy(fifo), /A\.npy is a FIFO \(named pipe\), not a regular file/);
    await assert.rejects(readNpy('/dev/zero'), NotRegularFileError);
  });
  it('readTextInput: an ArgumentError naming the input, for a missing file and for a FIFO', T, async () => {
    const dir = tempDir();
    writeFileSync(join(dir, 'gt.txt'), 'dog\ncat\n');
    assert.equal(await readTextInput(join(dir, 'gt.txt'), 'ground-truth file'), 'dog\ncat\n');
    await assert.rejects(
      readTextInput(join(dir, 'nope.txt'), 'ground-truth file', '; hint'),
      (e: unknown) => {
        assert.ok(e instanceof ArgumentError);
        assert.match(e.message, /^ground-truth file '.*nope\.txt' cannot be read \(ENOENT\); hint$/);
        return true;
      },
    );
    const fifo = makeFifo(join(dir, 'labels.csv'));
    await assert.rejects(readTextInput(fifo, 'labels file'), (e: unknown) => {
      assert.ok(e instanceof ArgumentError);
      assert.match(e.message, /^labels file .*labels\.csv is a FIFO \(named pipe\), not a regular file/);
      return true;
    });
  });
});
