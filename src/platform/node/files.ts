/** The file-system port on Node's `fs`. */
import { type BigIntStats, constants, readFileSync, unlinkSync } from 'node:fs';
import * as fsp from 'node:fs/promises';
import { sep } from 'node:path';
import type { DirEntry, FileStat, FileSystem, OpenFile, OpenMode, RawDirEntry } from '../types.js';

/**
 * Milliseconds from a nanosecond time exactly as Node's own Stats computes them from the seconds and
 * nanoseconds it gets (`sec * 1e3 + nsec / 1e6` in doubles), so that one bigint stat gives both.
 */
function msOf(ns: bigint): number {
  const sec = ns / 1_000_000_000n;
  let nsec = ns % 1_000_000_000n;
  let s = sec;
  if (nsec < 0n) {
    nsec += 1_000_000_000n;
    s -= 1n;
  }
  return Number(s) * 1e3 + Number(nsec) / 1e6;
}

function toStat(st: BigIntStats): FileStat {
  return {
    size: Number(st.size),
    mtimeMs: msOf(st.mtimeNs),
    ctimeMs: msOf(st.ctimeNs),
    mtimeNs: st.mtimeNs,
    ctimeNs: st.ctimeNs,
    ino: Number(st.ino),
    dev: Number(st.dev),
    isFile: () => st.isFile(),
    isDirectory: () => st.isDirectory(),
    isSymbolicLink: () => st.isSymbolicLink(),
    isFIFO: () => st.isFIFO(),
    isSocket: () => st.isSocket(),
    isCharacterDevice: () => st.isCharacterDevice(),
    isBlockDevice: () => st.isBlockDevice(),
  };
}

async function statOf(path: string, link: boolean): Promise<FileStat> {
  return toStat(link ? await fsp.lstat(path, { bigint: true }) : await fsp.stat(path, { bigint: true }));
}

const OPEN_FLAGS: Record<OpenMode, string | number> = {
  r: 'r',
  'r-nonblocking': constants.O_RDONLY | (constants.O_NONBLOCK ?? 0),
  w: 'w',
  wx: 'wx',
  a: 'a',
};

function wrapHandle(fh: fsp.FileHandle): OpenFile {
  return {
    read: async (buffer, offset, length, position) =>
      (await fh.read(buffer, offset, length, position)).bytesRead,
    write: async (buffer, offset = 0, length = buffer.length - offset) =>
      (await fh.write(buffer, offset, length)).bytesWritten,
    writeText: (text) => fh.writeFile(text),
    stat: async () => toStat(await fh.stat({ bigint: true })),
    datasync: () => fh.datasync(),
    close: () => fh.close(),
  };
}

export const nodeFiles: FileSystem = {
  stat: (path) => statOf(path, false),
  lstat: (path) => statOf(path, true),
  readFile: async (path) => {
    const b = await fsp.readFile(path);
    return new Uint8Array(b.buffer, b.byteOffset, b.byteLength);
  },
  readText: (path) => fsp.readFile(path, 'utf8'),
  readAssetSync: (url) => {
    const b = readFileSync(url);
    return new Uint8Array(b.buffer, b.byteOffset, b.byteLength);
  },
  writeFile: (path, data) => fsp.writeFile(path, data),
  readdir: async (path): Promise<DirEntry[]> =>
    (await fsp.readdir(path, { withFileTypes: true })).map((e) => ({
      name: e.name,
      isFile: () => e.isFile(),
      isDirectory: () => e.isDirectory(),
      isSymbolicLink: () => e.isSymbolicLink(),
    })),
  mkdir: (path, options) => fsp.mkdir(path, { recursive: options?.recursive ?? false }),
  rename: (from, to) => fsp.rename(from, to),
  rm: (path, options) =>
    fsp.rm(path, { recursive: options?.recursive ?? false, force: options?.force ?? false }),
  rmdir: (path) => fsp.rmdir(path),
  removeSync: (path) => unlinkSync(path),
  link: (existingPath, newPath) => fsp.link(existingPath, newPath),
  realpath: (path) => fsp.realpath(path),
  utimes: (path, atime, mtime) => fsp.utimes(path, atime, mtime),
  checkWritable: (path) => fsp.access(path, constants.W_OK | constants.X_OK),
  open: async (path, mode) => wrapHandle(await fsp.open(path, OPEN_FLAGS[mode])),
  readChunks: (path, chunkBytes = 1 << 20) => readChunks(path, chunkBytes),
  readdirRaw: async (path): Promise<RawDirEntry[]> =>
    (await fsp.readdir(path, { withFileTypes: true, encoding: 'buffer' })).map((e) => {
      const name = e.name.toString('utf8');
      return {
        name,
        nameBytes: new Uint8Array(e.name.buffer, e.name.byteOffset, e.name.byteLength),
        nameIsUtf8: Buffer.from(name, 'utf8').equals(e.name),
        isFile: () => e.isFile(),
        isDirectory: () => e.isDirectory(),
        isSymbolicLink: () => e.isSymbolicLink(),
        isDirectoryFollowingLinks: async () =>
          e.isDirectory() ||
          (e.isSymbolicLink() &&
            (await fsp.stat(Buffer.concat([Buffer.from(`${path}${sep}`), e.name])).then(
              (s) => s.isDirectory(),
              () => false,
            ))),
      };
    }),
};

async function* readChunks(path: string, chunkBytes: number): AsyncIterable<Uint8Array> {
  const fh = await fsp.open(path, 'r');
  try {
    for (;;) {
      const buf = new Uint8Array(chunkBytes);
      const { bytesRead } = await fh.read(buf, 0, chunkBytes, null);
      if (bytesRead === 0) return;
      yield bytesRead === chunkBytes ? buf : buf.subarray(0, bytesRead);
    }
  } finally {
    await fh.close();
  }
}
