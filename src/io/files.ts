/** Small file-system helpers shared by every layer: whether a path is a file, reading a JSON file, and a
 * short reason for a failed file operation to put in an error message. */
import { platform } from '#platform';
import { readRegularText } from './regular-file.js';

/** True when `path` exists and is a regular file (following links); false on any error. */
export async function isFile(path: string): Promise<boolean> {
  return (await platform.files.stat(path).catch(() => null))?.isFile() === true;
}

/**
 * Reads (as a regular file: readRegularText) and parses a JSON file. `fail` turns the read error (`kind` 'read') or the JSON syntax error
 * ('parse') into the error the caller throws, naming the file as its users know it; without `fail` that
 * error itself is thrown.
 */
export async function readJson<T = unknown>(
  path: string,
  fail: (kind: 'read' | 'parse', err: Error) => Error = (_kind, err) => err,
): Promise<T> {
  let text: string;
  try {
    text = await readRegularText(path);
  } catch (e) {
    throw fail('read', e as Error);
  }
  try {
    return JSON.parse(text) as T;
  } catch (e) {
    throw fail('parse', e as Error);
  }
}

/** The `code` of a file-system error ('ENOENT', 'EEXIST', ...; see src/platform/types.ts), if it has one. */
export function fsErrorCode(err: unknown): string | undefined {
  const code = (err as { code?: unknown } | null | undefined)?.code;
  return typeof code === 'string' ? code : undefined;
}

/** Why a file operation failed, for a message: 'no such file (ENOENT)', 'permission denied (EACCES)', ... */
export function describeFsError(err: unknown): string {
  const code = fsErrorCode(err);
  if (code === 'ENOENT') return 'no such file (ENOENT)';
  if (code === 'EISDIR') return 'it is a directory (EISDIR)';
  if (code === 'EACCES' || code === 'EPERM') return `permission denied (${code})`;
  return err instanceof Error ? err.message : String(err);
}
