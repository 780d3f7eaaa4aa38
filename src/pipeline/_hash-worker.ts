/**
 * A worker thread that computes the SHA-256 of files (workerData: { paths, onnx }) and posts
 * `{ sha256: string[], external?: ExternalHash[][] }` or `{ error: { code, message, name } }`. With `onnx`, each
 * file is an ONNX model, also parsed (when it may have any) for the external-data files it references, which are
 * hashed too (`external`, per model). Internal: see fileSha256s and modelSha256s in cache.ts.
 */
import { platform } from '#platform';
import type { OpenFile } from '../platform/types.js';
import { type ExternalHash, statKey } from './cache.js';

const parent = platform.workers.parent();
if (parent === undefined) throw new Error('_hash-worker.js runs only as a worker thread');
const { paths, onnx } = parent.data as { paths: string[]; onnx?: boolean };

/** Reads `buf.length` bytes (or to the end) of an open file into `buf`; returns the count. */
async function readInto(fh: OpenFile, buf: Uint8Array): Promise<number> {
  let n = 0;
  for (let r = 1; n < buf.length && r > 0; n += r) r = await fh.read(buf, n, buf.length - n, null);
  return n;
}

/**
 * Every external-data reference holds a key-value entry whose key is `location`: a model file without these
 * bytes has no external data and need not be parsed (a file with them is parsed, which decides).
 */
const LOCATION = new TextEncoder().encode('location');

/** Whether `needle` occurs in `hay`. */
function includesBytes(hay: Uint8Array, needle: Uint8Array): boolean {
  const first = needle[0];
  for (let i = hay.indexOf(first); i >= 0 && i <= hay.length - needle.length; i = hay.indexOf(first, i + 1)) {
    let j = 1;
    while (j < needle.length && hay[i + j] === needle[j]) j++;
    if (j === needle.length) return true;
  }
  return false;
}

/** SHA-256 of an open file's bytes, read in `buf`-sized pieces, and whether `needle` occurs in them. */
async function hashFile(
  fh: OpenFile,
  buf: Uint8Array,
  needle?: Uint8Array,
): Promise<{ sha256: string; found: boolean }> {
  const hash = platform.hashing.sha256();
  let found = false;
  let tail = new Uint8Array(0); // the end of the previous piece, for a needle across two pieces
  for (let n = await readInto(fh, buf); n > 0; n = await readInto(fh, buf)) {
    const piece = buf.subarray(0, n);
    hash.update(piece);
    if (needle && !found) {
      const head = piece.subarray(0, needle.length - 1);
      const joint = new Uint8Array(tail.length + head.length);
      joint.set(tail);
      joint.set(head, tail.length);
      found = includesBytes(piece, needle) || includesBytes(joint, needle);
      tail = piece.slice(Math.max(0, n - (needle.length - 1)));
    }
  }
  return { sha256: hash.digestHex(), found };
}

/** Hashes one file (`buf`: a read buffer); `stat` is its statKey, taken from the open file. */
async function hashPath(
  path: string,
  buf: Uint8Array,
  needle?: Uint8Array,
): Promise<{ sha256: string; found: boolean; stat: string }> {
  const fh = await platform.files.open(path, 'r');
  try {
    const stat = statKey(await fh.stat());
    return { ...(await hashFile(fh, buf, needle)), stat };
  } finally {
    await fh.close();
  }
}

/** The external-data files of the model at `p`, each hashed (`buf`: a read buffer). */
async function externalHashes(p: string, buf: Uint8Array): Promise<ExternalHash[]> {
  const ext = await import('../models/_onnx-external-data.js');
  const label = `ONNX model '${p}'`;
  const files = await ext.externalDataFiles(
    p,
    ext.parseOnnxModel(await platform.files.readFile(p), label),
    label,
  );
  const out: ExternalHash[] = [];
  for (const f of files) {
    const h = await hashPath(f.path, buf);
    out.push({ path: f.path, stat: h.stat, sha256: h.sha256 });
  }
  return out;
}

try {
  const sha256: string[] = [];
  const external: ExternalHash[][] = [];
  // one 4 MiB buffer for every read (this thread has nothing else to do), not a stream's fresh small chunks
  const buf = new Uint8Array(4 << 20);
  for (const p of paths) {
    const h = await hashPath(p, buf, onnx ? LOCATION : undefined);
    sha256.push(h.sha256);
    // a model that may reference external data is read again and parsed (models that do are small files)
    if (onnx) external.push(h.found ? await externalHashes(p, buf) : []);
  }
  parent.postMessage(onnx ? { sha256, external } : { sha256 });
} catch (e) {
  const err = e as { code?: string; message: string; name?: string };
  parent.postMessage({
    error: { code: err.code ?? 'ERR_HASH', message: err.message, name: err.name ?? 'Error' },
  });
}
