/**
 * Model files from a local folder or from the Hugging Face hub. A hub id (`owner/name`) is cached in
 * `<cacheDir>/models/<owner>/<name>/` (`<name>@<revision>` for a revision other than `main`), each file
 * downloaded on first use from `<endpoint>/<owner>/<name>/resolve/<revision>/<file>` (endpoint: `baseUrl`, else
 * the HF_ENDPOINT environment variable, else https://huggingface.co; with `Authorization: Bearer <token>` when a
 * token is given or HF_TOKEN is set), streamed to a temporary file in the same folder and renamed into place
 * once complete (so that an interrupted download never leaves a partial file under the final name). When the
 * server sends the file's SHA-256 (`X-Linked-Etag` of files in Git LFS) or its length, the download is checked
 * against it. Each downloaded file's size and SHA-256 are recorded in `<model folder>/.clip-dissect/<file>.json`,
 * and each use touches `.clip-dissect/last-used` (for `clip-dissect cache`). Optional files that the hub does
 * not have (HTTP 404) are remembered by an empty `.clip-dissect/<file>.absent`, so that offline runs know them
 * absent instead of guessing.
 */
import { platform } from '#platform';
import { writeFileAtomic } from '../io/atomic.js';
import { defaultCacheDir } from '../io/cache-dir.js';
import { LAST_USED, markUsed, RECORD_DIR, writeDownloadRecord } from '../io/cache-files.js';
import { downloadFile, hubAuthHeaders, hubEndpoint, hubFileUrl } from '../io/download.js';
import { isFile } from '../io/files.js';

export { hubFileUrl };

import { ClipDissectError } from '../numeric/errors.js';
import type { ProgressCallback } from '../progress.js';

export interface HubOptions {
  /** Where hub models are cached (in `models/<id>/`). Default: defaultCacheDir(). */
  cacheDir?: string;
  /** Never touch the network: every file of a hub model must already be in the cache. */
  offline?: boolean;
  /** The fetch implementation (default: global fetch). */
  fetch?: typeof fetch;
  /** Replaces https://huggingface.co (a mirror, or a local server in tests). Default: HF_ENDPOINT, if set. */
  baseUrl?: string;
  /** The branch, tag or commit to download (default 'main'). */
  revision?: string;
  /** A Hugging Face access token for private or gated models (default: the HF_TOKEN environment variable). */
  token?: string;
  /** Files of `files` that a model may lack: missing from a folder, or HTTP 404 from the hub, is not an error. */
  optional?: readonly string[];
  /** Download progress in bytes, one stage per file (`download <id>/<file>`). */
  onProgress?: ProgressCallback;
  /** What the model is, for messages (default 'CLIP'). */
  modelKind?: string;
  /** Stops a download: its temporary file is removed and the promise rejects with the signal's reason. */
  signal?: AbortSignal;
}

export interface ResolvedModel {
  /** The folder that holds the files. */
  readonly dir: string;
  /** The hub id, or undefined for a local folder. */
  readonly hubId?: string;
  /** The revision downloaded (hub ids only). */
  readonly revision?: string;
  /** The optional files that the model lacks. */
  readonly absent: readonly string[];
}

/** The marker that records an optional file as absent from the hub. */
function absentMarker(dir: string, file: string): string {
  return platform.paths.join(dir, RECORD_DIR, `${file}.absent`);
}

/** Where a hub model's files are cached. */
export function hubCacheDir(id: string, options: Pick<HubOptions, 'cacheDir' | 'revision'> = {}): string {
  const [owner, name] = id.split('/');
  const rev = options.revision ?? 'main';
  return platform.paths.join(
    options.cacheDir ?? defaultCacheDir(),
    'models',
    owner,
    rev === 'main' ? name : `${name}@${encodeURIComponent(rev)}`,
  );
}

function checkRevision(revision: string | undefined): void {
  if (revision === undefined) return;
  if (
    typeof revision !== 'string' ||
    revision === '' ||
    revision.split('/').some((p) => p === '' || p === '.' || p === '..') ||
    /[\s\\?#%]/.test(revision)
  )
    throw new ClipDissectError(
      'ERR_ARGUMENT',
      `the revision must be a branch, tag or commit of the model (e.g. 'main', 'v1.0', a commit hash) but got ${JSON.stringify(revision)}`,
    );
}

const HUB_ID = /^[A-Za-z0-9][A-Za-z0-9._-]*\/[A-Za-z0-9][A-Za-z0-9._-]*$/;

/** Whether `s` has the form of a hub model id (`owner/name`). */
export function isHubId(s: string): boolean {
  return HUB_ID.test(s) && !s.split('/').some((p) => p === '.' || p === '..' || p.endsWith('.git'));
}

async function isDir(path: string): Promise<boolean> {
  try {
    return (await platform.files.stat(path)).isDirectory();
  } catch {
    return false;
  }
}

/**
 * Makes sure that `files` (paths relative to the model folder) exist: a local folder is used as it is (a
 * missing file is an error); a hub id is looked up in the cache and its missing files downloaded. Files are
 * fetched one after the other, in the order given.
 */
export async function resolveModelFiles(
  idOrDir: string,
  files: readonly string[],
  options: HubOptions = {},
): Promise<ResolvedModel> {
  if (typeof idOrDir !== 'string' || idOrDir.trim() === '') {
    throw new ClipDissectError(
      'ERR_ARGUMENT',
      `the model must be a folder or a Hugging Face model id such as 'Xenova/clip-vit-base-patch16' but got ${JSON.stringify(idOrDir)}`,
    );
  }
  checkRevision(options.revision);
  const optional = new Set(options.optional ?? []);
  const absent: string[] = [];
  if (await isDir(idOrDir)) {
    const dir = platform.paths.resolve(idOrDir);
    const missing: string[] = [];
    for (const f of files)
      if (!(await isFile(platform.paths.join(dir, f)))) (optional.has(f) ? absent : missing).push(f);
    if (missing.length > 0) {
      throw new ClipDissectError(
        'ERR_MODEL_FILES',
        `model folder ${dir} lacks ${missing.join(', ')}; a ${options.modelKind ?? 'CLIP'} model folder has the transformers.js layout (${files.join(', ')})`,
      );
    }
    return { dir, absent };
  }
  if (!isHubId(idOrDir)) {
    throw new ClipDissectError(
      'ERR_MODEL_FILES',
      `model '${idOrDir}' is neither a folder nor a Hugging Face model id (owner/name, e.g. 'Xenova/clip-vit-base-patch16')`,
    );
  }
  const dir = platform.paths.resolve(hubCacheDir(idOrDir, options)); // absolute: args.json records it for later commands
  const revision = options.revision ?? 'main';
  for (const f of files) {
    const path = platform.paths.join(dir, f);
    if (await isFile(path)) continue;
    if (optional.has(f) && (await isFile(absentMarker(dir, f)))) {
      absent.push(f);
      continue;
    }
    const url = hubFileUrl(idOrDir, f, options);
    if (options.offline) {
      throw new ClipDissectError(
        'ERR_OFFLINE',
        `model '${idOrDir}': ${f} is not in the cache folder ${dir} and offline mode forbids downloading it; run once without --offline, or download ${url} into that folder yourself`,
      );
    }
    const got = await downloadHubFile(
      dir,
      { id: idOrDir, file: f, revision, optional: optional.has(f) },
      options,
    );
    if (!got) {
      absent.push(f);
      await writeFileAtomic(absentMarker(dir, f), '', { fsync: false });
    }
  }
  await markUsed(platform.paths.join(dir, RECORD_DIR, LAST_USED), true);
  return { dir, hubId: idOrDir, revision, absent };
}

/**
 * What to do about an HTTP error of the hub: why (from the status and Hugging Face's X-Error-Code header) and
 * what the user can do about it.
 */
function hubHttpErrorText(
  res: Response,
  what: { id: string; file: string; revision: string },
  tokenSent: boolean,
  endpoint: string,
): string {
  const code = res.headers.get('x-error-code') ?? '';
  const status = `HTTP ${res.status}${res.statusText ? ` ${res.statusText}` : ''}${code ? `, ${code}` : ''}`;
  const page = `${endpoint}/${what.id}`;
  if (res.status === 401 || res.status === 403 || code === 'GatedRepo') {
    return tokenSent
      ? `${status}: the token was refused or has no access to model '${what.id}'; check HF_TOKEN, and accept the model's terms on ${page} if it is gated (or the id is wrong: the hub answers 401 for models that do not exist)`
      : `${status}: model '${what.id}' is private or gated, or does not exist; set HF_TOKEN to an access token (https://huggingface.co/settings/tokens) of an account that may read it, or check the id`;
  }
  if (res.status === 404) {
    if (code === 'RepoNotFound') return `${status}: there is no model '${what.id}'; check the id`;
    if (code === 'RevisionNotFound')
      return `${status}: model '${what.id}' has no revision '${what.revision}'; check --revision`;
    return `${status}: model '${what.id}' has no file ${what.file} at revision '${what.revision}' (or no such model); check the id, the revision and the files on ${page}`;
  }
  return status;
}

/**
 * Downloads one hub file into `dir` through the verified downloader; its size and SHA-256 are recorded just
 * before it is renamed into place (for `clip-dissect cache verify`). false: an optional file the hub does not
 * have (HTTP 404, not a missing repository or revision).
 */
async function downloadHubFile(
  dir: string,
  what: { id: string; file: string; revision: string; optional: boolean },
  options: HubOptions,
): Promise<boolean> {
  const headers = hubAuthHeaders(options.token);
  const got = await downloadFile(
    {
      url: hubFileUrl(what.id, what.file, options),
      path: platform.paths.join(dir, what.file),
      label: `${what.id}/${what.file}`,
      headers,
      fetch: options.fetch,
      error: (message, cause) => new ClipDissectError('ERR_MODEL_DOWNLOAD', message, { cause }),
      unreachableHint: 'the endpoint (HF_ENDPOINT), or pass a local folder',
      explainHttpError: (res) =>
        hubHttpErrorText(res, what, headers.authorization !== undefined, hubEndpoint(options.baseUrl)),
      allowNotFound: (res) => {
        const code = res.headers.get('x-error-code');
        return what.optional && code !== 'RepoNotFound' && code !== 'RevisionNotFound';
      },
      beforeRename: (r) =>
        writeDownloadRecord(dir, {
          file: what.file,
          url: r.url,
          size: r.size,
          sha256: r.sha256,
          checkedAgainst: r.checkedAgainst === 'md5' ? 'none' : r.checkedAgainst,
          downloadedAt: new Date().toISOString(),
          version: 1,
        }),
    },
    { onProgress: options.onProgress, signal: options.signal },
  );
  return got !== undefined;
}
