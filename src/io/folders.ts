/**
 * Output and cache folders: a cheap check that a folder can be written (run before any expensive work), and
 * a lock that keeps two runs from writing one results folder at the same time.
 */

import { platform } from '#platform';
import { ArgumentError, ClipDissectError } from '../numeric/errors.js';
import { randomHex } from './atomic.js';
import { fsErrorCode } from './files.js';

const { files, host } = platform;
const { basename, dirname, join, resolve } = platform.paths;

/** Pseudo file systems of the kernel: writing results there fails or, worse, never ends. */
const PSEUDO_FS = ['/proc', '/sys', '/dev'];

function underPseudo(path: string): string | undefined {
  return PSEUDO_FS.find((p) => path === p || path.startsWith(`${p}/`));
}

/**
 * Checks, without creating anything, that `path` is a folder that exists and can be written, or one that can be
 * created: its nearest existing ancestor must be a writable folder. Throws an ArgumentError naming `option`
 * when given (quoted as `'out'`, `'cacheDir'`: see ArgumentError.option) and the path otherwise: a file in the way, a
 * folder without write permission, or a place under /proc, /sys or /dev.
 */
export async function checkWritableFolder(
  path: string,
  option: string | undefined,
  what = 'folder',
): Promise<void> {
  const name = option === undefined ? '' : `'${option}' `;
  if (typeof path !== 'string' || path === '')
    throw new ArgumentError(`${name}must be a ${what} but got ${JSON.stringify(path)}`, { option });
  const abs = resolve(path);
  let p = abs;
  for (;;) {
    const st = await files.stat(p).catch((e: Error) => {
      if (fsErrorCode(e) === 'ENOENT') return null;
      if (fsErrorCode(e) === 'ENOTDIR') return 'notdir' as const;
      throw new ArgumentError(`${name}${abs} cannot be used as the ${what}: ${fsErrorCode(e) ?? e.message}`, {
        option,
        cause: e,
      });
    });
    if (st === 'notdir') {
      // some ancestor is a file: find it to name it
      p = dirname(p);
      continue;
    }
    if (st !== null) {
      if (!st.isDirectory())
        throw new ArgumentError(
          p === abs
            ? `${name}${abs} is a file, not a folder: the ${what} cannot go there (remove or rename the file, or choose another folder)`
            : `${name}${abs} cannot be created as the ${what}: ${p} is a file, not a folder`,
          { option },
        );
      break;
    }
    const up = dirname(p);
    if (up === p) break;
    p = up;
  }
  const real = await files.realpath(p).catch(() => p);
  const pseudo = underPseudo(abs) ?? underPseudo(real);
  if (pseudo)
    throw new ArgumentError(
      `${name}${abs} is under ${pseudo}, a kernel pseudo file system: choose a folder on a disk for the ${what}`,
      { option },
    );
  try {
    await files.checkWritable(p);
  } catch (e) {
    throw new ArgumentError(
      p === abs
        ? `${name}${abs} is not writable (${fsErrorCode(e)}): choose a folder you can write for the ${what}`
        : `${name}${abs} cannot be created as the ${what}: ${p} is not writable (${fsErrorCode(e)})`,
      { option, cause: e },
    );
  }
}

/** The lock file of a results folder. */
export const LOCK_FILE = '.clip-dissect.lock';

/** What a lock file holds. */
export interface LockInfo {
  pid: number;
  host: string;
  /** ISO time the run started. */
  started: string;
  command: string;
}

/** A held lock: `release()` removes the lock file (idempotent). */
export interface FolderLock {
  readonly path: string;
  release(): Promise<void>;
}

/** Lock files this process holds; removed synchronously by releaseHeldLocks() (Ctrl-C, process exit). */
const held = new Set<string>();
let exitHook = false;

/**
 * Removes every lock file this process holds, synchronously. For signal handlers (the CLI calls it on Ctrl-C
 * before exiting); also run on the process's 'exit' event.
 */
export function releaseHeldLocks(): void {
  for (const p of held) {
    try {
      files.removeSync(p);
    } catch {
      // already gone
    }
  }
  held.clear();
}

/**
 * Takes the lock of the results folder `dir` (creating the folder): a file `.clip-dissect.lock` created
 * exclusively (see createExclusive: never seen empty), holding this process's pid, host, start time and
 * `command`. When another live run holds it, throws a ClipDissectError 'ERR_BUSY' naming its pid and start
 * time. A lock left by a dead process of this host is taken over, with a warning through `onWarning`; a lock
 * of another host (whose pid cannot be checked from here) or one without a pid is never taken over: the
 * message says to remove the file once that run is over.
 */
export async function lockFolder(
  dir: string,
  command: string,
  onWarning?: (message: string) => void,
): Promise<FolderLock> {
  // the first folder this call creates (undefined when `dir` existed): removed again on release if the run
  // left it empty, so that a run refused before writing anything leaves nothing behind
  const created = await files.mkdir(dir, { recursive: true });
  const path = join(dir, LOCK_FILE);
  const me: LockInfo = { pid: host.pid, host: host.hostname(), started: new Date().toISOString(), command };
  for (let attempt = 0; ; attempt++) {
    try {
      await createExclusive(path, `${JSON.stringify(me)}\n`);
      break;
    } catch (e) {
      if (fsErrorCode(e) !== 'EEXIST' || attempt >= 2) throw e;
    }
    const text = await files.readText(path).catch(() => null);
    if (text === null) continue; // released meanwhile
    let other: Partial<LockInfo> = {};
    try {
      other = JSON.parse(text) as Partial<LockInfo>;
    } catch {
      // being written right now, or damaged: treated as held by an unknown live run
    }
    const who = `pid ${other.pid ?? '?'}${other.host && other.host !== me.host ? ` on ${other.host}` : ''}`;
    const since = other.started
      ? ` (started ${other.started}${other.command ? `: ${other.command}` : ''})`
      : '';
    if (typeof other.pid === 'number' && other.host === me.host && !host.isProcessAlive(other.pid)) {
      // the stale lock is moved aside under a name of this process, and removed only if it is still the stale
      // one: a run that took it over meanwhile keeps its new lock
      const aside = `${path}.stale-${host.pid}-${randomHex(6)}`;
      const moved = await files.rename(path, aside).then(
        () => true,
        () => false,
      );
      if (moved) {
        if ((await files.readText(aside).catch(() => null)) === text) await files.rm(aside, { force: true });
        else {
          // not the stale lock but a live run's that came meanwhile: put it back (never over a newer one)
          await files.link(aside, path).catch(() => undefined);
          await files.rm(aside, { force: true });
        }
      }
      onWarning?.(
        `results folder ${dir} was locked by ${who}${since}, which is no longer running: lock taken over`,
      );
      continue;
    }
    throw new ClipDissectError(
      'ERR_BUSY',
      `results folder ${dir} is in use by ${who}${since}; wait for it or choose another --out` +
        ((other.host && other.host !== me.host) || typeof other.pid !== 'number'
          ? ` (remove ${path} if that run is over)`
          : ''),
    );
  }
  held.add(path);
  if (!exitHook) {
    exitHook = true;
    host.onExit(releaseHeldLocks);
  }
  let released = false;
  return {
    path,
    async release() {
      if (released) return;
      released = true;
      held.delete(path);
      await files.rm(path, { force: true });
      if (created !== undefined) await removeEmptyFolders(resolve(dir), resolve(created));
    },
  };
}

/** rmdir `dir` and its parents up to and including `top`, stopping at the first that is not empty. */
async function removeEmptyFolders(dir: string, top: string): Promise<void> {
  for (let d = dir; ; d = dirname(d)) {
    if (
      !(await files.rmdir(d).then(
        () => true,
        () => false,
      ))
    )
      return;
    if (d === top || dirname(d) === d) return;
  }
}

/**
 * Creates `path` holding `text`, failing with EEXIST when it exists. Readers never see it empty: the text is
 * written to a temporary file first, then hard-linked to `path` (link(2) is exclusive, like O_EXCL). Where hard
 * links are not supported, the file is created with O_EXCL and written.
 */
async function createExclusive(path: string, text: string): Promise<void> {
  const tmp = join(dirname(path), `.tmp-${host.pid}-${randomHex(6)}-${basename(path)}`);
  await writeNew(tmp, text);
  try {
    await files.link(tmp, path);
    return;
  } catch (e) {
    const code = fsErrorCode(e);
    if (code !== 'EPERM' && code !== 'ENOTSUP' && code !== 'EOPNOTSUPP' && code !== 'ENOSYS') throw e;
  } finally {
    await files.rm(tmp, { force: true });
  }
  await writeNew(path, text);
}

/** Creates `path` holding `text`, failing with EEXIST when it exists (O_EXCL). */
async function writeNew(path: string, text: string): Promise<void> {
  const fh = await files.open(path, 'wx');
  try {
    await fh.writeText(text);
  } finally {
    await fh.close();
  }
}

/** Runs `fn` holding the lock of the results folder `dir` (see lockFolder); the lock goes in any case. */
export async function withFolderLock<T>(
  dir: string,
  command: string,
  onWarning: ((message: string) => void) | undefined,
  fn: () => Promise<T>,
): Promise<T> {
  const lock = await lockFolder(dir, command, onWarning);
  try {
    return await fn();
  } finally {
    await lock.release();
  }
}
