/**
 * A worker thread that computes the SHA-256 of files (workerData: { paths }) and posts
 * `{ sha256: string[] }` or `{ error: { code, message } }`. Internal: see fileSha256s in cache.ts.
 */
import { createHash } from 'node:crypto';
import { createReadStream } from 'node:fs';
import { parentPort, workerData } from 'node:worker_threads';

const { paths } = workerData as { paths: string[] };
try {
  const sha256: string[] = [];
  for (const p of paths) {
    const hash = createHash('sha256');
    for await (const chunk of createReadStream(p)) hash.update(chunk as Buffer);
    sha256.push(hash.digest('hex'));
  }
  parentPort?.postMessage({ sha256 });
} catch (e) {
  const err = e as NodeJS.ErrnoException;
  parentPort?.postMessage({ error: { code: err.code ?? 'ERR_HASH', message: err.message } });
}
