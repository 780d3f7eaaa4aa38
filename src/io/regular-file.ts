/**
 * Reading input files that must be regular files. A FIFO, socket or device given as an input (or found in a
 * probe folder, a cache or a results folder) is refused before it is opened for reading: opening a FIFO waits
 * for a writer, and reading /dev/zero never ends. Reads are bounded by the size the file has when opened.
 */

import { platform } from '#platform';
import { ArgumentError, ClipDissectError } from '../numeric/errors.js';
import type { FileStat } from '../platform/types.js';
import { fsErrorCode } from './files.js';

/** An input path that exists but is not a regular file (code 'ERR_NOT_REGULAR_FILE'). */
export class NotRegularFileError extends ClipDissectError {
  constructor(message: string) {
    super('ERR_NOT_REGULAR_FILE', message);
  }
}

/** What kind of file system entry `st` is, for messages: 'a FIFO (named pipe)', 'a character device'… */
export function fileTypeName(
  st: Pick<
    FileStat,
    'isFile' | 'isDirectory' | 'isFIFO' | 'isSocket' | 'isCharacterDevice' | 'isBlockDevice'
  >,
): string {
  if (st.isFile()) return 'a regular file';
  if (st.isDirectory()) return 'a folder';
  if (st.isFIFO()) return 'a FIFO (named pipe)';
  if (st.isSocket()) return 'a socket';
  if (st.isCharacterDevice()) return 'a character device';
  if (st.isBlockDevice()) return 'a block device';
  return 'not a regular file';
}

function notRegular(path: string, st: FileStat): NotRegularFileError {
  return new NotRegularFileError(
    `${path} is ${fileTypeName(st)}, not a regular file; clip-dissect reads only regular files (a pipe or device could block or never end)`,
  );
}

/** A folder read as a file: the error readFile gives (code EISDIR), so that callers keep their messages. */
function isDirError(path: string): Error & { code: string; path: string } {
  return Object.assign(new Error(`EISDIR: illegal operation on a directory, read '${path}'`), {
    code: 'EISDIR',
    path,
  });
}

/**
 * The stat of `path` (symbolic links followed) when it is a regular file; otherwise the error readFile would
 * give (not found, permission, EISDIR for a folder), or a NotRegularFileError for a FIFO, socket or device.
 */
export async function regularFileStat(path: string): Promise<FileStat> {
  const st = await platform.files.stat(path);
  if (st.isDirectory()) throw isDirError(path);
  if (!st.isFile()) throw notRegular(path, st);
  return st;
}

/**
 * The whole content of the regular file `path` (symbolic links followed). Not-found and permission problems
 * throw Node's own errors (with `code`), a folder throws an EISDIR error as readFile does, and a FIFO, socket
 * or device throws a NotRegularFileError without being opened for a blocking read.
 */
export async function readRegularFile(path: string): Promise<Uint8Array> {
  await regularFileStat(path);
  // non-blocking: should the path become a FIFO between the stat and the open, the open does not wait
  const fh = await platform.files.open(path, 'r-nonblocking');
  try {
    const fst = await fh.stat();
    if (fst.isDirectory()) throw isDirError(path);
    if (!fst.isFile()) throw notRegular(path, fst);
    const buf = new Uint8Array(fst.size);
    let off = 0;
    while (off < buf.length) {
      const bytesRead = await fh.read(buf, off, buf.length - off, off);
      if (bytesRead === 0) break;
      off += bytesRead;
    }
    return off === buf.length ? buf : buf.subarray(0, off);
  } finally {
    await fh.close();
  }
}

/** The regular file `path` as UTF-8 text (errors as {@link readRegularFile}). */
export async function readRegularText(path: string): Promise<string> {
  return new TextDecoder().decode(await readRegularFile(path));
}

/**
 * A UTF-8 text input file (a list, a JSON file) named `what` in errors: an ArgumentError "`what` 'path' cannot be
 * read (ENOENT)" (then `hint`, when given), or one naming a FIFO, socket or device, which is never opened.
 */
export async function readTextInput(path: string, what: string, hint = ''): Promise<string> {
  try {
    return await readRegularText(path);
  } catch (e) {
    if (e instanceof NotRegularFileError) throw new ArgumentError(`${what} ${e.message}`);
    throw new ArgumentError(
      `${what} '${path}' cannot be read (${fsErrorCode(e) ?? (e as Error).message})${hint}`,
    );
  }
}
