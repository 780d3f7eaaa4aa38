/**
 * Folders of images: torchvision's ImageFolder enumeration (class folders walked as `sorted(os.walk(...))`),
 * flat folders, and the manifest lines of image files.
 */
import { platform } from '#platform';
import { describeFsError, fsErrorCode } from '../../io/files.js';
import { fileTypeName } from '../../io/regular-file.js';
import { formatChoices } from '../../numeric/errors.js';
import type { RawDirEntry } from '../../platform/types.js';
import { decodeImageRGB } from '../decode.js';
import { EXPECTED } from './builtin.js';
import { CIFAR10, CIFAR10_FILES, CIFAR100, CIFAR100_FILES, openCifarFile } from './cifar.js';
import { type OpenedSource, type ProbeContext, ProbeDatasetError, type ProbeSource } from './types.js';

const { join, sep } = platform.paths;

/** torchvision's `IMG_EXTENSIONS`, matched against the lower-cased file name. */
export const PROBE_IMAGE_EXTENSIONS: readonly string[] = [
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

interface DirListing {
  dirs: string[];
  files: string[];
}

/** One `os.scandir` pass as `os.walk` classifies it: an entry is a directory when `entry.is_dir()` (which
 * follows symbolic links; a broken link or a failing stat counts as a file). */
async function listDir(dir: string, spec: string): Promise<DirListing> {
  let entries: RawDirEntry[];
  try {
    // names as bytes: one that is not UTF-8 would otherwise come back mangled and be "no such file" later
    entries = await platform.files.readdirRaw(dir);
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
    const name = e.name;
    const isDir = await e.isDirectoryFollowingLinks();
    if (!e.nameIsUtf8) {
      // torchvision lists it (Python decodes such names with surrogate escapes); paths here are UTF-8 text
      // (images.txt, the cache manifest), so it is refused rather than silently left out
      if (isDir || isProbeImageFile(name))
        throw new ProbeDatasetError(
          `probe source '${spec}': the ${isDir ? 'folder' : 'image file'} name '${escapeBytes(e.nameBytes)}' in ${dir} is not valid UTF-8; rename it (e.g. convmv -f latin1 -t utf8)`,
        );
      continue;
    }
    (isDir ? dirs : files).push(name);
  }
  return { dirs, files };
}

/** A file name's bytes with those outside printable ASCII as \xHH. */
function escapeBytes(b: Uint8Array): string {
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
    const st = await platform.files.stat(dir).catch((err) => {
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

export async function openFolder(spec: string, path: string, options: ProbeContext): Promise<OpenedSource> {
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
    options.signal?.throwIfAborted();
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
async function fileManifest(paths: string[], options: ProbeContext): Promise<string[]> {
  const lines = new Array<string>(paths.length);
  const BATCH = 64;
  for (let b = 0; b < paths.length; b += BATCH) {
    options.signal?.throwIfAborted();
    const batch = paths.slice(b, b + BATCH);
    await Promise.all(
      batch.map(async (p, k) => {
        try {
          const st = await platform.files.stat(p);
          // the change time too: a file replaced in place with its size and mtime kept (cp -p, rsync -t) still
          // gets a new one, which users cannot set
          lines[b + k] = st.isFile()
            ? JSON.stringify(['file', p, st.size.toString(), st.mtimeNs.toString(), st.ctimeNs.toString()])
            : // fileTypeName reads only the is*() methods, which FileStat has
              JSON.stringify(['file', p, fileTypeName(st as unknown as Parameters<typeof fileTypeName>[0])]);
        } catch (err) {
          // listed but unreadable (a broken link, as torchvision lists too): load(i) will throw for it
          lines[b + k] = JSON.stringify([
            'file',
            p,
            fsErrorCode(err) ?? (err as Error).message ?? String(err),
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
