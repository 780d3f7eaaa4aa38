/**
 * A worker thread that computes the SHA-256 of files (workerData: { paths, onnx }) and posts
 * `{ sha256: string[], external?: ExternalHash[][] }` or `{ error: { code, message, name } }`. With `onnx`, each
 * file is an ONNX model, also parsed (when it may have any) for the external-data files it references, which are
 * hashed too (`external`, per model). Internal: see fileSha256s and modelSha256s in cache.ts.
 */
import { createHash } from 'node:crypto';
import { closeSync, fstatSync, openSync, readFileSync, readSync } from 'node:fs';
import { parentPort, workerData } from 'node:worker_threads';
import { type ExternalHash, statKey } from './cache.js';

const { paths, onnx } = workerData as { paths: string[]; onnx?: boolean };

/** Reads `n` bytes (or to the end) of an open file into `buf`, synchronously; returns the count. */
function readInto(fd: number, buf: Uint8Array): number {
  let n = 0;
  for (let r = 1; n < buf.length && r > 0; n += r) r = readSync(fd, buf, n, buf.length - n, null);
  return n;
}

/**
 * Every external-data reference holds a key-value entry whose key is `location`: a model file without these
 * bytes has no external data and need not be parsed (a file with them is parsed, which decides).
 */
const LOCATION = Buffer.from('location');

/** SHA-256 of an open file's bytes, read in `buf`-sized pieces, and whether `needle` occurs in them. */
function hashFd(fd: number, buf: Buffer, needle?: Buffer): { sha256: string; found: boolean } {
  const hash = createHash('sha256');
  let found = false;
  let tail = Buffer.alloc(0); // the end of the previous piece, for a needle across two pieces
  for (let n = readInto(fd, buf); n > 0; n = readInto(fd, buf)) {
    const piece = buf.subarray(0, n);
    hash.update(piece);
    if (needle && !found) {
      const head = piece.subarray(0, needle.length - 1);
      found = piece.includes(needle) || Buffer.concat([tail, head]).includes(needle);
      tail = Buffer.from(piece.subarray(Math.max(0, n - (needle.length - 1))));
    }
  }
  return { sha256: hash.digest('hex'), found };
}

/** The external-data files of the model at `p`, each hashed (`buf`: a read buffer). */
async function externalHashes(p: string, buf: Buffer): Promise<ExternalHash[]> {
  const ext = await import('../models/_onnx-external-data.js');
  const label = `ONNX model '${p}'`;
  const files = await ext.externalDataFiles(p, ext.parseOnnxModel(readFileSync(p), label), label);
  return files.map((f) => {
    const fd = openSync(f.path, 'r');
    try {
      return { path: f.path, stat: statKey(fstatSync(fd)), sha256: hashFd(fd, buf).sha256 };
    } finally {
      closeSync(fd);
    }
  });
}

try {
  const sha256: string[] = [];
  const external: ExternalHash[][] = [];
  // one 4 MiB buffer, read synchronously (this thread has nothing else to do): 2.5× faster than a read stream's
  // fresh 64 KiB chunks
  const buf = Buffer.allocUnsafe(4 << 20);
  for (const p of paths) {
    const fd = openSync(p, 'r');
    let h: { sha256: string; found: boolean };
    try {
      h = hashFd(fd, buf, onnx ? LOCATION : undefined);
    } finally {
      closeSync(fd);
    }
    sha256.push(h.sha256);
    // a model that may reference external data is read again and parsed (models that do are small files)
    if (onnx) external.push(h.found ? await externalHashes(p, buf) : []);
  }
  parentPort?.postMessage(onnx ? { sha256, external } : { sha256 });
} catch (e) {
  const err = e as NodeJS.ErrnoException;
  parentPort?.postMessage({
    error: { code: err.code ?? 'ERR_HASH', message: err.message, name: err.name ?? 'Error' },
  });
}
