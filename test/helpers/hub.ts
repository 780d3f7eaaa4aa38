/**
 * A loopback Hugging Face hub: a node:http server on 127.0.0.1 that serves model folders as
 * `/<owner>/<name>/resolve/<revision>/<file>`, answering like huggingface.co does (404 with X-Error-Code
 * RepoNotFound / RevisionNotFound / EntryNotFound, 401 for a private repository without a good token) and
 * recording each request with its Authorization header.
 */
import { readFile } from 'node:fs/promises';
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';

/** The tiny Hugging Face targets written by scripts/export_hf_target.py. */
export const HF_FIXTURES = fileURLToPath(new URL('../../../test/fixtures/hf/', import.meta.url));

export interface HubRepo {
  /** The folder served for revision 'main'. */
  dir: string;
  /** Other revisions (branch, tag or commit) and their folders. */
  revisions?: Record<string, string>;
  /** Only requests with `Authorization: Bearer <token>` may read it (a private or gated model). */
  token?: string;
  /** Extra files: path in the repository → path on disk. */
  alias?: Record<string, string>;
}

export interface LoopbackHub {
  /** http://127.0.0.1:<port> */
  url: string;
  /** Every request: its path and Authorization header. */
  requests: { path: string; auth: string | undefined }[];
  close(): Promise<void>;
}

export async function startHub(repos: Record<string, HubRepo>): Promise<LoopbackHub> {
  const requests: LoopbackHub['requests'] = [];
  const server: Server = createServer(async (req, res) => {
    const path = req.url ?? '';
    const auth = req.headers.authorization;
    requests.push({ path, auth });
    const m = /^\/([^/]+\/[^/]+)\/resolve\/([^/]+)\/(.+)$/.exec(path);
    const repo = m ? repos[m[1]] : undefined;
    const error = (status: number, code: string) => {
      res.writeHead(status, { 'x-error-code': code }).end(code);
    };
    if (!m || !repo) return error(404, 'RepoNotFound');
    if (repo.token !== undefined && auth !== `Bearer ${repo.token}`) return error(401, 'RepoNotFound');
    const rev = decodeURIComponent(m[2]);
    const dir = rev === 'main' ? repo.dir : repo.revisions?.[rev];
    if (dir === undefined) return error(404, 'RevisionNotFound');
    const file = m[3].split('/').map(decodeURIComponent).join('/');
    let bytes: Buffer;
    try {
      bytes = await readFile(repo.alias?.[file] ?? join(dir, file));
    } catch {
      return error(404, 'EntryNotFound');
    }
    res.writeHead(200, { 'content-length': bytes.length });
    res.end(bytes);
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  return {
    url: `http://127.0.0.1:${(server.address() as AddressInfo).port}`,
    requests,
    close: () => new Promise<void>((r) => server.close(() => r())),
  };
}

/** Runs `f` with environment variables set (undefined: unset), restoring them afterwards. */
export async function withEnv<T>(vars: Record<string, string | undefined>, f: () => Promise<T>): Promise<T> {
  const saved = Object.fromEntries(Object.keys(vars).map((k) => [k, process.env[k]]));
  const set = (v: Record<string, string | undefined>) => {
    for (const [k, x] of Object.entries(v)) {
      if (x === undefined) delete process.env[k];
      else process.env[k] = x;
    }
  };
  set(vars);
  try {
    return await f();
  } finally {
    set(saved);
  }
}
