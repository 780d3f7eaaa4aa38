/**
 * Bookkeeping files of the cache folder (default ~/.cache/clip-dissect) that `clip-dissect cache` reads: a
 * record of every model file downloaded from the hub (its size and SHA-256, in
 * `models/<owner>/<name>/.clip-dissect/<file>.json`), when a cached entry was last used (a file's
 * modification time, set on use), and the names of the temporary files an interrupted write leaves.
 */

import { platform } from '#platform';
import { TEMP_NAME, writeFileAtomic } from './atomic.js';
import { fsErrorCode } from './files.js';
import { readRegularFile } from './regular-file.js';

/** The folder inside a cached model's folder that holds the download records and the last-use stamp. */
export const RECORD_DIR = '.clip-dissect';

/** Touched each time a cached hub model is used: its modification time is the model's last use. */
export const LAST_USED = 'last-used';

/**
 * Temporary files of atomic writes (`.tmp-<pid>-<12 hex digits>-<name>`, see TEMP_NAME; earlier versions wrote
 * `<name>.<pid>.<12 hex digits>.tmp`), model downloads (`.download`) and dataset downloads (`.part`):
 * `<name>.<pid>.<12 hex digits>.<suffix>`. Present only while a write runs, or after it was interrupted.
 */
export const TEMP_FILE = new RegExp(`${TEMP_NAME.source}|\\.\\d+\\.[0-9a-f]{12}\\.(tmp|download|part)$`);

/** What the cache knows about a downloaded model file. */
export interface DownloadRecord {
  /** The file, relative to the model folder (`onnx/vision_model.onnx`). */
  file: string;
  url: string;
  size: number;
  /** SHA-256 (hex) of the bytes written. */
  sha256: string;
  /** What the download was checked against: the server's SHA-256, its announced length, or nothing. */
  checkedAgainst: 'sha256' | 'size' | 'none';
  /** ISO 8601. */
  downloadedAt: string;
  version: 1;
}

export function downloadRecordPath(modelDir: string, file: string): string {
  return platform.paths.join(modelDir, RECORD_DIR, `${file}.json`);
}

export async function writeDownloadRecord(modelDir: string, record: DownloadRecord): Promise<void> {
  await writeFileAtomic(downloadRecordPath(modelDir, record.file), `${JSON.stringify(record, null, 1)}\n`);
}

/** The record of a downloaded file; undefined when there is none or it is not a record clip-dissect wrote. */
export async function readDownloadRecord(
  modelDir: string,
  file: string,
): Promise<DownloadRecord | undefined> {
  try {
    const r = JSON.parse(
      new TextDecoder().decode(await readRegularFile(downloadRecordPath(modelDir, file))),
    ) as DownloadRecord;
    return r?.version === 1 &&
      r.file === file &&
      typeof r.size === 'number' &&
      /^[0-9a-f]{64}$/.test(r.sha256)
      ? r
      : undefined;
  } catch {
    return undefined;
  }
}

/**
 * Records a use of a cached entry: sets `path`'s access and modification times to now (`create`: making an
 * empty file when it is missing). Best effort: a read-only cache is used all the same.
 */
export async function markUsed(path: string, create = false): Promise<void> {
  const now = new Date();
  try {
    await platform.files.utimes(path, now, now);
  } catch (e) {
    if (!create || fsErrorCode(e) !== 'ENOENT') return;
    await writeFileAtomic(path, '', { fsync: false }).catch(() => undefined);
  }
}
