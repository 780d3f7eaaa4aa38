/**
 * What `clip-dissect cache` lists, cleans and verifies: the entries of a cache folder (default
 * ~/.cache/clip-dissect, see defaultCacheDir), by kind:
 *
 * - models: `models/<owner>/<name>/`, hub downloads; `.clip-dissect/` in it holds each downloaded file's
 *   record (size and SHA-256) and the `last-used` stamp (io/cache-files.ts);
 * - concepts: `concepts/<sha256>-<file>`, the built-in concept sets, named by their SHA-256;
 * - probes: `datasets/<name>/` and its record `datasets/<name>.json` (the built-in CIFAR-100: each extracted
 *   member's size and SHA-256);
 * - features: `features/<kind>/<xx>/<key>.npy` and its sidecar `<key>.json` (FeatureCache, verified as on read);
 * - partial: what an interrupted download or write left (temporary files, a feature `.npy` without its sidecar).
 *
 * An entry's last use is the newest modification time of its files: the code that reads an entry touches its
 * record (sidecar, last-used stamp, cached file). Files of other shapes are left alone and not listed.
 */
import { platform } from '#platform';
import { RECORD_DIR, readDownloadRecord, TEMP_FILE } from '../io/cache-files.js';
import { fsErrorCode, readJson } from '../io/files.js';
import { readRegularFile } from '../io/regular-file.js';
import { ArgumentError } from '../numeric/errors.js';
import type { DirEntry } from '../platform/types.js';
import type { ProgressCallback, RunHooks } from '../progress.js';
import { FeatureCache, fileSha256, modelSha256s } from './cache.js';

export const CACHE_KINDS = ['models', 'concepts', 'probes', 'features', 'partial'] as const;
export type CacheKind = (typeof CACHE_KINDS)[number];

export interface CacheEntry {
  kind: CacheKind;
  /**
   * models: the hub id; concepts: the file name ('20k.txt'); probes: the dataset folder; features:
   * `<kind>/<key>`; partial: the path relative to the cache folder.
   */
  id: string;
  /** What removing the entry deletes, in this order (files, or folders with everything in them). */
  paths: string[];
  bytes: number;
  files: number;
  /** The newest modification time of its files. */
  lastUsed: Date;
}

interface FileInfo {
  path: string;
  size: number;
  mtimeMs: number;
}

const { dirname, join, relative, resolve, sep } = platform.paths;

async function list(dir: string): Promise<DirEntry[]> {
  try {
    return await platform.files.readdir(dir);
  } catch (e) {
    const code = fsErrorCode(e);
    if (code === 'ENOENT' || code === 'ENOTDIR') return [];
    throw e;
  }
}

async function fileInfo(path: string): Promise<FileInfo> {
  const s = await platform.files.stat(path);
  return { path, size: s.size, mtimeMs: s.mtimeMs };
}

/** Every file under `dir` (recursively). */
async function tree(dir: string): Promise<FileInfo[]> {
  const out: FileInfo[] = [];
  for (const d of await list(dir)) {
    const p = join(dir, d.name);
    if (d.isDirectory()) out.push(...(await tree(p)));
    else if (d.isFile()) out.push(await fileInfo(p));
  }
  return out;
}

function entry(kind: CacheKind, id: string, paths: string[], files: FileInfo[]): CacheEntry {
  return {
    kind,
    id,
    paths,
    bytes: files.reduce((s, f) => s + f.size, 0),
    files: files.length,
    lastUsed: new Date(Math.max(0, ...files.map((f) => f.mtimeMs))),
  };
}

const FEATURE_KEY = /^([0-9a-f]{64})\.(npy|json)$/;
const CONCEPT_FILE = /^([0-9a-f]{64})-(.+)$/;

/** The entries of the cache folder (none when it does not exist), models first, partial files last. */
export async function scanCache(cacheDir: string): Promise<CacheEntry[]> {
  const root = resolve(cacheDir);
  const out: CacheEntry[] = [];
  const partial: FileInfo[] = [];
  const splitTemp = (files: FileInfo[]) => {
    partial.push(...files.filter((f) => TEMP_FILE.test(f.path)));
    return files.filter((f) => !TEMP_FILE.test(f.path));
  };

  const models = join(root, 'models');
  for (const owner of await list(models)) {
    if (!owner.isDirectory()) continue;
    for (const name of await list(join(models, owner.name))) {
      if (!name.isDirectory()) continue;
      const dir = join(models, owner.name, name.name);
      const files = splitTemp(await tree(dir));
      const e = entry('models', `${owner.name}/${name.name}`, [dir], files);
      // the model's own files; its records count in bytes and last use only
      e.files = files.filter((f) => !relative(dir, f.path).startsWith(`${RECORD_DIR}${sep}`)).length;
      out.push(e);
    }
  }

  const concepts = join(root, 'concepts');
  for (const d of await list(concepts)) {
    if (!d.isFile()) continue;
    const f = await fileInfo(join(concepts, d.name));
    const m = CONCEPT_FILE.exec(d.name);
    if (TEMP_FILE.test(d.name)) partial.push(f);
    else if (m) out.push(entry('concepts', m[2], [f.path], [f]));
  }

  const datasets = join(root, 'datasets');
  const dsEntries = await list(datasets);
  for (const d of dsEntries) {
    const p = join(datasets, d.name);
    if (d.isFile() && TEMP_FILE.test(d.name)) partial.push(await fileInfo(p));
    if (!d.isDirectory()) continue;
    const pin = `${p}.json`;
    const hasPin = dsEntries.some((e) => e.isFile() && e.name === `${d.name}.json`);
    const files = splitTemp(await tree(p));
    if (hasPin) files.push(await fileInfo(pin));
    out.push(entry('probes', d.name, hasPin ? [pin, p] : [p], files));
  }

  const features = join(root, 'features');
  const featureEntries: CacheEntry[] = [];
  for (const kind of await list(features)) {
    if (!kind.isDirectory()) continue;
    for (const shard of await list(join(features, kind.name))) {
      if (!shard.isDirectory()) continue;
      const dir = join(features, kind.name, shard.name);
      const names = await list(dir);
      const have = new Set(names.map((n) => n.name));
      for (const n of names) {
        if (!n.isFile()) continue;
        const p = join(dir, n.name);
        const m = FEATURE_KEY.exec(n.name);
        if (TEMP_FILE.test(n.name) || (m && m[2] === 'npy' && !have.has(`${m[1]}.json`)))
          partial.push(await fileInfo(p));
        else if (m && m[2] === 'json') {
          const files = [await fileInfo(p)];
          const npy = join(dir, `${m[1]}.npy`);
          if (have.has(`${m[1]}.npy`)) files.push(await fileInfo(npy));
          // the sidecar goes first: an interrupted removal leaves an .npy without sidecar, a miss
          featureEntries.push(entry('features', `${kind.name}/${m[1]}`, [p, npy], files));
        }
      }
    }
  }
  // the last-use order inside a kind, newest first
  featureEntries.sort((a, b) => b.lastUsed.getTime() - a.lastUsed.getTime());
  out.push(...featureEntries);
  for (const f of partial) out.push(entry('partial', relative(root, f.path), [f.path], [f]));
  return out;
}

/** `<kind>` of a features entry (`image`, `text`, `activations`, `kept`). */
export function featureKind(e: CacheEntry): string {
  return e.id.slice(0, e.id.indexOf('/'));
}

/** Which entries `cleanCache` removes: exactly one of the three. */
export interface CleanSelection {
  /** Every entry. */
  all?: boolean;
  /** Entries not used for this long (milliseconds). */
  olderThanMs?: number;
  /**
   * A model: a hub id cached under `models/` (its folder goes) or the path of a model file or folder; in both
   * cases the features computed with that model's ONNX files go too.
   */
  model?: string;
}

export interface CleanOptions {
  /** List what would go, remove nothing. */
  dryRun?: boolean;
  /** The present time (tests). Default now. */
  now?: Date;
}

export interface CleanResult {
  removed: CacheEntry[];
  bytes: number;
}

const ONNX_FILE = /\.onnx(_data|\.data)?$/;

/**
 * The hashes cache keys hold for a model (a file, or a folder searched recursively): SHA-256 of every ONNX file
 * and external-data file, and of each ONNX model as dissect keys it (modelSha256s).
 */
async function modelHashes(model: CacheEntry | string, onProgress?: ProgressCallback): Promise<Set<string>> {
  const dir = typeof model === 'string' ? model : model.paths[0];
  const st = await platform.files.stat(dir);
  const files = st.isDirectory()
    ? (await tree(dir)).filter((f) => ONNX_FILE.test(f.path) && !f.path.includes(`${sep}${RECORD_DIR}${sep}`))
    : [await fileInfo(dir)];
  const out = new Set<string>();
  for (const [i, f] of files.entries()) {
    onProgress?.({ stage: 'hash model files', done: i, total: files.length, unit: 'files' });
    const rec = st.isDirectory()
      ? await readDownloadRecord(dir, relative(dir, f.path).split(sep).join('/'))
      : undefined;
    out.add(rec && rec.size === f.size ? rec.sha256 : await fileSha256(f.path));
    if (f.path.endsWith('.onnx')) {
      // a model with external data is keyed by the hashes of its .onnx file and of every external-data file
      const h = await modelSha256s([f.path]).catch(() => undefined); // its external data is missing: no key
      if (h) out.add(h[0]);
    }
  }
  onProgress?.({ stage: 'hash model files', done: files.length, total: files.length, unit: 'files' });
  return out;
}

/** Every 64-hex-digit string inside a JSON value. */
function hashesIn(value: unknown, out: string[] = []): string[] {
  if (typeof value === 'string') {
    if (/^[0-9a-f]{64}$/.test(value)) out.push(value);
  } else if (value && typeof value === 'object') for (const v of Object.values(value)) hashesIn(v, out);
  return out;
}

/** Removes the selected entries (see CleanSelection) and returns them. */
export async function cleanCache(
  cacheDir: string,
  selection: CleanSelection,
  options: CleanOptions = {},
  hooks: RunHooks = {},
): Promise<CleanResult> {
  const chosen = [selection.all === true, selection.olderThanMs !== undefined, selection.model !== undefined];
  if (chosen.filter(Boolean).length !== 1)
    throw new ArgumentError('choose what to clean: exactly one of all, olderThanMs and model');
  if (
    selection.olderThanMs !== undefined &&
    (!Number.isFinite(selection.olderThanMs) || selection.olderThanMs < 0)
  )
    throw new ArgumentError(`'olderThanMs' must be a number >= 0 but got ${selection.olderThanMs}`);
  const entries = await scanCache(cacheDir);
  let removed: CacheEntry[];
  if (selection.all) removed = entries;
  else if (selection.olderThanMs !== undefined) {
    const cutoff = (options.now ?? new Date()).getTime() - selection.olderThanMs;
    removed = entries.filter((e) => e.lastUsed.getTime() < cutoff);
  } else {
    const id = selection.model as string;
    const cached = entries.find((e) => e.kind === 'models' && e.id === id);
    const isPath =
      !cached &&
      (await platform.files.stat(id).then(
        () => true,
        () => false,
      ));
    if (!cached && !isPath) {
      const ids = entries.filter((e) => e.kind === 'models').map((e) => e.id);
      throw new ArgumentError(
        `model '${id}' is neither cached in ${join(resolve(cacheDir), 'models')} (${ids.length ? `cached: ${ids.join(', ')}` : 'no models cached'}) nor a model file or folder`,
      );
    }
    // progress: hashing a model's files that have no download record
    const hashes = await modelHashes(cached ?? id, hooks.onProgress);
    removed = cached ? [cached] : [];
    for (const e of entries) {
      if (e.kind !== 'features') continue;
      let parts: unknown;
      try {
        parts = JSON.parse(new TextDecoder().decode(await readRegularFile(e.paths[0])))?.parts;
      } catch {
        continue; // verify reports it; a read recomputes it
      }
      if (hashesIn(parts).some((h) => hashes.has(h))) removed.push(e);
    }
  }
  hooks.signal?.throwIfAborted();
  if (!options.dryRun) {
    for (const e of removed)
      for (const p of e.paths) await platform.files.rm(p, { recursive: true, force: true });
    await pruneEmptyFolders(resolve(cacheDir), removed);
  }
  return { removed, bytes: removed.reduce((s, e) => s + e.bytes, 0) };
}

/** Removes the folders that removing `removed` emptied (models/<owner>, features/<kind>/<xx>, …). */
async function pruneEmptyFolders(root: string, removed: CacheEntry[]): Promise<void> {
  const dirs = new Set<string>();
  for (const e of removed)
    for (const p of e.paths)
      for (let d = dirname(p); d.startsWith(`${root}${sep}`); d = dirname(d)) dirs.add(d);
  // deepest first; rmdir fails on a folder that is not empty, which is what keeps it
  for (const d of [...dirs].sort((a, b) => b.length - a.length))
    await platform.files.rmdir(d).catch(() => undefined);
}

export type VerifyStatus = 'ok' | 'corrupt' | 'unverified';

export interface VerifyResult {
  entry: CacheEntry;
  status: VerifyStatus;
  /** Why the entry is corrupt or unverified; empty when ok. */
  detail: string;
  /** What `remove` deleted (a corrupt model loses only its bad files, downloaded again on next use). */
  removed?: string[];
}

export interface VerifyOptions {
  /** Delete corrupt entries (models: their bad files), so that the next use downloads or computes them anew. */
  remove?: boolean;
}

/**
 * Checks every entry against what the cache recorded: features as FeatureCache reads them (sidecar, SHA-256,
 * shape), downloaded model files against their download records, concept sets against the SHA-256 in their
 * name, probe sets against their extraction record. Partial files are not verified (scanCache lists them).
 */
export async function verifyCache(
  cacheDir: string,
  options: VerifyOptions = {},
  hooks: RunHooks = {},
): Promise<VerifyResult[]> {
  const entries = (await scanCache(cacheDir)).filter((e) => e.kind !== 'partial');
  const features = new FeatureCache(cacheDir, { fsync: false });
  const total = entries.reduce((s, e) => s + e.bytes, 0);
  let done = 0;
  const results: VerifyResult[] = [];
  for (const e of entries) {
    hooks.signal?.throwIfAborted();
    hooks.onProgress?.({ stage: 'verify', done, total, unit: 'bytes' });
    const bad: string[] = [];
    const unverified: string[] = [];
    const badFiles: string[] = [];
    if (e.kind === 'features') {
      const [kind, key] = e.id.split('/');
      const why = await features.verify(key, kind);
      if (why) bad.push(why);
    } else if (e.kind === 'concepts') {
      const name = e.paths[0].slice(e.paths[0].lastIndexOf(sep) + 1);
      const want = (CONCEPT_FILE.exec(name) as RegExpExecArray)[1];
      const got = await fileSha256(e.paths[0]);
      if (got !== want) bad.push(`SHA-256 ${got.slice(0, 12)}… instead of ${want.slice(0, 12)}…`);
    } else if (e.kind === 'probes') {
      const dir = e.paths[e.paths.length - 1];
      const pin = e.paths.length > 1 ? await readJson(e.paths[0]).catch(() => undefined) : undefined;
      const members = (pin as { members?: Record<string, { size: number; sha256: string }> })?.members;
      if (!members || typeof members !== 'object') unverified.push('no extraction record');
      else {
        for (const [m, want] of Object.entries(members)) {
          const p = join(dir, m);
          const got = await platform.files.stat(p).then(
            (s) => s.size,
            () => -1,
          );
          if (got < 0) bad.push(`${m} is missing`);
          else if (got !== want.size) bad.push(`${m} has ${got} bytes instead of ${want.size}`);
          else if ((await fileSha256(p)) !== want.sha256) bad.push(`${m}: SHA-256 differs from the record`);
        }
      }
    } else {
      const dir = e.paths[0];
      const files = (await tree(dir)).filter(
        (f) => !TEMP_FILE.test(f.path) && !relative(dir, f.path).startsWith(`${RECORD_DIR}${sep}`),
      );
      for (const f of files) {
        const rel = relative(dir, f.path).split(sep).join('/');
        const rec = await readDownloadRecord(dir, rel);
        if (!rec) unverified.push(rel);
        else if (rec.size !== f.size) {
          bad.push(`${rel} has ${f.size} bytes instead of ${rec.size}`);
          badFiles.push(rel);
        } else if ((await fileSha256(f.path)) !== rec.sha256) {
          bad.push(`${rel}: SHA-256 differs from the download record`);
          badFiles.push(rel);
        }
      }
    }
    done += e.bytes;
    const status: VerifyStatus = bad.length ? 'corrupt' : unverified.length ? 'unverified' : 'ok';
    const detail = bad.length
      ? bad.join('; ')
      : unverified.length
        ? e.kind === 'models'
          ? `no download record for ${unverified.join(', ')} (downloaded before clip-dissect recorded downloads, or copied there by hand)`
          : unverified.join('; ')
        : '';
    const r: VerifyResult = { entry: e, status, detail };
    if (status === 'corrupt' && options.remove) {
      const dir = e.paths[0];
      const paths =
        e.kind === 'models'
          ? badFiles.flatMap((f) => [join(dir, f), join(dir, RECORD_DIR, `${f}.json`)])
          : e.paths;
      for (const p of paths) await platform.files.rm(p, { recursive: true, force: true });
      r.removed = paths;
    }
    results.push(r);
  }
  hooks.onProgress?.({ stage: 'verify', done: total, total, unit: 'bytes' });
  return results;
}
