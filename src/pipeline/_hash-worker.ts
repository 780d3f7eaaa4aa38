/**
 * A worker thread that computes the SHA-256 of files (workerData: { paths }) and posts
 * `{ sha256: string[] }` or `{ error: { code, message } }`. Internal: see fileSha256s in cache.ts.
 */
import { createHash } from 'node:crypto';
import { closeSync, openSync, readSync } from 'node:fs';
import { parentPort, workerData } from 'node:worker_threads';

const { paths } = workerData as { paths: string[] };
try {
  const sha256: string[] = [];
  // one 4 MiB buffer, read synchronously (this thread has nothing else to do): 2.5× faster than a read stream's
  // fresh 64 KiB chunks (344 MB in 0.24 s instead of 0.6 s on the 2-vCPU machine)
  const buf = Buffer.allocUnsafe(4 << 20);
  for (const p of paths) {
    const hash = createHash('sha256');
    const fd = openSync(p, 'r');
    try {
      for (let n = readSync(fd, buf, 0, buf.length, null); n > 0; n = readSync(fd, buf, 0, buf.length, null))
        hash.update(buf.subarray(0, n));
    } finally {
      closeSync(fd);
    }
    sha256.push(hash.digest('hex'));
  }
  parentPort?.postMessage({ sha256 });
} catch (e) {
  const err = e as NodeJS.ErrnoException;
  parentPort?.postMessage({ error: { code: err.code ?? 'ERR_HASH', message: err.message } });
}
