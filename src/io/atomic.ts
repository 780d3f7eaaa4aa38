import { platform } from '#platform';
import type { OpenFile } from '../platform/types.js';

const { files, paths } = platform;

/** Options of {@link writeFileAtomic}. */
export interface WriteFileAtomicOptions {
  /**
   * Flush the file's data to disk (`fdatasync`) before the rename, so that a crash right after cannot leave
   * an empty or partial file under the final name. Default true; tests and scratch output may turn it off.
   */
  fsync?: boolean;
}

/** How the temporary files of writeFileAtomic start. */
const TEMP_PREFIX = '.tmp-';

/** A temporary file of writeFileAtomic (a name, or a path ending in one): `.tmp-<pid>-<12 hex digits>-<name>`. */
export const TEMP_NAME = /(?:^|[\\/])\.tmp-\d+-[0-9a-f]{12}-[^\\/]*$/;

/** Whether a file name (or path) is a temporary file of writeFileAtomic, possibly another process's. */
export function isTempName(name: string): boolean {
  return TEMP_NAME.test(name);
}

/** `bytes` random bytes as lowercase hex digits, for unique temporary names. */
export function randomHex(bytes: number): string {
  let hex = '';
  for (const b of crypto.getRandomValues(new Uint8Array(bytes))) hex += b.toString(16).padStart(2, '0');
  return hex;
}

/** The most bytes handed to one `write` call (a single write of more than 2 GiB fails on some platforms). */
const MAX_WRITE = 1 << 30;

/**
 * Writes `data` to `path` atomically: readers see either the old file or the complete new one, never a
 * partial write. The data goes to `.tmp-<pid>-<random>-<name>` in the same directory (so the rename stays
 * on one file system; a hidden name unique to this process and call, so that concurrent writers of one path
 * never share a temporary file and listings of the folder can skip it: see isTempName), is flushed, then renamed over `path`. Missing parent directories are created. On any
 * failure the temporary file is removed and `path` is left as it was.
 *
 * An iterable of chunks is written chunk by chunk, never concatenated, so hundreds of megabytes cost no
 * extra memory. A string is written as UTF-8.
 */
export async function writeFileAtomic(
  path: string,
  data: Uint8Array | string | Iterable<Uint8Array>,
  options: WriteFileAtomicOptions = {},
): Promise<void> {
  const fsync = options.fsync ?? true;
  const dir = paths.dirname(path);
  await files.mkdir(dir, { recursive: true });
  const tmp = paths.join(
    dir,
    `${TEMP_PREFIX}${platform.host.pid}-${randomHex(6)}-${paths.basename(path).slice(0, 200)}`,
  );
  let renamed = false;
  try {
    const fh = await files.open(tmp, 'wx');
    try {
      if (typeof data === 'string') await writeAll(fh, new TextEncoder().encode(data));
      else if (data instanceof Uint8Array) await writeAll(fh, data);
      else for (const chunk of data) await writeAll(fh, chunk);
      if (fsync) await fh.datasync();
    } finally {
      await fh.close();
    }
    await files.rename(tmp, path);
    renamed = true;
  } finally {
    if (!renamed) await files.rm(tmp, { force: true }).catch(() => undefined);
  }
}

/** Writes all of `bytes` at the current position, looping over short writes and capping each call. */
async function writeAll(fh: OpenFile, bytes: Uint8Array): Promise<void> {
  let offset = 0;
  while (offset < bytes.length) {
    const length = Math.min(MAX_WRITE, bytes.length - offset);
    offset += await fh.write(bytes, offset, length);
  }
}
