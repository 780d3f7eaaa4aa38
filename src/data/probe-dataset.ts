/**
 * Probe datasets: the images whose CLIP features and target-network activations CLIP-Dissect compares.
 * A probe set is one or more sources, concatenated in the order given (`--probe a,b`). Each source is
 *
 * - a folder of class folders, enumerated exactly like torchvision's `ImageFolder` (the loader of the
 *   reference implementation's probe sets, `DatasetFolder.make_dataset`):
 *   classes = sorted sub-folder names; then, class by class, `sorted(os.walk(class_dir, followlinks=True))`
 *   (every directory under the class, ordered by its whole path string) with the files of each directory
 *   sorted. Python sorts strings by Unicode code point, not by locale (`'B' < '_' < 'a'`, `'a10' < 'a2'`).
 *   A file is an image when its lower-cased name ends with one of {@link PROBE_IMAGE_EXTENSIONS} (hidden
 *   files included, as in torchvision); other files are ignored;
 * - a flat folder of images (no sub-folder holds an image): its image files, names sorted by code point;
 * - CIFAR-10 / CIFAR-100 binary files (`data_batch_1.bin` … `data_batch_5.bin`, `test_batch.bin`;
 *   `train.bin`, `test.bin`), or a folder holding them (every one present, in that order);
 * - a built-in name, {@link BUILTIN_PROBE_NAMES}: the CIFAR-100 training or test split, downloaded once.
 *
 * Image indices are stable: image i of the probe order is `images[i]` and `load(i)`, whatever happens to
 * other images. A file that cannot be decoded makes `load(i)` throw the decoder's ClipDissectError (code
 * 'ERR_IMAGE' or 'ERR_IMAGE_READ', message starting with the path); skipping such images (and keeping the
 * indices of the others) is left to the caller.
 */
import { createHash, randomBytes } from 'node:crypto';
import { createReadStream } from 'node:fs';
import { mkdir, open, readdir, readFile, rm, stat } from 'node:fs/promises';
import { basename, join, resolve, sep } from 'node:path';
import { promisify } from 'node:util';
import { gunzip as gunzipCallback } from 'node:zlib';
import { writeFileAtomic } from '../io/atomic.js';
import { markUsed } from '../io/cache-files.js';
import { describeFsError } from '../io/files.js';
import { isInsideFolder } from '../io/paths.js';
import { fileTypeName, regularFileStat } from '../io/regular-file.js';
import { ArgumentError, ClipDissectError, formatChoices } from '../numeric/errors.js';
import type { ProgressCallback } from '../progress.js';
import { defaultCacheDir } from './builtin-concepts.js';
import { decodeImageRGB, type RGBImage } from './decode.js';

const gunzip = promisify(gunzipCallback);

/** One probe image. */
export interface ProbeImage {
  /** Position in the probe order (0-based); equal to its index in `ProbeDataset.images`. */
  index: number;
  /** The image file's absolute path, or `cifar:FILE#i` for record i (0-based) of CIFAR binary file FILE. */
  source: string;
  /** Class index within its source: the class folder's index (ImageFolder), the CIFAR label (CIFAR-100:
   * the fine label). Absent for flat folders. */
  label?: number;
  /** Name of the class `label` indexes. */
  className?: string;
}

/** What one source of a probe set turned out to be. */
export interface ProbeSource {
  /** The source as given (a path or a built-in name). */
  spec: string;
  kind: 'image-folder' | 'flat-folder' | 'cifar10' | 'cifar100';
  /** Absolute path of the folder or file read (for a built-in: the cached file). */
  path: string;
  /** Index of this source's first image in the probe order. */
  start: number;
  /** Number of images it contributes. */
  count: number;
  /** Its class names (label i is classes[i]); absent for flat folders. */
  classes?: string[];
}

/** A probe set: the images in probe order, and how to read each. */
export interface ProbeDataset {
  /** The probe order. */
  images: ProbeImage[];
  /** The class names that `label` indexes, when every source has the same list (else absent: use each
   * image's `className`). */
  classes?: string[];
  /** The sources, in order. */
  sources: ProbeSource[];
  /** Things the caller may want to tell the user (e.g. image files that ImageFolder ignores). */
  warnings: string[];
  /**
   * A stable text of every image's identity, for cache keys: for each image file its absolute path, size,
   * modification and change times (nanoseconds); for each CIFAR file the SHA-256 of its content and its record count.
   * Nothing else (no host name, cache location or time of day). It reflects the files as they were when the
   * dataset was opened: open it again to see later changes.
   */
  manifest(): string;
  /** Decodes image i to 8-bit RGB (PIL `convert('RGB')` pixels for files; the 32×32 record for CIFAR). */
  load(i: number): Promise<RGBImage>;
}

/** Options of {@link openProbeDataset}. */
export interface OpenProbeDatasetOptions {
  /** Where built-in datasets are cached (under `<cacheDir>/datasets/`). Default: defaultCacheDir(). */
  cacheDir?: string;
  /** Never touch the network: a built-in dataset must already be cached. */
  offline?: boolean;
  /** The fetch implementation (default: global fetch). */
  fetch?: typeof fetch;
  /** Replaces the official URL prefix of built-in downloads (a mirror, or a local server in tests). */
  baseUrl?: string;
  /**
   * Checksums (hex) that a downloaded built-in archive must have, replacing the published MD5 (for a mirror
   * that repackaged the archive, or a test). The SHA-256 pinned at the first download is checked as well.
   */
  archiveChecksums?: { md5?: string; sha256?: string };
  onProgress?: ProgressCallback;
}

/** Error in a probe-set specification or source (code 'ERR_PROBE_DATASET'). */
export class ProbeDatasetError extends ClipDissectError {
  constructor(message: string, options?: { cause?: unknown }) {
    super('ERR_PROBE_DATASET', message, options);
  }
}

/** torchvision's `IMG_EXTENSIONS`, matched against the lower-cased file name. */
const PROBE_IMAGE_EXTENSIONS: readonly string[] = [
  '.jpg',
  '.jpeg',
  '.png',
  '.ppm',
  '.bmp',
  '.pgm',
  '.tif',
  '.tiff',
  '.webp',
];

const CIFAR10_FILES = [
  'data_batch_1.bin',
  'data_batch_2.bin',
  'data_batch_3.bin',
  'data_batch_4.bin',
  'data_batch_5.bin',
  'test_batch.bin',
];
const CIFAR100_FILES = ['train.bin', 'test.bin'];
const CIFAR_PIXELS = 32 * 32 * 3;

export const CIFAR10_CLASSES: readonly string[] = [
  'airplane',
  'automobile',
  'bird',
  'cat',
  'deer',
  'dog',
  'frog',
  'horse',
  'ship',
  'truck',
];

/** CIFAR-100 fine labels (`fine_label_names.txt`; alphabetical, as the labels are numbered). */
export const CIFAR100_CLASSES: readonly string[] = (
  'apple aquarium_fish baby bear beaver bed bee beetle bicycle bottle bowl boy bridge bus butterfly camel can ' +
  'castle caterpillar cattle chair chimpanzee clock cloud cockroach couch crab crocodile cup dinosaur dolphin ' +
  'elephant flatfish forest fox girl hamster house kangaroo keyboard lamp lawn_mower leopard lion lizard ' +
  'lobster man maple_tree motorcycle mountain mouse mushroom oak_tree orange orchid otter palm_tree pear ' +
  'pickup_truck pine_tree plain plate poppy porcupine possum rabbit raccoon ray road rocket rose sea seal ' +
  'shark shrew skunk skyscraper snail snake spider squirrel streetcar sunflower sweet_pepper table tank ' +
  'telephone television tiger tractor train trout tulip turtle wardrobe whale willow_tree wolf woman worm'
).split(' ');

interface CifarFormat {
  kind: 'cifar10' | 'cifar100';
  /** Label bytes before the pixels of each record. */
  labelBytes: number;
  /** Which label byte is the label (CIFAR-100: 1, the fine label). */
  labelAt: number;
  classes: readonly string[];
}

const CIFAR10: CifarFormat = { kind: 'cifar10', labelBytes: 1, labelAt: 0, classes: CIFAR10_CLASSES };
const CIFAR100: CifarFormat = { kind: 'cifar100', labelBytes: 2, labelAt: 1, classes: CIFAR100_CLASSES };

function cifarFormatOf(name: string): CifarFormat | undefined {
  if (CIFAR10_FILES.includes(name)) return CIFAR10;
  if (CIFAR100_FILES.includes(name)) return CIFAR100;
  return undefined;
}

/** The archive of the built-in datasets, as published by its authors. */
const CIFAR100_ARCHIVE = {
  file: 'cifar-100-binary.tar.gz',
  url: 'https://www.cs.toronto.edu/~kriz/cifar-100-binary.tar.gz',
  /** The MD5 published with the archive on https://www.cs.toronto.edu/~kriz/cifar.html. No SHA-256 is
   * published: the archive's SHA-256 is pinned in the cache at the first download (trust on first use) and
   * every later download must match it. */
  md5: '03b5dce01913d631647c71ecec9e9cb8',
  /** The folder inside the archive. */
  folder: 'cifar-100-binary',
} as const;

export const BUILTIN_PROBE_DATASETS: Readonly<Record<string, { member: string; description: string }>> = {
  cifar100_train: { member: 'train.bin', description: 'CIFAR-100 training split (50,000 images, 32×32)' },
  cifar100_val: { member: 'test.bin', description: 'CIFAR-100 test split (10,000 images, 32×32)' },
};

const BUILTIN_PROBE_NAMES = Object.keys(BUILTIN_PROBE_DATASETS);

const EXPECTED = `a folder of images, a folder of class folders (torchvision ImageFolder layout), CIFAR binary files (${formatChoices([...CIFAR10_FILES, ...CIFAR100_FILES])}) or a folder holding them, or one of the built-in names ${formatChoices(BUILTIN_PROBE_NAMES)}`;

/**
 * Compares two strings by Unicode code point, as Python's `str` comparison (and so `sorted`) does. JavaScript's
 * `<` compares UTF-16 code units, which differs for characters above U+FFFF versus U+E000–U+FFFF.
 */
export function compareCodePoints(a: string, b: string): number {
  const n = Math.min(a.length, b.length);
  for (let i = 0; i < n; i++) {
    let x = a.charCodeAt(i);
    let y = b.charCodeAt(i);
    if (x !== y) {
      if (x >= 0xd800 && y >= 0xd800) {
        // surrogates (U+D800–DFFF, which encode code points above U+FFFF) must sort after U+E000–FFFF
        x = x >= 0xe000 ? x - 0x800 : x + 0x2000;
        y = y >= 0xe000 ? y - 0x800 : y + 0x2000;
      }
      return x - y;
    }
  }
  return a.length - b.length;
}

/** torchvision's `has_file_allowed_extension(name, IMG_EXTENSIONS)`. */
export function isProbeImageFile(name: string): boolean {
  const lower = name.toLowerCase();
  return PROBE_IMAGE_EXTENSIONS.some((ext) => lower.endsWith(ext));
}

/** A run of consecutive probe images read the same way. */
interface Segment {
  start: number;
  count: number;
  manifest: string[];
  load(local: number): Promise<RGBImage>;
}

interface OpenedSource {
  source: Omit<ProbeSource, 'start' | 'count'>;
  images: Omit<ProbeImage, 'index'>[];
  /** Manifest lines and loaders, one segment per CIFAR file / one for all files of a folder. */
  segments: Omit<Segment, 'start'>[];
  warnings: string[];
}

/**
 * Opens a probe set. `spec` is one source or a comma-separated list of sources (a string that names an
 * existing path as a whole is not split); an array gives the sources verbatim. Sources are concatenated in
 * order. Errors (ProbeDatasetError, ArgumentError) name the source and say what was expected.
 */
export async function openProbeDataset(
  spec: string | readonly string[],
  options: OpenProbeDatasetOptions = {},
): Promise<ProbeDataset> {
  const specs = await splitSpec(spec);
  const opened: OpenedSource[] = [];
  for (const s of specs) opened.push(await openSource(s, options));

  const images: ProbeImage[] = [];
  const sources: ProbeSource[] = [];
  const segments: Segment[] = [];
  const warnings: string[] = [];
  for (const o of opened) {
    const start = images.length;
    for (const im of o.images) images.push({ index: images.length, ...im });
    sources.push({ ...o.source, start, count: o.images.length });
    let at = start;
    for (const seg of o.segments) {
      segments.push({ ...seg, start: at });
      at += seg.count;
    }
    warnings.push(...o.warnings);
  }
  const first = sources[0].classes;
  const sameClasses =
    first !== undefined &&
    sources.every(
      (s) => s.classes && s.classes.length === first.length && s.classes.every((c, i) => c === first[i]),
    );
  const manifestText = [
    'clip-dissect probe manifest v1',
    `images\t${images.length}`,
    ...segments.flatMap((s) => s.manifest),
    '',
  ].join('\n');
  return {
    images,
    classes: sameClasses ? [...first] : undefined,
    sources,
    warnings,
    manifest: () => manifestText,
    load(i: number): Promise<RGBImage> {
      if (!Number.isInteger(i) || i < 0 || i >= images.length) {
        return Promise.reject(
          new ArgumentError(
            `load: image index must be an integer from 0 to ${images.length - 1} but got ${String(i)}`,
          ),
        );
      }
      let lo = 0;
      let hi = segments.length - 1;
      while (lo < hi) {
        const mid = (lo + hi + 1) >> 1;
        if (segments[mid].start <= i) lo = mid;
        else hi = mid - 1;
      }
      return segments[lo].load(i - segments[lo].start);
    },
  };
}

/** A folder that a run writes into (its output folder, its cache), named for messages. */
export interface RunOutputFolder {
  /** e.g. "the output folder ('out' / --out)". */
  what: string;
  path: string;
}

/**
 * Refuses folders that a run writes into (`outputs`) when they lie inside a probe folder of `spec` (real paths
 * compared, links resolved; equal counts as inside): the next run would scan its own outputs (report
 * thumbnails, images.txt…) as probe images. Cheap (no folder walk): call it before any expensive work.
 */
export async function checkOutputsOutsideProbe(
  spec: string | readonly string[],
  outputs: readonly (RunOutputFolder | undefined)[],
): Promise<void> {
  for (const part of await splitSpec(spec)) {
    const isDir = (await stat(part).catch(() => null))?.isDirectory() === true;
    if (!isDir) continue;
    for (const o of outputs) {
      if (o === undefined || typeof o.path !== 'string' || o.path === '') continue;
      if (await isInsideFolder(part, o.path))
        throw new ProbeDatasetError(
          `${o.what} '${o.path}' is inside the probe folder '${part}': a later run would read what this one writes there as probe images; choose a folder outside the probe folder`,
        );
    }
  }
}

async function exists(path: string): Promise<boolean> {
  try {
    await stat(path);
    return true;
  } catch {
    return false;
  }
}

async function splitSpec(spec: string | readonly string[]): Promise<string[]> {
  let parts: string[];
  if (typeof spec === 'string') {
    parts = spec.includes(',') && !(await exists(spec)) ? spec.split(',').map((p) => p.trim()) : [spec];
  } else if (Array.isArray(spec)) {
    parts = [...spec];
  } else {
    throw new ArgumentError(
      `openProbeDataset: 'spec' must be a string or an array of strings but got ${typeof spec}`,
    );
  }
  if (parts.length === 0) throw new ArgumentError(`probe set: no source given; expected ${EXPECTED}`);
  for (const p of parts) {
    if (typeof p !== 'string' || p === '') {
      throw new ArgumentError(
        `probe set '${Array.isArray(spec) ? spec.join(',') : spec}': empty source name in the list; expected ${EXPECTED}`,
      );
    }
  }
  return parts;
}

async function openSource(spec: string, options: OpenProbeDatasetOptions): Promise<OpenedSource> {
  const path = resolve(spec);
  let st: Awaited<ReturnType<typeof stat>>;
  try {
    st = await stat(path);
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code !== 'ENOENT') {
      throw new ProbeDatasetError(`probe source '${spec}': cannot read it (${describeFsError(err)})`, {
        cause: err,
      });
    }
    if (BUILTIN_PROBE_DATASETS[spec]) return openBuiltin(spec, options);
    throw new ProbeDatasetError(
      `probe source '${spec}': no such file or folder (${path}) and not a built-in dataset; expected ${EXPECTED}`,
    );
  }
  if (st.isDirectory()) return openFolder(spec, path, options);
  if (st.isFile()) {
    const format = cifarFormatOf(basename(path));
    if (!format) {
      throw new ProbeDatasetError(
        `probe source '${spec}' is a file but not a CIFAR binary file (recognised by its name); expected ${EXPECTED}`,
      );
    }
    const { segment, images } = await openCifarFile(path, format, options);
    if (images.length === 0)
      throw new ProbeDatasetError(`probe source '${spec}': ${path} is empty (0 records)`);
    return {
      source: { spec, kind: format.kind, path, classes: [...format.classes] },
      images,
      segments: [segment],
      warnings: [],
    };
  }
  throw new ProbeDatasetError(`probe source '${spec}' is neither a file nor a folder; expected ${EXPECTED}`);
}

interface DirListing {
  dirs: string[];
  files: string[];
}

/** One `os.scandir` pass as `os.walk` classifies it: an entry is a directory when `entry.is_dir()` (which
 * follows symbolic links; a broken link or a failing stat counts as a file). */
async function listDir(dir: string, spec: string): Promise<DirListing> {
  let entries: import('node:fs').Dirent<Buffer>[];
  try {
    // names as bytes: one that is not UTF-8 would otherwise come back mangled and be "no such file" later
    entries = await readdir(dir, { withFileTypes: true, encoding: 'buffer' });
  } catch (err) {
    throw new ProbeDatasetError(
      `probe source '${spec}': cannot list folder ${dir} (${describeFsError(err)})`,
      {
        cause: err,
      },
    );
  }
  const dirs: string[] = [];
  const files: string[] = [];
  for (const e of entries) {
    const name = e.name.toString('utf8');
    const utf8 = Buffer.from(name, 'utf8').equals(e.name);
    let isDir = e.isDirectory();
    if (!isDir && e.isSymbolicLink())
      isDir = await stat(Buffer.concat([Buffer.from(`${dir}${sep}`), e.name])).then(
        (s) => s.isDirectory(),
        () => false,
      );
    if (!utf8) {
      // torchvision lists it (Python decodes such names with surrogate escapes); paths here are UTF-8 text
      // (images.txt, the cache manifest), so it is refused rather than silently left out
      if (isDir || isProbeImageFile(name))
        throw new ProbeDatasetError(
          `probe source '${spec}': the ${isDir ? 'folder' : 'image file'} name '${escapeBytes(e.name)}' in ${dir} is not valid UTF-8; rename it (e.g. convmv -f latin1 -t utf8)`,
        );
      continue;
    }
    (isDir ? dirs : files).push(name);
  }
  return { dirs, files };
}

/** A file name's bytes with those outside printable ASCII as \xHH. */
function escapeBytes(b: Buffer): string {
  return Array.from(b, (x) =>
    x >= 0x20 && x < 0x7f ? String.fromCharCode(x) : `\\x${x.toString(16).padStart(2, '0')}`,
  ).join('');
}

/**
 * The image files under `classDir` in the order of torchvision's `make_dataset`:
 * `for root, _, fnames in sorted(os.walk(classDir, followlinks=True)): for fname in sorted(fnames)`.
 * Sorting the walk's tuples sorts the directories by their whole path string (so `x/a b` and `x/a-b` come
 * before `x/a/c`, and `x/a0` after it), not depth-first. A directory that links back to one of its own
 * ancestors is an error (os.walk would descend until the OS refuses the path).
 */
async function walkClass(classDir: string, spec: string): Promise<string[]> {
  const roots: { root: string; files: string[] }[] = [];
  const visit = async (dir: string, ancestors: Set<string>): Promise<void> => {
    const st = await stat(dir, { bigint: true }).catch((err) => {
      throw new ProbeDatasetError(
        `probe source '${spec}': cannot read folder ${dir} (${describeFsError(err)})`,
        {
          cause: err,
        },
      );
    });
    const id = `${st.dev}:${st.ino}`;
    if (ancestors.has(id)) {
      throw new ProbeDatasetError(
        `probe source '${spec}': ${dir} is a link back to a folder that contains it (a cycle); torchvision would list its images again at every level until the path became too long; remove the link`,
      );
    }
    const { dirs, files } = await listDir(dir, spec);
    roots.push({ root: dir, files });
    const inner = new Set(ancestors).add(id);
    for (const d of dirs) await visit(join(dir, d), inner);
  };
  await visit(classDir, new Set());
  roots.sort((a, b) => compareCodePoints(a.root, b.root));
  const out: string[] = [];
  for (const { root, files } of roots) {
    for (const f of [...files].sort(compareCodePoints)) {
      if (isProbeImageFile(f)) out.push(`${root}${sep}${f}`);
    }
  }
  return out;
}

async function openFolder(
  spec: string,
  path: string,
  options: OpenProbeDatasetOptions,
): Promise<OpenedSource> {
  const { dirs, files } = await listDir(path, spec);

  // CIFAR binary files: every one present, in the canonical order
  const c10 = CIFAR10_FILES.filter((f) => files.includes(f));
  const c100 = CIFAR100_FILES.filter((f) => files.includes(f));
  if (c10.length > 0 && c100.length > 0) {
    throw new ProbeDatasetError(
      `probe source '${spec}': the folder holds both CIFAR-10 files (${c10.join(', ')}) and CIFAR-100 files (${c100.join(', ')}); name the files to use`,
    );
  }
  if (c10.length > 0 || c100.length > 0) {
    const format = c10.length > 0 ? CIFAR10 : CIFAR100;
    const images: OpenedSource['images'] = [];
    const segments: OpenedSource['segments'] = [];
    for (const f of c10.length > 0 ? c10 : c100) {
      const opened = await openCifarFile(join(path, f), format, options);
      images.push(...opened.images);
      segments.push(opened.segment);
    }
    if (images.length === 0) {
      throw new ProbeDatasetError(`probe source '${spec}': the CIFAR files in ${path} hold no records`);
    }
    return {
      source: { spec, kind: format.kind, path, classes: [...format.classes] },
      images,
      segments,
      warnings: [],
    };
  }

  // class folders (ImageFolder), when any sub-folder holds an image
  const classes = [...dirs].sort(compareCodePoints);
  const perClass: string[][] = [];
  for (let c = 0; c < classes.length; c++) {
    perClass.push(await walkClass(join(path, classes[c]), spec));
    options.onProgress?.({ stage: 'list probe images', done: c + 1, total: classes.length, unit: 'classes' });
  }
  const topImages = files.filter(isProbeImageFile).sort(compareCodePoints);
  const warnings: string[] = [];
  let kind: ProbeSource['kind'];
  let paths: string[];
  const labels: number[] = [];
  if (perClass.some((p) => p.length > 0)) {
    const empty = classes.filter((_, c) => perClass[c].length === 0);
    if (empty.length > 0) {
      throw new ProbeDatasetError(
        `probe source '${spec}': class folders ${formatChoices(empty).replace(' or ', ' and ')} in ${path} hold no image files (${PROBE_IMAGE_EXTENSIONS.join(' ')}); torchvision's ImageFolder refuses such a folder too: remove them or add images`,
      );
    }
    kind = 'image-folder';
    paths = perClass.flat();
    perClass.forEach((p, c) => {
      for (let k = 0; k < p.length; k++) labels.push(c);
    });
    if (topImages.length > 0) {
      warnings.push(
        `probe source '${spec}': ${topImages.length} image file(s) at the top of ${path} (${topImages.slice(0, 3).join(', ')}${topImages.length > 3 ? ', …' : ''}) are ignored: only files inside class folders are probe images, as in torchvision's ImageFolder`,
      );
    }
  } else {
    kind = 'flat-folder';
    paths = topImages.map((f) => join(path, f));
  }
  if (paths.length === 0) {
    throw new ProbeDatasetError(
      `probe source '${spec}': no image files in ${path}${dirs.length > 0 ? ` or its ${dirs.length} sub-folder(s)` : ''} (image files end in ${PROBE_IMAGE_EXTENSIONS.join(' ')}, any case); expected ${EXPECTED}`,
    );
  }

  const manifest = await fileManifest(paths, options);
  const images: OpenedSource['images'] =
    kind === 'image-folder'
      ? paths.map((p, k) => ({ source: p, label: labels[k], className: classes[labels[k]] }))
      : paths.map((p) => ({ source: p }));
  return {
    source: kind === 'image-folder' ? { spec, kind, path, classes } : { spec, kind, path },
    images,
    segments: [{ count: paths.length, manifest, load: (k) => decodeImageRGB(paths[k]) }],
    warnings,
  };
}

/** One manifest line per image file: JSON `["file", path, size, mtimeNs, ctimeNs]`, or `["file", path, why]` for a
 * listed file that cannot be stat'ed (a broken link: the error code) or is not a regular file (a FIFO, socket or
 * device: never opened, load(i) refuses it as an unreadable image). */
async function fileManifest(paths: string[], options: OpenProbeDatasetOptions): Promise<string[]> {
  const lines = new Array<string>(paths.length);
  const BATCH = 64;
  for (let b = 0; b < paths.length; b += BATCH) {
    const batch = paths.slice(b, b + BATCH);
    await Promise.all(
      batch.map(async (p, k) => {
        try {
          const st = await stat(p, { bigint: true });
          // the change time too: a file replaced in place with its size and mtime kept (cp -p, rsync -t) still
          // gets a new one, which users cannot set
          lines[b + k] = st.isFile()
            ? JSON.stringify(['file', p, st.size.toString(), st.mtimeNs.toString(), st.ctimeNs.toString()])
            : JSON.stringify(['file', p, fileTypeName(st)]);
        } catch (err) {
          // listed but unreadable (a broken link, as torchvision lists too): load(i) will throw for it
          lines[b + k] = JSON.stringify([
            'file',
            p,
            (err as NodeJS.ErrnoException).code ?? (err as Error).message ?? String(err),
          ]);
        }
      }),
    );
    options.onProgress?.({
      stage: 'scan probe images',
      done: Math.min(b + BATCH, paths.length),
      total: paths.length,
      unit: 'files',
    });
  }
  return lines;
}

/**
 * Reads a CIFAR binary file once: its SHA-256 (for the manifest) and every record's label. The file must
 * be a whole number of records.
 */
async function openCifarFile(
  path: string,
  format: CifarFormat,
  options: OpenProbeDatasetOptions,
): Promise<{ segment: Omit<Segment, 'start'>; images: OpenedSource['images']; sha256: string }> {
  const recordSize = format.labelBytes + CIFAR_PIXELS;
  const name = basename(path);
  let size: number;
  try {
    size = (await regularFileStat(path)).size;
  } catch (err) {
    if (err instanceof ClipDissectError) throw new ProbeDatasetError(`CIFAR file ${err.message}`);
    throw new ProbeDatasetError(`${path}: cannot read CIFAR file (${describeFsError(err)})`, { cause: err });
  }
  if (size % recordSize !== 0) {
    throw new ProbeDatasetError(
      `${path}: ${size} bytes is not a whole number of ${format.kind === 'cifar10' ? 'CIFAR-10' : 'CIFAR-100'} records of ${recordSize} bytes (${format.labelBytes} label byte(s) + 3072 pixels), as its name '${name}' says it holds; the file is truncated or not a CIFAR binary file`,
    );
  }
  const count = size / recordSize;
  const labels = new Uint8Array(count);
  const hash = createHash('sha256');
  let pos = 0;
  let nextRecord = 0;
  try {
    for await (const chunk of createReadStream(path, { highWaterMark: 1 << 20 }) as AsyncIterable<Buffer>) {
      hash.update(chunk);
      const end = pos + chunk.length;
      while (nextRecord < count) {
        const at = nextRecord * recordSize + format.labelAt;
        if (at >= end) break;
        labels[nextRecord++] = chunk[at - pos];
      }
      pos = end;
      options.onProgress?.({ stage: `read ${name}`, done: pos, total: size, unit: 'bytes' });
    }
  } catch (err) {
    throw new ProbeDatasetError(`${path}: cannot read CIFAR file (${describeFsError(err)})`, { cause: err });
  }
  if (pos !== size || nextRecord !== count) {
    throw new ProbeDatasetError(
      `${path}: the file changed size while it was read (${size} then ${pos} bytes)`,
    );
  }
  const nClasses = format.classes.length;
  const images: OpenedSource['images'] = new Array(count);
  for (let r = 0; r < count; r++) {
    const label = labels[r];
    if (label >= nClasses) {
      throw new ProbeDatasetError(
        `${path}: record ${r} has label ${label} but ${format.kind === 'cifar10' ? 'CIFAR-10' : 'CIFAR-100'} labels go from 0 to ${nClasses - 1}; not a ${format.kind === 'cifar10' ? 'CIFAR-10' : 'CIFAR-100'} binary file`,
      );
    }
    images[r] = { source: `cifar:${path}#${r}`, label, className: format.classes[label] };
  }
  const sha256 = hash.digest('hex');
  return {
    sha256,
    images,
    segment: {
      count,
      manifest: [JSON.stringify(['cifar', format.kind, sha256, count])],
      load: (r) => readCifarRecord(path, r, recordSize, format.labelBytes),
    },
  };
}

/** Record r as a 32×32 HWC RGB image (the file stores the R, G and B planes one after another). */
async function readCifarRecord(
  path: string,
  r: number,
  recordSize: number,
  labelBytes: number,
): Promise<RGBImage> {
  const source = `cifar:${path}#${r}`;
  const planes = new Uint8Array(CIFAR_PIXELS);
  try {
    const fh = await open(path, 'r');
    try {
      const { bytesRead } = await fh.read(planes, 0, CIFAR_PIXELS, r * recordSize + labelBytes);
      if (bytesRead !== CIFAR_PIXELS) {
        throw new ClipDissectError(
          'ERR_IMAGE_READ',
          `${source}: the file ended inside the record (it changed after the probe set was opened)`,
        );
      }
    } finally {
      await fh.close();
    }
  } catch (err) {
    if (err instanceof ClipDissectError) throw err;
    throw new ClipDissectError(
      'ERR_IMAGE_READ',
      `${source}: cannot read the record: ${describeFsError(err)}`,
      {
        cause: err,
      },
    );
  }
  const data = new Uint8Array(CIFAR_PIXELS);
  const n = 32 * 32;
  for (let p = 0; p < n; p++) {
    data[p * 3] = planes[p];
    data[p * 3 + 1] = planes[n + p];
    data[p * 3 + 2] = planes[2 * n + p];
  }
  return { width: 32, height: 32, data };
}

/**
 * Reads one probe image by its `ProbeImage.source` (as written to a results folder's images.txt): an image
 * file's path (decoded as PIL's `convert('RGB')` does) or `cifar:FILE#r`, record r of a CIFAR binary file.
 * Errors: ClipDissectError 'ERR_IMAGE_READ' / 'ERR_IMAGE' naming the source.
 */
export async function loadProbeSource(source: string): Promise<RGBImage> {
  const m = /^cifar:(.*)#(\d+)$/.exec(source);
  if (!m) return decodeImageRGB(source);
  const format = cifarFormatOf(basename(m[1]));
  if (!format)
    throw new ClipDissectError(
      'ERR_IMAGE_READ',
      `${source}: '${basename(m[1])}' is not a CIFAR binary file name (${formatChoices([...CIFAR10_FILES, ...CIFAR100_FILES])})`,
    );
  return readCifarRecord(m[1], Number(m[2]), format.labelBytes + CIFAR_PIXELS, format.labelBytes);
}

// ---------------------------------------------------------------------------------------------------------
// Built-in datasets

/** What the cache records about the downloaded archive (`<cacheDir>/datasets/cifar-100-binary.json`). */
interface ArchivePin {
  archive: string;
  md5: string;
  /** Pinned at the first download (trust on first use). */
  sha256: string;
  members: Record<string, { size: number; sha256: string }>;
}

async function readPin(path: string): Promise<ArchivePin | undefined> {
  let text: string;
  try {
    text = await readFile(path, 'utf8');
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') return undefined;
    throw new ProbeDatasetError(`${path}: cannot read the dataset cache record (${describeFsError(err)})`);
  }
  try {
    const pin = JSON.parse(text) as ArchivePin;
    if (typeof pin.sha256 !== 'string' || typeof pin.members !== 'object' || pin.members === null)
      throw new Error();
    return pin;
  } catch {
    throw new ProbeDatasetError(
      `${path}: the dataset cache record is corrupt (not the JSON clip-dissect writes); delete it to download the dataset again and pin the archive's SHA-256 anew`,
    );
  }
}

async function openBuiltin(name: string, options: OpenProbeDatasetOptions): Promise<OpenedSource> {
  const { member } = BUILTIN_PROBE_DATASETS[name];
  const root = join(options.cacheDir ?? defaultCacheDir(), 'datasets');
  const pinPath = join(root, `${CIFAR100_ARCHIVE.folder}.json`);
  const file = join(root, CIFAR100_ARCHIVE.folder, member);
  for (let attempt = 0; ; attempt++) {
    const pin = await readPin(pinPath);
    const want = pin?.members[member];
    if (
      want &&
      (await stat(file).then(
        (s) => s.size === want.size,
        () => false,
      ))
    ) {
      const { segment, images, sha256 } = await openCifarFile(file, CIFAR100, options);
      if (sha256 === want.sha256) {
        await markUsed(pinPath); // its modification time is the dataset's last use (clip-dissect cache)
        return {
          source: { spec: name, kind: 'cifar100', path: file, classes: [...CIFAR100_CLASSES] },
          images,
          segments: [segment],
          warnings: [],
        };
      }
      if (attempt > 0) {
        throw new ProbeDatasetError(
          `${file}: changed right after it was extracted (SHA-256 ${sha256}); giving up`,
        );
      }
      await rm(file, { force: true }); // corrupted in the cache: extract it again
      await downloadCifar100(name, root, pinPath, pin, `is corrupted in the cache (${file})`, options);
      continue;
    }
    if (attempt > 0) throw new ProbeDatasetError(`${file}: missing right after it was extracted; giving up`);
    await downloadCifar100(
      name,
      root,
      pinPath,
      pin,
      `is not in the cache (${join(root, CIFAR100_ARCHIVE.folder)})`,
      options,
    );
  }
}

async function downloadCifar100(
  name: string,
  root: string,
  pinPath: string,
  pin: ArchivePin | undefined,
  why: string,
  options: OpenProbeDatasetOptions,
): Promise<void> {
  const url = options.baseUrl
    ? `${options.baseUrl.replace(/\/?$/, '/')}${CIFAR100_ARCHIVE.file}`
    : CIFAR100_ARCHIVE.url;
  const dir = join(root, CIFAR100_ARCHIVE.folder);
  if (options.offline) {
    throw new ProbeDatasetError(
      `built-in probe dataset '${name}' ${why} and offline mode forbids downloading it; run once without --offline, or download ${url} yourself, extract it and pass ${join(CIFAR100_ARCHIVE.folder, BUILTIN_PROBE_DATASETS[name].member)}`,
    );
  }
  const stage = `download ${CIFAR100_ARCHIVE.file}`;
  const tmp = join(root, `${CIFAR100_ARCHIVE.file}.${process.pid}.${randomBytes(6).toString('hex')}.part`);
  const md5 = createHash('md5');
  const sha = createHash('sha256');
  try {
    // download to a temporary file, hashing on the way
    let received = 0;
    try {
      const res = await (options.fetch ?? fetch)(url);
      if (!res.ok) throw new Error(`HTTP ${res.status} ${res.statusText}`);
      const total = Number(res.headers.get('content-length') ?? 0);
      await mkdir(root, { recursive: true });
      const fh = await open(tmp, 'w');
      try {
        options.onProgress?.({ stage, done: 0, total, unit: 'bytes' });
        if (res.body) {
          for await (const chunk of res.body as unknown as AsyncIterable<Uint8Array>) {
            md5.update(chunk);
            sha.update(chunk);
            await fh.write(chunk);
            received += chunk.length;
            options.onProgress?.({ stage, done: received, total: Math.max(total, received), unit: 'bytes' });
          }
        }
      } finally {
        await fh.close();
      }
    } catch (err) {
      throw new ProbeDatasetError(
        `cannot download built-in probe dataset '${name}' from ${url}: ${(err as Error).message}; download it yourself, extract it and pass ${join(CIFAR100_ARCHIVE.folder, BUILTIN_PROBE_DATASETS[name].member)}`,
        { cause: err },
      );
    }
    const gotMd5 = md5.digest('hex');
    const gotSha = sha.digest('hex');
    const wantMd5 =
      options.archiveChecksums?.md5 ?? (options.archiveChecksums?.sha256 ? undefined : CIFAR100_ARCHIVE.md5);
    const wantSha = options.archiveChecksums?.sha256;
    const bad = (what: string, got: string, want: string, why: string) =>
      new ProbeDatasetError(
        `built-in probe dataset '${name}': the archive downloaded from ${url} (${received} bytes) has ${what} ${got} but ${want} was expected (${why}); not using it`,
      );
    if (wantMd5 && gotMd5 !== wantMd5.toLowerCase()) throw bad('MD5', gotMd5, wantMd5, 'the published MD5');
    if (wantSha && gotSha !== wantSha.toLowerCase())
      throw bad('SHA-256', gotSha, wantSha, 'archiveChecksums.sha256');
    if (pin && gotSha !== pin.sha256) {
      throw bad(
        'SHA-256',
        gotSha,
        pin.sha256,
        `pinned in ${pinPath} when the archive was first downloaded; if the publisher really changed the archive, delete that file to accept the new one`,
      );
    }

    // extract train.bin and test.bin
    options.onProgress?.({ stage: `extract ${CIFAR100_ARCHIVE.file}`, done: 0, total: 1, unit: 'file' });
    let tar: Uint8Array;
    try {
      tar = await gunzip(await readFile(tmp));
    } catch (err) {
      throw new ProbeDatasetError(
        `${url}: the download is not a gzip file (${(err as Error).message}); not using it`,
      );
    }
    const members = new Map<string, Uint8Array>();
    for (const m of readTar(tar, url)) {
      const base = m.name.split('/').pop() ?? '';
      if (m.type === 'file' && CIFAR100_FILES.includes(base) && !members.has(base)) members.set(base, m.data);
    }
    const record: ArchivePin = { archive: CIFAR100_ARCHIVE.file, md5: gotMd5, sha256: gotSha, members: {} };
    for (const f of CIFAR100_FILES) {
      const data = members.get(f);
      if (!data) {
        throw new ProbeDatasetError(
          `${url}: the archive has no ${f} (members found: ${[...members.keys()].join(', ') || 'none of train.bin, test.bin'}); not a CIFAR-100 binary archive`,
        );
      }
      if (data.length === 0 || data.length % (2 + CIFAR_PIXELS) !== 0) {
        throw new ProbeDatasetError(
          `${url}: ${f} in the archive has ${data.length} bytes, not a whole number of CIFAR-100 records of ${2 + CIFAR_PIXELS} bytes; not using it`,
        );
      }
      record.members[f] = { size: data.length, sha256: createHash('sha256').update(data).digest('hex') };
    }
    for (const f of CIFAR100_FILES) await writeFileAtomic(join(dir, f), members.get(f)!);
    // written last, and only for an archive that extracted cleanly: the pin of trust on first use
    await writeFileAtomic(pinPath, `${JSON.stringify(record, null, 2)}\n`);
    options.onProgress?.({ stage: `extract ${CIFAR100_ARCHIVE.file}`, done: 1, total: 1, unit: 'file' });
  } finally {
    await rm(tmp, { force: true });
  }
}

/** A member of a tar archive. */
export interface TarMember {
  name: string;
  type: 'file' | 'directory' | 'other';
  data: Uint8Array;
}

/**
 * Reads the members of an uncompressed tar archive (POSIX ustar, GNU and old v7 headers; GNU long names and
 * pax `path` records are honoured). Header checksums are verified. `source` names the archive in errors.
 */
export function readTar(tar: Uint8Array, source: string): TarMember[] {
  const members: TarMember[] = [];
  const text = (a: number, b: number) => {
    let end = a;
    while (end < b && tar[end] !== 0) end++;
    return Buffer.from(tar.subarray(a, end)).toString('utf8');
  };
  const number = (a: number, len: number): number => {
    if (tar[a] & 0x80) {
      // GNU base-256
      let v = 0;
      for (let i = a + 1; i < a + len; i++) v = v * 256 + tar[i];
      return v;
    }
    const s = text(a, a + len).trim();
    return s === '' ? 0 : Number.parseInt(s, 8);
  };
  let longName: string | undefined;
  let paxPath: string | undefined;
  let off = 0;
  while (off + 512 <= tar.length) {
    const h = off;
    const header = tar.subarray(h, h + 512);
    if (header.every((b) => b === 0)) break; // end of archive
    let sum = 0;
    for (let i = 0; i < 512; i++) sum += i >= 148 && i < 156 ? 32 : header[i];
    if (number(h + 148, 8) !== sum) {
      throw new ProbeDatasetError(`${source}: corrupt tar archive (bad header checksum at byte ${h})`);
    }
    const size = number(h + 124, 12);
    const typeflag = String.fromCharCode(tar[h + 156] || 0x30);
    const dataStart = h + 512;
    if (!Number.isFinite(size) || dataStart + size > tar.length) {
      throw new ProbeDatasetError(
        `${source}: truncated tar archive (a member of ${size} bytes at byte ${h})`,
      );
    }
    const data = tar.subarray(dataStart, dataStart + size);
    off = dataStart + Math.ceil(size / 512) * 512;
    if (typeflag === 'L') {
      longName = text(dataStart, dataStart + size);
      continue;
    }
    if (typeflag === 'x') {
      paxPath = /(?:^|\n)\d+ path=([^\n]*)\n/.exec(Buffer.from(data).toString('utf8'))?.[1];
      continue;
    }
    if (typeflag === 'g') continue;
    let name = text(h, h + 100);
    if (text(h + 257, h + 263) === 'ustar' && tar[h + 262] === 0) {
      // POSIX ustar (magic "ustar\0"); old GNU headers ("ustar  ") keep other fields there
      const prefix = text(h + 345, h + 500);
      if (prefix) name = `${prefix}/${name}`;
    }
    name = paxPath ?? longName ?? name;
    longName = undefined;
    paxPath = undefined;
    const type = typeflag === '0' || typeflag === '7' ? 'file' : typeflag === '5' ? 'directory' : 'other';
    members.push({ name, type, data });
  }
  return members;
}
