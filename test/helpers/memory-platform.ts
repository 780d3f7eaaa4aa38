/**
 * A second platform for the core: files live in memory (a Map of POSIX paths under /mem), the host is a
 * fixed one; image decoding, hashing and worker threads are the Node adapter's. test/platform/
 * memory-platform.test.ts runs library jobs with `#platform` resolved to this module (memory-platform-hooks)
 * to show that the core reaches files only through the ports: a job that wrote one byte to the real disk or
 * read one from it outside the package's own assets would fail there.
 */
import * as posix from 'node:path/posix';
import { platform as nodePlatform } from '../../src/platform/node/index.js';
import type {
  DirEntry,
  FileStat,
  FileSystem,
  Host,
  OpenFile,
  OpenMode,
  Paths,
  Platform,
  RawDirEntry,
} from '../../src/platform/types.js';

interface Entry {
  kind: 'file' | 'dir';
  data: Uint8Array;
  mtimeMs: number;
  ctimeMs: number;
  ino: number;
}

const CWD = '/mem/work';
let inodes = 1;
const clock = () => Date.now();

function fsError(code: string, op: string, path: string): Error {
  return Object.assign(new Error(`${code}: ${op} '${path}'`), { code, syscall: op, path });
}

const entries = new Map<string, Entry>([['/', dir()]]);

function dir(): Entry {
  const t = clock();
  return { kind: 'dir', data: new Uint8Array(0), mtimeMs: t, ctimeMs: t, ino: inodes++ };
}

function norm(p: string): string {
  return posix.resolve(CWD, p);
}

function get(p: string, op: string): Entry {
  const e = entries.get(norm(p));
  if (!e) throw fsError('ENOENT', op, p);
  return e;
}

function parentDir(p: string, op: string): void {
  const parent = entries.get(posix.dirname(norm(p)));
  if (!parent) throw fsError('ENOENT', op, p);
  if (parent.kind !== 'dir') throw fsError('ENOTDIR', op, p);
}

function children(p: string): string[] {
  const base = norm(p);
  const prefix = base === '/' ? '/' : `${base}/`;
  return [...entries.keys()].filter(
    (k) => k !== base && k.startsWith(prefix) && !k.slice(prefix.length).includes('/'),
  );
}

function statOf(e: Entry): FileStat {
  return {
    size: e.data.length,
    mtimeMs: e.mtimeMs,
    ctimeMs: e.ctimeMs,
    mtimeNs: BigInt(Math.round(e.mtimeMs * 1e6)),
    ctimeNs: BigInt(Math.round(e.ctimeMs * 1e6)),
    ino: e.ino,
    dev: 1,
    isFile: () => e.kind === 'file',
    isDirectory: () => e.kind === 'dir',
    isSymbolicLink: () => false,
    isFIFO: () => false,
    isSocket: () => false,
    isCharacterDevice: () => false,
    isBlockDevice: () => false,
  };
}

function writeInto(e: Entry, bytes: Uint8Array, at: number): void {
  const end = at + bytes.length;
  if (end > e.data.length) {
    const grown = new Uint8Array(end);
    grown.set(e.data);
    e.data = grown;
  }
  e.data.set(bytes, at);
  e.mtimeMs = e.ctimeMs = clock();
}

function newFile(p: string): Entry {
  const t = clock();
  const e: Entry = { kind: 'file', data: new Uint8Array(0), mtimeMs: t, ctimeMs: t, ino: inodes++ };
  entries.set(norm(p), e);
  return e;
}

function dirEntry(path: string, name: string): DirEntry {
  const e = entries.get(posix.join(norm(path), name)) as Entry;
  return {
    name,
    isFile: () => e.kind === 'file',
    isDirectory: () => e.kind === 'dir',
    isSymbolicLink: () => false,
  };
}

const files: FileSystem = {
  stat: async (p) => statOf(get(p, 'stat')),
  lstat: async (p) => statOf(get(p, 'lstat')),
  readFile: async (p) => {
    const e = get(p, 'open');
    if (e.kind === 'dir') throw fsError('EISDIR', 'read', p);
    return e.data.slice();
  },
  readText: async (p) => new TextDecoder().decode(await files.readFile(p)),
  // code assets (the WebAssembly kernels, the report page) come with the package, not from the user's files
  readAssetSync: (url) => nodePlatform.files.readAssetSync(url),
  writeFile: async (p, data) => {
    parentDir(p, 'open');
    const e = entries.get(norm(p)) ?? newFile(p);
    if (e.kind === 'dir') throw fsError('EISDIR', 'open', p);
    e.data = new Uint8Array(0);
    writeInto(e, typeof data === 'string' ? new TextEncoder().encode(data) : data, 0);
  },
  readdir: async (p) => {
    if (get(p, 'scandir').kind !== 'dir') throw fsError('ENOTDIR', 'scandir', p);
    return children(p)
      .map((k) => posix.basename(k))
      .sort()
      .map((name) => dirEntry(p, name));
  },
  readdirRaw: async (p) =>
    (await files.readdir(p)).map(
      (d): RawDirEntry => ({
        ...d,
        nameBytes: new TextEncoder().encode(d.name),
        nameIsUtf8: true,
        isDirectoryFollowingLinks: async () => d.isDirectory(),
      }),
    ),
  mkdir: async (p, options) => {
    const target = norm(p);
    if (entries.has(target)) {
      if (options?.recursive && (entries.get(target) as Entry).kind === 'dir') return undefined;
      throw fsError('EEXIST', 'mkdir', p);
    }
    if (!options?.recursive) {
      parentDir(p, 'mkdir');
      entries.set(target, dir());
      return undefined;
    }
    let first: string | undefined;
    const parts = target.split('/').filter(Boolean);
    for (let i = 1; i <= parts.length; i++) {
      const q = `/${parts.slice(0, i).join('/')}`;
      const e = entries.get(q);
      if (e && e.kind !== 'dir') throw fsError('ENOTDIR', 'mkdir', p);
      if (!e) {
        entries.set(q, dir());
        first ??= q;
      }
    }
    return first;
  },
  rename: async (from, to) => {
    const src = norm(from);
    const dst = norm(to);
    get(from, 'rename');
    parentDir(to, 'rename');
    for (const k of [...entries.keys()]) {
      if (k === src || k.startsWith(`${src}/`)) {
        entries.set(dst + k.slice(src.length), entries.get(k) as Entry);
        entries.delete(k);
      }
    }
  },
  rm: async (p, options) => {
    const target = norm(p);
    const e = entries.get(target);
    if (!e) {
      if (options?.force) return;
      throw fsError('ENOENT', 'rm', p);
    }
    if (e.kind === 'dir' && !options?.recursive) throw fsError('EISDIR', 'rm', p);
    for (const k of [...entries.keys()]) if (k === target || k.startsWith(`${target}/`)) entries.delete(k);
  },
  rmdir: async (p) => {
    if (get(p, 'rmdir').kind !== 'dir') throw fsError('ENOTDIR', 'rmdir', p);
    if (children(p).length > 0) throw fsError('ENOTEMPTY', 'rmdir', p);
    entries.delete(norm(p));
  },
  removeSync: (p) => {
    get(p, 'unlink');
    entries.delete(norm(p));
  },
  link: async (existing, newPath) => {
    const e = get(existing, 'link');
    if (entries.has(norm(newPath))) throw fsError('EEXIST', 'link', newPath);
    parentDir(newPath, 'link');
    entries.set(norm(newPath), e);
  },
  realpath: async (p) => {
    get(p, 'realpath');
    return norm(p);
  },
  utimes: async (p, _atime, mtime) => {
    get(p, 'utime').mtimeMs = mtime.getTime();
  },
  checkWritable: async (p) => {
    get(p, 'access');
  },
  open: async (p, mode: OpenMode): Promise<OpenFile> => {
    let e: Entry;
    if (mode === 'r' || mode === 'r-nonblocking') e = get(p, 'open');
    else {
      parentDir(p, 'open');
      const existing = entries.get(norm(p));
      if (existing && mode === 'wx') throw fsError('EEXIST', 'open', p);
      e = existing ?? newFile(p);
      if (mode === 'w') e.data = new Uint8Array(0);
    }
    if (e.kind === 'dir' && mode !== 'r' && mode !== 'r-nonblocking') throw fsError('EISDIR', 'open', p);
    let position = mode === 'a' ? e.data.length : 0;
    return {
      read: async (buffer, offset, length, at) => {
        const from = at ?? position;
        const n = Math.max(0, Math.min(length, e.data.length - from));
        buffer.set(e.data.subarray(from, from + n), offset);
        if (at === null) position += n;
        return n;
      },
      write: async (buffer, offset = 0, length = buffer.length - offset) => {
        writeInto(e, buffer.subarray(offset, offset + length), position);
        position += length;
        return length;
      },
      writeText: async (text) => {
        const bytes = new TextEncoder().encode(text);
        writeInto(e, bytes, position);
        position += bytes.length;
      },
      stat: async () => statOf(e),
      datasync: async () => undefined,
      close: async () => undefined,
    };
  },
  readChunks: (p, chunkBytes = 1 << 20) =>
    (async function* () {
      const data = await files.readFile(p);
      for (let at = 0; at < data.length; at += chunkBytes) yield data.subarray(at, at + chunkBytes);
    })(),
};

const paths: Paths = {
  sep: '/',
  join: (...parts) => posix.join(...parts),
  resolve: (...parts) => posix.resolve(CWD, ...parts),
  relative: (from, to) => posix.relative(norm(from), norm(to)),
  dirname: (p) => posix.dirname(p),
  basename: (p, suffix) => posix.basename(p, suffix),
  extname: (p) => posix.extname(p),
  isAbsolute: (p) => posix.isAbsolute(p),
  normalize: (p) => posix.normalize(p),
  fromFileUrl: (url) => nodePlatform.paths.fromFileUrl(url),
};

const PID = 4242;
const host: Host = {
  availableParallelism: () => nodePlatform.host.availableParallelism(),
  arch: nodePlatform.host.arch,
  cpuFlags: () => nodePlatform.host.cpuFlags(),
  env: () => undefined,
  homedir: () => '/mem/home',
  hostname: () => 'memory',
  pid: PID,
  cwd: () => CWD,
  runtimeVersions: { memory: '1' },
  isProcessAlive: (pid) => pid === PID,
  onExit: () => () => undefined,
};

export const platform: Platform = {
  name: 'memory',
  files,
  paths,
  images: nodePlatform.images,
  hashing: nodePlatform.hashing,
  workers: nodePlatform.workers,
  host,
};

/** Every path in the memory file system (for the tests). */
export function memoryPaths(): string[] {
  return [...entries.keys()].sort();
}
