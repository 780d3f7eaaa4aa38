/**
 * The dissection report: `<results>/report/index.html`, an interactive page that shows what each neuron
 * sees, built from a `clip-dissect dissect` results folder (neurons.json, args.json, images.txt and each
 * layer's activations .npy).
 *
 * What the folder holds:
 * - `index.html`: the page (HTML, CSS and vanilla JS inlined from src/report/page/, no framework, nothing
 *   fetched from a network);
 * - `data.js`: the data as a script that sets `window.CLIP_DISSECT_REPORT` (a file:// page cannot fetch()
 *   JSON in Chromium but can load a <script src>), and `data.json`, the same object for other tools;
 * - `thumbs/<row>.webp`: one thumbnail per probe image that the page shows anywhere (row = the image's row in
 *   the activation matrices, i.e. its line in images.txt), shared by every neuron that shows it. Thumbnails
 *   are square centre crops (`fit: cover`), WebP quality 80. A rebuild with the same size reuses the
 *   thumbnails whose image content is unchanged (thumbs/index.json records its SHA-256: an image replaced at
 *   the same path gets a new thumbnail) and removes those no longer shown.
 *
 * Per neuron the data holds its label, score, top concepts, its `topImages` most activating images with
 * their activation values, and strips of `stripSize` images drawn at random (seeded) from the images in the
 * top 0.1 %, 1 % and 5 % of its activations, with the activation at each band's edge. Activations
 * themselves are not copied: the page needs a few numbers per neuron, so data.js stays ~250 bytes a neuron.
 *
 * Thumbnails are cut from the pixels the network saw: files are read by sharp without EXIF rotation or
 * colour management (as PIL's `convert('RGB')` does), CIFAR records from their binary file.
 */
import { platform } from '#platform';
import { loadProbeSource } from '../data/probe-dataset.js';
import { isTempName, writeFileAtomic } from '../io/atomic.js';
import { isFile, readJson } from '../io/files.js';
import { checkWritableFolder, withFolderLock } from '../io/folders.js';
import { readRegularFile } from '../io/regular-file.js';
import { readResultsMatrix, resultsFilePath } from '../io/results-folder.js';
import { sha256Hex } from '../io/sha256.js';
import { ArgumentError, ClipDissectError } from '../numeric/errors.js';
import type { Matrix } from '../numeric/matrix.js';
import { mulberry32 } from '../numeric/random.js';
import { columnTopK } from '../numeric/topk.js';
import type { RunHooks } from '../progress.js';
import {
  type DissectArgs,
  type NeuronRecord,
  readArgsJson,
  readImagesTxt,
  readNeuronsJson,
} from '../results/index.js';
import type { LayerTrust, TrustBadge } from '../results/trust.js';
import { VERSION } from '../version.js';
import { reportPageHtml } from './_report-page.js';

const { basename, dirname, join, resolve } = platform.paths;
const { readdir, rm, stat } = platform.files;

export interface ReportOptions {
  /** The results folder of `clip-dissect dissect` (it must hold neurons.json). */
  dir: string;
  /** Where to write the report. Default `<dir>/report`. */
  out?: string;
  /** Most activating images shown per neuron. Default 5. */
  topImages?: number;
  /** Thumbnail edge in pixels. Default 128. */
  thumbSize?: number;
  /** Images in each random strip (top 0.1 % / 1 % / 5 %). Default 5. */
  stripSize?: number;
  /** Seed of the random strips. Default 0. */
  seed?: number;
  /** Thumbnails encoded at once. Default 4. */
  concurrency?: number;
  /**
   * The layers' activations (N×K, rows in images.txt order) when the caller holds them, as dissect does; a
   * layer not in it is read from its `.npy` file.
   */
  activations?: ReadonlyMap<string, Matrix>;
}

export interface ReportResult {
  /** The report folder and its page. */
  dir: string;
  index: string;
  layers: number;
  neurons: number;
  /** Thumbnails the page refers to; of them `written` now, `reused` from an earlier build, `failed` (the page
   * shows a placeholder). */
  thumbnails: { total: number; written: number; reused: number; failed: number };
  /** Size of the report folder in bytes. */
  bytes: number;
  warnings: string[];
  seconds: number;
}

/** The activation bands of the random strips: the top 0.1 %, 1 % and 5 % of a neuron's activations. */
export const REPORT_BANDS: readonly number[] = [0.001, 0.01, 0.05];

const THUMB_QUALITY = 80;
const THUMB_NAME = /^(\d+)\.webp$/;

function positiveInt(name: string, v: number | undefined, max = Number.MAX_SAFE_INTEGER): void {
  if (v !== undefined && (!Number.isInteger(v) || v < 1 || v > max))
    throw new ArgumentError(`'${name}' must be an integer from 1 to ${max} but got ${v}`);
}

/** Activation value rounded to 4 significant digits (what the page prints). */
const act4 = (x: number) => (Number.isFinite(x) ? Number(x.toPrecision(4)) : null);

/** A stable 32-bit seed per (seed, layer, unit). */
function neuronSeed(seed: number, layer: string, unit: number): number {
  let h = (seed ^ 0x9e3779b9) >>> 0;
  const s = `${layer}\u0000${unit}`;
  for (let i = 0; i < s.length; i++) h = Math.imul(h ^ s.charCodeAt(i), 0x01000193) >>> 0;
  return h;
}

/** Short display name of a probe image: `class_folder/file.jpg`, or `CIFAR file #r`. */
function imageName(source: string): string {
  const m = /^cifar:(.*)#(\d+)$/.exec(source);
  if (m) return `${basename(m[1])} #${m[2]}`;
  return `${basename(dirname(source))}/${basename(source)}`;
}

interface LayerData {
  name: string;
  n: number;
  label: number[];
  score: (number | null)[];
  dead: number[];
  /** n×top concept indices and scores. */
  top: number[];
  topScore: (number | null)[];
  nTop: number;
  /** n×nImg image rows and activation values (-1 / null when the layer has no activations file). */
  img: number[];
  act: (number | null)[];
  nImg: number;
  /** n×bands×stripSize image rows (-1 = none) and n×bands band edges. */
  strip: number[];
  cut: (number | null)[];
  /** The trust figures (src/pipeline/trust.ts), when neurons.json has them. */
  trust?: TrustData;
}

/** Per neuron arrays of the trust figures; badge 0 high, 1 medium, 2 low, 3 dead. */
interface TrustData {
  badge: number[];
  stability: number[];
  p: (number | null)[];
  z: (number | null)[];
  sim: (number | null)[];
  /** n×5: correlation, cosine, AUPRC, F1, IoU. */
  metrics: (number | null)[];
  /** Concept ids of the fit half's label and of the runner-up (-1: none), and the runner-up's fraction. */
  fitLabel: number[];
  runnerUp: number[];
  runnerUpFraction: number[];
  settings: LayerTrust['settings'] | null;
  summary: LayerTrust['summary'] | null;
}

const BADGES: readonly TrustBadge[] = ['high', 'medium', 'low', 'dead'];
const r4 = (x: number | null) => (x === null ? null : Math.round(x * 1e4) / 1e4);

/**
 * Builds (or rebuilds) the HTML report of a dissection results folder. Errors: ClipDissectError
 * 'ERR_REPORT_INPUT' naming the file when the folder, neurons.json or an activations file is missing or
 * malformed; 'ERR_REPORT_PAGE' when the page's own files are missing from the installation; ArgumentError
 * for bad options.
 */
export async function buildReport(o: ReportOptions, hooks: RunHooks = {}): Promise<ReportResult> {
  // a run writing the folder (dissect, another report) holds its lock: building meanwhile is refused
  const dir = typeof o?.dir === 'string' && o.dir !== '' ? resolve(o.dir) : '';
  if (dir === '' || !(await stat(dir).catch(() => null))?.isDirectory()) return buildReportUnlocked(o, hooks);
  return withFolderLock(dir, 'report', hooks.onWarning, () => buildReportUnlocked(o, hooks));
}

async function buildReportUnlocked(o: ReportOptions, hooks: RunHooks): Promise<ReportResult> {
  const t0 = performance.now();
  if (typeof o !== 'object' || o === null || typeof o.dir !== 'string' || o.dir === '')
    throw new ArgumentError(
      `buildReport: 'dir' (a results folder) is required but got ${JSON.stringify(o?.dir)}`,
    );
  const topImages = o.topImages ?? 5;
  const thumbSize = o.thumbSize ?? 128;
  const stripSize = o.stripSize ?? 5;
  const seed = o.seed ?? 0;
  positiveInt('topImages', topImages, 1000);
  positiveInt('thumbSize', thumbSize, 2048);
  positiveInt('stripSize', stripSize, 100);
  positiveInt('concurrency', o.concurrency, 64);
  if (!Number.isInteger(seed)) throw new ArgumentError(`'seed' must be an integer but got ${seed}`);
  const warnings: string[] = [];
  const warn = (w: string) => {
    warnings.push(w);
    hooks.onWarning?.(w);
  };

  // the page's own files first: a broken installation fails before any work
  const pageHtml = await reportPageHtml();
  const dir = resolve(o.dir);
  const st = await stat(dir).catch(() => null);
  if (!st?.isDirectory())
    throw new ClipDissectError(
      'ERR_REPORT_INPUT',
      `${dir}: no such results folder (expected the --out folder of clip-dissect dissect)`,
    );
  const out = resolve(o.out ?? join(dir, 'report'));
  await checkWritableFolder(out, o.out === undefined ? undefined : 'out', 'report');
  const neuronsPath = join(dir, 'neurons.json');
  if (!(await isFile(neuronsPath)))
    throw new ClipDissectError(
      'ERR_REPORT_INPUT',
      `${neuronsPath}: not found; the report is built from a clip-dissect dissect results folder (neurons.json, args.json, images.txt, <layer>.npy)`,
    );
  const nj = await readNeuronsJson(dir);
  const argsPath = join(dir, 'args.json');
  const read = (await isFile(argsPath)) ? await readArgsJson(dir) : undefined;
  // a similarity run's args.json names no activations files
  const args: Partial<DissectArgs> = read?.command === 'dissect' ? read : {};
  if (!args.layers) warn(`${argsPath}: not found; the report shows no activation values`);

  const imagesPath = join(dir, 'images.txt');
  let sources: string[] = [];
  if (await isFile(imagesPath)) sources = await readImagesTxt(dir);
  else warn(`${imagesPath}: not found; the report shows no images`);

  // --- per layer: records, then the activation-derived images
  const byLayer = new Map<string, NeuronRecord[]>();
  for (const r of nj.neurons) {
    const list = byLayer.get(r.layer) ?? [];
    list.push(r);
    byLayer.set(r.layer, list);
  }
  const concepts: string[] = [];
  const conceptIndex = new Map<string, number>();
  const cid = (c: string) => {
    let i = conceptIndex.get(c);
    if (i === undefined) {
      i = concepts.length;
      concepts.push(c);
      conceptIndex.set(c, i);
    }
    return i;
  };
  const used = new Set<number>();
  const layers: LayerData[] = [];
  for (let li = 0; li < nj.layers.length; li++) {
    const meta = nj.layers[li];
    const recs = (byLayer.get(meta.layer) ?? []).slice().sort((a, b) => a.unit - b.unit);
    const n = recs.length;
    if (n !== meta.nNeurons || recs.some((r, k) => r.unit !== k))
      throw new ClipDissectError(
        'ERR_REPORT_INPUT',
        `${neuronsPath}: layer '${meta.layer}' declares ${meta.nNeurons} neurons but holds records for ${n} (units must be 0…${meta.nNeurons - 1})`,
      );
    hooks.signal?.throwIfAborted();
    hooks.onProgress?.({ stage: `report ${meta.layer}`, done: 0, total: n, unit: 'neurons' });
    const nTop = recs.reduce((m, r) => Math.max(m, r.top.length), 0);
    const L: LayerData = {
      name: meta.layer,
      n,
      label: [],
      score: [],
      dead: [],
      top: [],
      topScore: [],
      nTop,
      img: [],
      act: [],
      nImg: 0,
      strip: [],
      cut: [],
    };
    for (const r of recs) {
      L.label.push(cid(r.label));
      L.score.push(r.score);
      if (r.dead) L.dead.push(r.unit);
      for (let t = 0; t < nTop; t++) {
        const c = r.top[t];
        L.top.push(c ? cid(c.concept) : -1);
        L.topScore.push(c ? c.score : null);
      }
    }
    if (recs.length > 0 && recs.every((r) => r.trust)) {
      const T: TrustData = {
        badge: [],
        stability: [],
        p: [],
        z: [],
        sim: [],
        metrics: [],
        fitLabel: [],
        runnerUp: [],
        runnerUpFraction: [],
        settings: meta.trust?.settings ?? null,
        summary: meta.trust?.summary ?? null,
      };
      for (const r of recs) {
        const t = r.trust as NonNullable<NeuronRecord['trust']>;
        T.badge.push(Math.max(0, BADGES.indexOf(t.badge)));
        T.stability.push(r4(t.stability) as number);
        T.p.push(t.p === null ? null : Number(t.p.toPrecision(3)));
        T.z.push(r4(t.z));
        T.sim.push(r4(t.simulation));
        const m = t.metrics;
        T.metrics.push(r4(m.correlation), r4(m.cosine), r4(m.auprc), r4(m.f1), r4(m.iou));
        T.fitLabel.push(cid(t.fitLabel));
        T.runnerUp.push(t.runnerUp === null ? -1 : cid(t.runnerUp));
        T.runnerUpFraction.push(t.runnerUpFraction);
      }
      L.trust = T;
    }
    const file = args.layers?.find((l) => l.name === meta.layer)?.file;
    const npyPath = file
      ? await resultsFilePath(dir, file, `the activations file of layer '${meta.layer}'`, argsPath)
      : undefined;
    let A: Matrix | undefined = o.activations?.get(meta.layer);
    let from = `the activations of ${meta.layer}`;
    if (!A && npyPath && (await isFile(npyPath))) {
      A = await readResultsMatrix(dir, file as string);
      from = npyPath;
    }
    if (A) {
      if (A.cols !== n || (sources.length > 0 && A.rows !== sources.length))
        throw new ClipDissectError(
          'ERR_REPORT_INPUT',
          `${from}: shape [${A.rows}, ${A.cols}] does not fit ${sources.length} images (images.txt) × ${n} neurons (neurons.json)`,
        );
    } else if (args.layers)
      warn(
        `${npyPath ?? `${meta.layer}.npy`}: not found; layer ${meta.layer} shows neurons.json's top images without values or strips`,
      );

    if (A && A.rows > 0) {
      const rows = A.rows;
      const nImg = Math.min(topImages, rows);
      const bandSizes = REPORT_BANDS.map((q) => Math.max(1, Math.ceil(q * rows)));
      const k = Math.min(rows, Math.max(nImg, ...bandSizes));
      const order = columnTopK(A, k); // n×k, rank order
      L.nImg = nImg;
      for (let j = 0; j < n; j++) {
        const base = j * k;
        for (let t = 0; t < nImg; t++) {
          const row = order[base + t];
          L.img.push(row);
          L.act.push(act4(A.data[row * n + j]));
          used.add(row);
        }
        const rand = mulberry32(neuronSeed(seed, meta.layer, j));
        for (const b of bandSizes) {
          const size = Math.min(b, k);
          // a partial Fisher–Yates shuffle of the band's ranks, then the sample in rank order
          const ranks = Array.from({ length: size }, (_, i) => i);
          const m = Math.min(stripSize, size);
          for (let i = 0; i < m; i++) {
            const r = i + Math.floor(rand() * (size - i));
            [ranks[i], ranks[r]] = [ranks[r], ranks[i]];
          }
          const pick = ranks.slice(0, m).sort((a, c) => a - c);
          for (let s = 0; s < stripSize; s++) {
            const row = s < m ? order[base + pick[s]] : -1;
            L.strip.push(row);
            if (row >= 0) used.add(row);
          }
          L.cut.push(act4(A.data[order[base + size - 1] * n + j]));
        }
      }
    } else {
      // no activations: neurons.json's recorded top images, without values
      const nImg = Math.min(
        topImages,
        recs.reduce((m, r) => Math.max(m, r.topImages.length), 0),
      );
      L.nImg = nImg;
      for (const r of recs)
        for (let t = 0; t < nImg; t++) {
          const row = r.topImages[t] ?? -1;
          L.img.push(row);
          L.act.push(null);
          if (row >= 0) used.add(row);
        }
    }
    hooks.onProgress?.({ stage: `report ${meta.layer}`, done: n, total: n, unit: 'neurons' });
    layers.push(L);
  }

  // --- thumbnails: one per probe image shown anywhere
  const thumbsDir = join(out, 'thumbs');
  const wanted = [...used].filter((r) => r < sources.length).sort((a, b) => a - b);
  const thumbs = await writeThumbnails(
    thumbsDir,
    wanted,
    sources,
    thumbSize,
    o.concurrency ?? 4,
    hooks,
    warn,
  );

  const images: Record<string, string> = {};
  for (const r of wanted) images[r] = imageName(sources[r]);
  const data = {
    format: 1,
    version: VERSION,
    generated: new Date().toISOString(),
    meta: {
      similarity: nj.similarity ?? null,
      options: read?.options ?? nj.layers[0]?.options ?? {},
      target: args.inputs?.target?.given ?? null,
      clip: args.inputs?.clip?.given ?? null,
      concepts: read?.inputs.concepts.source ?? null,
      nConcepts: read?.inputs.concepts.concepts ?? nj.layers[0]?.nConcepts ?? null,
      template: args.inputs?.concepts?.template ?? null,
      probe: args.inputs?.probe?.given ?? null,
      nImages: sources.length || (nj.layers[0]?.nImages ?? null),
      pool: args.pool ?? null,
      dissected: read?.date ?? null,
      results: dir,
      topImages,
      thumbSize,
      stripSize,
      seed,
      bands: REPORT_BANDS,
    },
    concepts,
    images,
    missing: thumbs.failedRows,
    layers,
  };
  const json = JSON.stringify(data);
  await writeFileAtomic(join(out, 'data.json'), `${json}\n`, { fsync: false });
  // U+2028/2029 are legal in JSON strings and in modern JS, but escape them for older parsers
  const js = json.replace(/\u2028/g, '\\u2028').replace(/\u2029/g, '\\u2029');
  await writeFileAtomic(join(out, 'data.js'), `window.CLIP_DISSECT_REPORT = ${js};\n`, { fsync: false });
  await writeFileAtomic(join(out, 'index.html'), pageHtml, { fsync: false });

  return {
    dir: out,
    index: join(out, 'index.html'),
    layers: layers.length,
    neurons: layers.reduce((s, l) => s + l.n, 0),
    thumbnails: {
      total: wanted.length,
      written: thumbs.written,
      reused: thumbs.reused,
      failed: thumbs.failedRows.length,
    },
    bytes: await folderBytes(out),
    warnings,
    seconds: Math.round(performance.now() - t0) / 1000,
  };
}

interface ThumbIndex {
  size: number;
  quality: number;
  /** Row → the SHA-256 of the image the thumbnail was cut from (its file's bytes, a CIFAR record's pixels). */
  sha256: Record<string, string>;
}

/** Runs `fn` on every item, at most `concurrency` at a time. */
async function forEachLimit<T>(items: readonly T[], concurrency: number, fn: (item: T) => Promise<void>) {
  let next = 0;
  const worker = async () => {
    while (next < items.length) await fn(items[next++]);
  };
  await Promise.all(Array.from({ length: Math.min(concurrency, Math.max(1, items.length)) }, worker));
}

/** The SHA-256 of a probe image's content (undefined when it cannot be read: its thumbnail is then retried). */
async function sourceSha256(source: string): Promise<string | undefined> {
  try {
    if (source.startsWith('cifar:')) return sha256Hex((await loadProbeSource(source)).data);
    return sha256Hex(await readRegularFile(source));
  } catch {
    return undefined;
  }
}

async function writeThumbnails(
  thumbsDir: string,
  rows: number[],
  sources: string[],
  size: number,
  concurrency: number,
  { onProgress, signal }: RunHooks,
  warn: (w: string) => void,
): Promise<{ written: number; reused: number; failedRows: number[] }> {
  const indexPath = join(thumbsDir, 'index.json');
  let prev: ThumbIndex | undefined;
  if (await isFile(indexPath)) prev = await readJson<ThumbIndex>(indexPath).catch(() => undefined);
  const present = new Set<string>((await readdir(thumbsDir).catch(() => [])).map((e) => e.name));
  const sameSettings = prev?.size === size && prev.quality === THUMB_QUALITY && prev.sha256 !== undefined;
  const wanted = new Set(rows.map((r) => `${r}.webp`));
  // thumbnails no longer shown (or of another probe set) go
  for (const f of present)
    if (THUMB_NAME.test(f) && !wanted.has(f)) await rm(join(thumbsDir, f), { force: true });
  // a thumbnail is reused only when its image's content is the one it was cut from (not merely its path)
  const index: ThumbIndex = { size, quality: THUMB_QUALITY, sha256: {} };
  const hashes = new Map<number, string | undefined>();
  await forEachLimit(rows, concurrency, async (r) => {
    hashes.set(r, await sourceSha256(sources[r]));
  });
  const todo: number[] = [];
  let reused = 0;
  for (const r of rows) {
    const sha = hashes.get(r);
    if (sameSettings && present.has(`${r}.webp`) && sha !== undefined && prev?.sha256[r] === sha) {
      index.sha256[r] = sha;
      reused++;
    } else todo.push(r);
  }
  const failedRows: number[] = [];
  let done = 0;
  const stage = 'thumbnails';
  onProgress?.({ stage, done: 0, total: todo.length, unit: 'images' });
  await forEachLimit(todo, concurrency, async (r) => {
    signal?.throwIfAborted();
    try {
      const bytes = await thumbnail(sources[r], size);
      await writeFileAtomic(join(thumbsDir, `${r}.webp`), bytes, { fsync: false });
      const sha = hashes.get(r);
      if (sha !== undefined) index.sha256[r] = sha;
    } catch (e) {
      failedRows.push(r);
      warn(`thumbnail of image ${r} (${sources[r]}): ${(e as Error).message}`);
    }
    onProgress?.({ stage, done: ++done, total: todo.length, unit: 'images' });
  });
  await writeFileAtomic(indexPath, `${JSON.stringify(index)}\n`, { fsync: false });
  failedRows.sort((a, b) => a - b);
  return { written: todo.length - failedRows.length, reused, failedRows };
}

/** A size×size WebP centre crop of a probe image (by its images.txt source). */
async function thumbnail(source: string, size: number): Promise<Uint8Array> {
  if (!source.startsWith('cifar:')) {
    try {
      // shrink-on-load straight from the file's bytes; EXIF orientation is not applied, as for the network
      return await platform.images.thumbnailWebp(await readRegularFile(source), size, THUMB_QUALITY);
    } catch {
      // formats libvips reads differently from PIL (CMYK, 16-bit, palette): the decoder of the pipeline
    }
  }
  const im = await loadProbeSource(source);
  return platform.images.thumbnailWebp(im, size, THUMB_QUALITY);
}

async function folderBytes(path: string): Promise<number> {
  let total = 0;
  for (const e of await readdir(path)) {
    const p = join(path, e.name);
    if (e.isDirectory()) total += await folderBytes(p);
    // another writer's temporary file may be renamed away between the listing and the stat
    else if (e.isFile() && !isTempName(e.name)) total += (await stat(p).catch(() => ({ size: 0 }))).size;
  }
  return total;
}
