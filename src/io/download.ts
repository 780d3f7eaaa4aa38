/**
 * The one verified downloader (hub model files, built-in concept sets, built-in probe datasets): the body is
 * streamed to a hidden temporary file next to the destination (`.<name>.<pid>.<12 hex digits>.download`, which
 * `clip-dissect cache` recognises as a leftover), hashed while it streams (SHA-256 always, MD5 when a check
 * asks for it), checked against the expected hashes and the announced length, flushed, then renamed into
 * place; on any failure or abort the temporary file is removed and the destination is left as it was.
 * Progress goes through the usual callback in bytes (the CLI renders MB, rate and ETA). Hugging Face hub URLs
 * come from {@link hubFileUrl} (HF_ENDPOINT, revision) with {@link hubAuthHeaders} (HF_TOKEN).
 */
import { platform } from '#platform';
import { ClipDissectError } from '../numeric/errors.js';
import type { ProgressCallback } from '../progress.js';
import { randomHex } from './atomic.js';
import { describeFsError } from './files.js';

const HUB_URL = 'https://huggingface.co';

/** A hash the download must have. */
export interface DownloadCheck {
  algorithm: 'sha256' | 'md5';
  /** Hex digest (any case). */
  value: string;
  /** Where the value comes from, for the message when it does not match: 'the server' (then "the server
   * announced X"), or e.g. 'the published MD5' (then "X was expected (the published MD5)"). */
  from: string;
}

export interface DownloadRequest {
  url: string;
  /** The destination file; missing parent folders are created. */
  path: string;
  /** What is downloaded, for messages (`cannot download <label> from <url>: …`). */
  label: string;
  /** The progress stage (default `download <label>`). */
  stage?: string;
  /** Extra request headers (e.g. from hubAuthHeaders). */
  headers?: Record<string, string>;
  /** The fetch implementation (default: global fetch). */
  fetch?: typeof fetch;
  /** Hashes the file must have (in addition to the one the server announces in X-Linked-Etag, if any). */
  checks?: readonly DownloadCheck[];
  /** Also compute the MD5 (to record it) when no check asks for it. */
  md5?: boolean;
  /** What the user can do when the download fails (appended to the message), e.g. 'download it yourself'. */
  advice?: string;
  /** What to check when the server cannot be reached: "check the network and <this>" (default 'the address'). */
  unreachableHint?: string;
  /** Explains an HTTP error better than the generic text (the hub: repository, revision, gated model). */
  explainHttpError?: (res: Response) => string | undefined;
  /** HTTP 404 is not an error: the download returns undefined (an optional file the server does not have). */
  allowNotFound?: (res: Response) => boolean;
  /** Called with the result after every check passed, just before the rename (a crash in between leaves a
   * record without its file, which is downloaded again). */
  beforeRename?: (result: DownloadResult) => Promise<void>;
  /** Makes the error thrown (default: ClipDissectError 'ERR_DOWNLOAD'). */
  error?: (message: string, cause?: unknown) => Error;
}

export interface DownloadResult {
  url: string;
  path: string;
  size: number;
  /** SHA-256 (hex) of the bytes written. */
  sha256: string;
  /** MD5 (hex), when a check or `md5` asked for it. */
  md5?: string;
  /** What the download was checked against: a known hash, the announced length, or nothing. */
  checkedAgainst: 'sha256' | 'md5' | 'size' | 'none';
}

export interface DownloadHooks {
  /** Bytes received, at most ~100 events per file; the last one has `done === total` (the file size). */
  onProgress?: ProgressCallback;
  /** Stops the download: the temporary file is removed and the promise rejects with the signal's reason. */
  signal?: AbortSignal;
}

/** An error of the downloader (code 'ERR_DOWNLOAD') when the request does not say which error to throw. */
export class DownloadError extends ClipDissectError {
  constructor(message: string, options?: { cause?: unknown }) {
    super('ERR_DOWNLOAD', message, options);
  }
}

/** The endpoint hub files come from: `baseUrl`, else HF_ENDPOINT, else https://huggingface.co. */
export function hubEndpoint(baseUrl?: string): string {
  const env = platform.host.env('HF_ENDPOINT');
  return (baseUrl ?? (env !== undefined && env !== '' ? env : HUB_URL)).replace(/\/+$/, '');
}

/** The URL of one file of a hub model at a revision (default 'main'). */
export function hubFileUrl(id: string, file: string, options: { baseUrl?: string; revision?: string } = {}) {
  const rev = encodeURIComponent(options.revision ?? 'main');
  return `${hubEndpoint(options.baseUrl)}/${id}/resolve/${rev}/${file.split('/').map(encodeURIComponent).join('/')}`;
}

/** `Authorization: Bearer <token>` for `token`, else HF_TOKEN when set; {} without a token. */
export function hubAuthHeaders(token?: string): Record<string, string> {
  const env = platform.host.env('HF_TOKEN');
  const t = token ?? (env !== undefined && env !== '' ? env : undefined);
  return t !== undefined ? { authorization: `Bearer ${t}` } : {};
}

/**
 * A hidden temporary name next to `path`, unique to this process and call: `.<name>.<pid>.<12 hex digits>.<suffix>`
 * (what `clip-dissect cache` lists as a partial file, see TEMP_FILE in cache-files.ts).
 */
export function temporarySibling(path: string, suffix: 'download' | 'part'): string {
  const { paths } = platform;
  return paths.join(
    paths.dirname(path),
    `.${paths.basename(path)}.${platform.host.pid}.${randomHex(6)}.${suffix}`,
  );
}

/** An error's message with its cause's (undici's "fetch failed" says why only in its cause). */
function errorText(e: unknown): string {
  const msg = (e as Error)?.message ?? String(e);
  const cause = (e as { cause?: unknown })?.cause;
  const why = cause instanceof Error ? cause.message : undefined;
  return why && why !== msg ? `${msg} (${why})` : msg;
}

/** `HTTP 404 Not Found` and what it means for a download. */
function httpErrorText(res: Response): string {
  const status = `HTTP ${res.status}${res.statusText ? ` ${res.statusText}` : ''}`;
  if (res.status === 401 || res.status === 403)
    return `${status}: the server refused access (a private file, or a missing or wrong access token)`;
  if (res.status === 404) return `${status}: there is no such file at that address; check the URL or mirror`;
  return status;
}

/**
 * Downloads `request.url` to `request.path` (see the module comment). Resolves to what was written, or to
 * undefined when `allowNotFound` accepted an HTTP 404. Errors name the label, the URL and why.
 */
export async function downloadFile(
  request: DownloadRequest,
  hooks: DownloadHooks = {},
): Promise<DownloadResult | undefined> {
  const { url, path, label, signal } = { ...request, signal: hooks.signal };
  const stage = request.stage ?? `download ${label}`;
  const fail = (why: string, cause?: unknown): never => {
    const message = `cannot download ${label} from ${url}: ${why}${request.advice ? `; ${request.advice}` : ''}`;
    throw request.error ? request.error(message, cause) : new DownloadError(message, { cause });
  };
  signal?.throwIfAborted();
  let res: Response;
  try {
    res = await (request.fetch ?? fetch)(url, { redirect: 'follow', headers: request.headers ?? {}, signal });
  } catch (e) {
    signal?.throwIfAborted();
    return fail(`${errorText(e)}; check the network and ${request.unreachableHint ?? 'the address'}`, e);
  }
  if (!res.ok) {
    await res.body?.cancel().catch(() => undefined);
    if (res.status === 404 && request.allowNotFound?.(res)) return undefined;
    return fail(request.explainHttpError?.(res) ?? httpErrorText(res));
  }
  const lengthHeader = res.headers.get('content-length');
  const expectedLength =
    lengthHeader !== null && /^\d+$/.test(lengthHeader) ? Number(lengthHeader) : undefined;
  // x-linked-size is the LFS object's size (hub); content-length may describe a compressed body.
  const linkedSize = res.headers.get('x-linked-size');
  const total = linkedSize !== null && /^\d+$/.test(linkedSize) ? Number(linkedSize) : (expectedLength ?? 0);
  const checks: DownloadCheck[] = [...(request.checks ?? [])];
  const etag = (res.headers.get('x-linked-etag') ?? '').replace(/^W\//, '').replace(/"/g, '');
  if (/^[0-9a-f]{64}$/.test(etag)) checks.push({ algorithm: 'sha256', value: etag, from: 'the server' });

  const { files, paths } = platform;
  const tmp = temporarySibling(path, 'download');
  // file-system failures (no space, no permission) name the file as well as the download
  const write = async <T>(op: () => Promise<T>): Promise<T> => {
    try {
      return await op();
    } catch (e) {
      return fail(`cannot write ${tmp} (${describeFsError(e)})`, e);
    }
  };
  await write(() => files.mkdir(paths.dirname(path), { recursive: true }));
  let renamed = false;
  let received = 0;
  try {
    const fh = await write(() => files.open(tmp, 'wx'));
    const sha = platform.hashing.sha256();
    const md5 = request.md5 || checks.some((c) => c.algorithm === 'md5') ? platform.hashing.md5() : undefined;
    let lastReport = -1;
    // total 0 while the size is unknown (no Content-Length); the last event has the size received
    const report = (force: boolean, last = false) => {
      const step = Math.max(total / 100, 1 << 20);
      if (force || received - lastReport >= step) {
        lastReport = received;
        const all = last ? received : total > 0 ? Math.max(total, received) : 0;
        hooks.onProgress?.({ stage, done: received, total: all, unit: 'bytes' });
      }
    };
    let result: DownloadResult;
    try {
      report(true);
      if (res.body) {
        const reader = res.body.getReader();
        let ended = false;
        try {
          for (;;) {
            let chunk: Awaited<ReturnType<typeof reader.read>>;
            try {
              chunk = await reader.read();
            } catch (e) {
              signal?.throwIfAborted();
              return fail(`the connection broke after ${received} bytes (${errorText(e)})`, e);
            }
            if (chunk.done) {
              ended = true;
              break;
            }
            signal?.throwIfAborted();
            const bytes = chunk.value;
            sha.update(bytes);
            md5?.update(bytes);
            let off = 0;
            while (off < bytes.length) off += await write(() => fh.write(bytes, off, bytes.length - off));
            received += bytes.length;
            report(false);
          }
        } finally {
          // stopped early (abort, write error): release the connection
          if (!ended) await reader.cancel().catch(() => undefined);
        }
      }
      if (
        total > 0 &&
        received !== total &&
        (linkedSize !== null || res.headers.get('content-encoding') === null)
      )
        fail(`received ${received} bytes but the server announced ${total}`);
      const digests = { sha256: sha.digestHex(), md5: md5?.digestHex() };
      for (const c of checks) {
        const got = digests[c.algorithm];
        const want = c.value.toLowerCase();
        if (got !== want) {
          const name = c.algorithm === 'md5' ? 'MD5' : 'SHA-256';
          fail(
            `its ${name} is ${got} but ${c.from === 'the server' ? `the server announced ${want}` : `${want} was expected (${c.from})`}; not using it (${received} bytes received)`,
          );
        }
      }
      await write(() => fh.datasync());
      result = {
        url,
        path,
        size: received,
        ...digests,
        checkedAgainst: checks.some((c) => c.algorithm === 'sha256')
          ? 'sha256'
          : checks.length > 0
            ? 'md5'
            : total > 0
              ? 'size'
              : 'none',
      };
      if (result.md5 === undefined) delete result.md5;
    } finally {
      await fh.close();
    }
    await request.beforeRename?.(result);
    signal?.throwIfAborted();
    await write(() => files.rename(tmp, path));
    renamed = true;
    report(true, true);
    return result;
  } finally {
    if (!renamed) await files.rm(tmp, { force: true }).catch(() => undefined);
  }
}
