/**
 * A content-addressed cache of feature matrices (CLIP text and image features, target activations) under
 * `<cacheDir>/features/<kind>/<key[0..2]>/<key>.npy`, each with a sidecar `<key>.json` holding the npy's
 * SHA-256, its shape and the key parts the key was computed from.
 *
 * - The key is the SHA-256 of a canonical JSON (object keys sorted, no whitespace) of everything that determines
 *   the entry: model file hashes, layer, pooling, preprocessing, probe manifest, concept texts, dtype, the library
 *   VERSION … (the caller builds the parts; see {@link cacheKey}).
 * - Writes are atomic (the `.npy` first, then the sidecar), so a killed run leaves either a complete entry or
 *   none (an `.npy` without its sidecar is a miss).
 * - Reads are verified: the sidecar must name the same key, and the `.npy` bytes must have the recorded SHA-256
 *   and parse to the recorded shape. A corrupted entry is never used: it is counted, reported through
 *   `onWarning`, deleted and recomputed.
 * - A read touches the sidecar: its modification time is the entry's last use (`clip-dissect cache`).
 *
 * Files are hashed once per process, memoised by path, size, times and inode ({@link fileSha256}); an ONNX
 * model's hash covers its external-data files ({@link modelSha256s}). Contents are hashed, never names.
 */

import { platform } from '#platform';
import { writeFileAtomic } from '../io/atomic.js';
import { markUsed } from '../io/cache-files.js';
import { fsErrorCode } from '../io/files.js';
import { encodeNpyChunks, matrixToNpy, npyToMatrix, parseNpy } from '../io/npy.js';
import {
  NotRegularFileError,
  readRegularFile,
  readRegularText,
  regularFileStat,
} from '../io/regular-file.js';
import { sha256Hex } from '../io/sha256.js';
import { ArgumentError, ClipDissectError } from '../numeric/errors.js';
import type { Matrix } from '../numeric/matrix.js';
import type { FileStat } from '../platform/types.js';

/** JSON with object keys sorted at every level and no whitespace; `undefined` members are left out. */
export function canonicalJson(value: unknown): string {
  if (value === null || typeof value !== 'object') {
    if (typeof value === 'number' && !Number.isFinite(value))
      throw new ArgumentError(`cache key parts must be finite numbers but got ${value}`);
    if (typeof value === 'bigint') return JSON.stringify(value.toString());
    return JSON.stringify(value) ?? 'null';
  }
  if (Array.isArray(value)) return `[${value.map((v) => canonicalJson(v ?? null)).join(',')}]`;
  if (ArrayBuffer.isView(value)) return canonicalJson(Array.from(value as unknown as ArrayLike<number>));
  const obj = value as Record<string, unknown>;
  const keys = Object.keys(obj)
    .filter((k) => obj[k] !== undefined)
    .sort();
  return `{${keys.map((k) => `${JSON.stringify(k)}:${canonicalJson(obj[k])}`).join(',')}}`;
}

/** The cache key of an entry: SHA-256 (hex) of the canonical JSON of its parts. */
export function cacheKey(parts: Record<string, unknown>): string {
  return sha256Hex(canonicalJson(parts));
}

/** What a memoised hash was computed from: a file's size, times and inode (a replaced file gets a new one). */
export function statKey(st: Pick<FileStat, 'size' | 'mtimeMs' | 'ctimeMs' | 'ino'>): string {
  return `${st.size}:${st.mtimeMs}:${st.ctimeMs}:${st.ino}`;
}

const fileHashes = new Map<string, { stat: string; sha256: string }>();
/** An ONNX model file's external-data files (absolute paths), by the model file's path and statKey. */
const modelExternals = new Map<string, { stat: string; files: string[] }>();

/** SHA-256 (hex) of a file's bytes, streamed; memoised per process by absolute path, size, times and inode. */
export async function fileSha256(path: string): Promise<string> {
  const abs = platform.paths.resolve(path);
  const st = await regularFileStat(abs);
  const memo = fileHashes.get(abs);
  if (memo?.stat === statKey(st)) return memo.sha256;
  const hash = platform.hashing.sha256();
  for await (const chunk of platform.files.readChunks(abs)) hash.update(chunk);
  const sha256 = hash.digestHex();
  fileHashes.set(abs, { stat: statKey(st), sha256 });
  return sha256;
}

/** An external-data file hashed on the worker: its absolute path, statKey and SHA-256. */
export interface ExternalHash {
  path: string;
  stat: string;
  sha256: string;
}

interface HashReply {
  sha256?: string[];
  /** Per path: its external-data files when it was hashed as an ONNX model. */
  external?: ExternalHash[][];
  error?: { code: string; message: string; name: string };
}

/**
 * Hashes the files that are not memoised on a worker thread (`onnx`: those that are ONNX models, whose
 * external-data files are listed too) and memoises the results.
 */
async function hashOnWorker(abs: readonly string[], onnx: boolean): Promise<void> {
  const stats = await Promise.all(abs.map((p) => regularFileStat(p)));
  const todo: string[] = [];
  const keys: string[] = [];
  abs.forEach((p, i) => {
    const key = statKey(stats[i]);
    const fresh = fileHashes.get(p)?.stat === key && (!onnx || modelExternals.get(p)?.stat === key);
    if (!fresh && !todo.includes(p)) {
      todo.push(p);
      keys.push(key);
    }
  });
  if (todo.length === 0) return;
  const worker = platform.workers.spawn(new URL('./_hash-worker.js', import.meta.url), { paths: todo, onnx });
  const msg = await new Promise<HashReply>((res, rej) => {
    worker.onMessage((m) => res(m as HashReply));
    worker.onError(rej);
    worker.onExit((code) => rej(new Error(`the hashing worker exited with code ${code}`)));
  }).finally(() => worker.terminate());
  if (msg.error) {
    const { code, message, name } = msg.error;
    if (name === 'ClipDissectError') throw new ClipDissectError(code, message);
    throw Object.assign(new Error(message), { code });
  }
  todo.forEach((p, i) => {
    fileHashes.set(p, { stat: keys[i], sha256: (msg.sha256 as string[])[i] });
    const files = msg.external?.[i];
    if (!files) return;
    modelExternals.set(p, { stat: keys[i], files: files.map((f) => f.path) });
    for (const f of files) fileHashes.set(f.path, { stat: f.stat, sha256: f.sha256 });
  });
}

/**
 * SHA-256 of several files, computed on a worker thread so that the main thread can open models meanwhile
 * (memoised like fileSha256). Rejects with the first file's error (its code, e.g. ENOENT, and path).
 */
export async function fileSha256s(paths: readonly string[]): Promise<string[]> {
  const abs = paths.map((p) => platform.paths.resolve(p));
  await hashOnWorker(abs, false);
  return abs.map((p) => (fileHashes.get(p) as { sha256: string }).sha256);
}

/**
 * The content hash of ONNX models, for cache keys: the SHA-256 of the model file when it keeps its weights
 * inside, else the SHA-256 of `<model sha256>:<sha256 of each external-data file>` (every file its tensors
 * reference, in order of first reference, whatever their names: `model.onnx.data`, `model.onnx_data`,
 * `weights.bin`, `./x.bin` …; see models/_onnx-external-data.ts). Hashed on a worker thread and memoised like
 * fileSha256s. Errors: ClipDissectError 'ERR_MODEL_FORMAT' (not an ONNX model), 'ERR_MODEL_EXTERNAL_DATA' (a
 * location that is absolute or leaves the model's folder, a missing or short external-data file, named).
 */
export async function modelSha256s(paths: readonly string[]): Promise<string[]> {
  const abs = paths.map((p) => platform.paths.resolve(p));
  await hashOnWorker(abs, true);
  let external = abs.map((p) => (modelExternals.get(p) as { files: string[] }).files);
  let extSha: string[];
  try {
    extSha = await fileSha256s(external.flat());
  } catch {
    // an external-data file went away since the model was listed: list again (the error then names it)
    for (const p of abs) modelExternals.delete(p);
    await hashOnWorker(abs, true);
    external = abs.map((p) => (modelExternals.get(p) as { files: string[] }).files);
    extSha = await fileSha256s(external.flat());
  }
  let k = 0;
  return abs.map((p, i) => {
    const main = (fileHashes.get(p) as { sha256: string }).sha256;
    if (external[i].length === 0) return main;
    const parts = [main, ...extSha.slice(k, k + external[i].length)];
    k += external[i].length;
    return sha256Hex(parts.join(':'));
  });
}

/** Counters of a FeatureCache, for callers and tests. */
export interface CacheStats {
  /** Entries read and verified. */
  hits: number;
  /** Lookups that found no usable entry (absent or corrupted). */
  misses: number;
  /** Entries that failed verification (deleted; recomputed with getOrCompute). */
  corrupted: number;
  /** Entries written. */
  writes: number;
}

export interface FeatureCacheOptions {
  /** false: nothing is read or written (every get misses). Default true. */
  enabled?: boolean;
  /** fdatasync each written file (default true; tests may turn it off). */
  fsync?: boolean;
  /** Told about corrupted entries. */
  onWarning?: (message: string) => void;
}

interface Sidecar {
  key: string;
  kind: string;
  sha256: string;
  shape: [number, number];
  parts?: Record<string, unknown>;
  version: 1;
}

const KIND = /^[A-Za-z0-9_-]+$/;
const KEY = /^[0-9a-f]{64}$/;

/** The feature cache under `<cacheDir>/features/`. */
export class FeatureCache {
  /** `<cacheDir>/features`. */
  readonly dir: string;
  readonly enabled: boolean;
  readonly stats: CacheStats = { hits: 0, misses: 0, corrupted: 0, writes: 0 };
  private readonly fsync: boolean;
  private readonly onWarning?: (message: string) => void;

  constructor(cacheDir: string, options: FeatureCacheOptions = {}) {
    if (typeof cacheDir !== 'string' || cacheDir === '')
      throw new ArgumentError(`'cacheDir' must be a folder but got ${JSON.stringify(cacheDir)}`);
    this.dir = platform.paths.join(cacheDir, 'features');
    this.enabled = options.enabled ?? true;
    this.fsync = options.fsync ?? true;
    this.onWarning = options.onWarning;
  }

  /** Where an entry's `.npy` lives (its sidecar: the same path with `.json`). */
  path(key: string, kind: string): string {
    if (!KEY.test(key)) throw new ArgumentError(`cache key must be 64 hex digits but got '${key}'`);
    if (!KIND.test(kind)) throw new ArgumentError(`cache kind must be [A-Za-z0-9_-]+ but got '${kind}'`);
    return platform.paths.join(this.dir, kind, key.slice(0, 2), `${key}.npy`);
  }

  /** Whether a completed entry seems present (its sidecar exists); not verified, not counted in `stats`. */
  async has(key: string, kind: string): Promise<boolean> {
    if (!this.enabled) return false;
    return platform.files.stat(this.path(key, kind).replace(/\.npy$/, '.json')).then(
      () => true,
      () => false,
    );
  }

  /** The verified entry, or undefined when absent or corrupted (a corrupted one is deleted and reported). */
  async get(key: string, kind: string): Promise<Matrix | undefined> {
    if (!this.enabled) {
      this.stats.misses++;
      return undefined;
    }
    const npyPath = this.path(key, kind);
    const jsonPath = npyPath.replace(/\.npy$/, '.json');
    const r = await this.check(key, kind);
    if (r === undefined) {
      this.stats.misses++;
      return undefined; // no sidecar: never completed
    }
    if ('why' in r) {
      this.stats.corrupted++;
      this.stats.misses++;
      this.onWarning?.(`cache entry ${npyPath} is corrupted (${r.why}); recomputing it`);
      await platform.files.rm(jsonPath, { force: true }).catch(() => undefined);
      await platform.files.rm(npyPath, { force: true }).catch(() => undefined);
      return undefined;
    }
    this.stats.hits++;
    await markUsed(jsonPath); // the sidecar's mtime is the entry's last use (clip-dissect cache)
    return r.matrix;
  }

  /**
   * Checks an entry as `get` does, without using, counting or deleting it: undefined when it is intact, else
   * why it is not ('no sidecar' for an entry that was never completed).
   */
  async verify(key: string, kind: string): Promise<string | undefined> {
    const r = await this.check(key, kind);
    return r === undefined ? 'no sidecar' : 'why' in r ? r.why : undefined;
  }

  /** Reads and verifies an entry; undefined when it has no sidecar. */
  private async check(key: string, kind: string): Promise<{ matrix: Matrix } | { why: string } | undefined> {
    const npyPath = this.path(key, kind);
    const jsonPath = npyPath.replace(/\.npy$/, '.json');
    let sideText: string;
    try {
      sideText = await readRegularText(jsonPath);
    } catch (e) {
      if (e instanceof NotRegularFileError) return { why: e.message };
      return undefined; // no sidecar: never completed
    }
    let side: Sidecar;
    try {
      side = JSON.parse(sideText) as Sidecar;
    } catch {
      return { why: 'its sidecar is not valid JSON' };
    }
    if (side?.key !== key || side.kind !== kind || !Array.isArray(side.shape))
      return { why: 'its sidecar does not describe this key' };
    let bytes: Uint8Array;
    try {
      bytes = await readRegularFile(npyPath);
    } catch (e) {
      const why = e instanceof NotRegularFileError ? e.message : (fsErrorCode(e) ?? (e as Error).message);
      return { why: `the .npy cannot be read: ${why}` };
    }
    const got = sha256Hex(bytes);
    if (got !== side.sha256)
      return { why: `SHA-256 ${got.slice(0, 12)}… instead of ${side.sha256.slice(0, 12)}…` };
    let m: Matrix;
    try {
      m = npyToMatrix(parseNpy(bytes, npyPath), npyPath);
    } catch (e) {
      return { why: (e as Error).message };
    }
    if (m.rows !== side.shape[0] || m.cols !== side.shape[1])
      return { why: `shape ${m.rows}×${m.cols} instead of ${side.shape.join('×')}` };
    return { matrix: m };
  }

  /** Stores an entry (atomically: the `.npy`, then its sidecar). */
  async put(key: string, kind: string, m: Matrix, parts?: Record<string, unknown>): Promise<void> {
    if (!this.enabled) return;
    const npyPath = this.path(key, kind);
    const chunks = encodeNpyChunks(matrixToNpy(m));
    const hash = platform.hashing.sha256();
    for (const c of chunks) hash.update(c);
    const side: Sidecar = {
      key,
      kind,
      sha256: hash.digestHex(),
      shape: [m.rows, m.cols],
      ...(parts ? { parts } : {}),
      version: 1,
    };
    await writeFileAtomic(npyPath, chunks, { fsync: this.fsync });
    await writeFileAtomic(npyPath.replace(/\.npy$/, '.json'), `${JSON.stringify(side, null, 1)}\n`, {
      fsync: this.fsync,
    });
    this.stats.writes++;
  }

  /** The cached entry if present and intact, else `compute()`'s result, stored before it is returned. */
  async getOrCompute(
    key: string,
    kind: string,
    compute: () => Promise<Matrix>,
    parts?: Record<string, unknown>,
  ): Promise<Matrix> {
    const hit = await this.get(key, kind);
    if (hit) return hit;
    const m = await compute();
    await this.put(key, kind, m, parts);
    return m;
  }
}
