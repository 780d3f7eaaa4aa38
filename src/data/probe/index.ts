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
import { platform } from '#platform';
import { describeFsError, fsErrorCode } from '../../io/files.js';
import { isInsideFolder } from '../../io/paths.js';
import { ArgumentError, ClipDissectError, formatChoices } from '../../numeric/errors.js';
import type { FileStat } from '../../platform/types.js';
import type { RunHooks } from '../../progress.js';
import { decodeImageRGB, type RGBImage } from '../decode.js';
import { BUILTIN_PROBE_DATASETS, EXPECTED, openBuiltin } from './builtin.js';
import {
  CIFAR_PIXELS,
  CIFAR10_FILES,
  CIFAR100_FILES,
  cifarFormatOf,
  openCifarFile,
  readCifarRecord,
} from './cifar.js';
import { openFolder } from './image-folder.js';
import {
  type OpenedSource,
  type OpenProbeDatasetOptions,
  type ProbeContext,
  type ProbeDataset,
  ProbeDatasetError,
  type ProbeImage,
  type ProbeSource,
  type Segment,
} from './types.js';

/**
 * Opens a probe set. `spec` is one source or a comma-separated list of sources (a string that names an
 * existing path as a whole is not split); an array gives the sources verbatim. Sources are concatenated in
 * order. Errors (ProbeDatasetError, ArgumentError) name the source and say what was expected. `hooks`: progress
 * (listing, scanning, reading CIFAR files, downloading a built-in set), each warning as it arises (also kept in
 * `warnings`), and a signal that stops the opening (a download in progress leaves no partial file).
 */
export async function openProbeDataset(
  spec: string | readonly string[],
  options: OpenProbeDatasetOptions = {},
  hooks: RunHooks = {},
): Promise<ProbeDataset> {
  const context: ProbeContext = {
    ...options,
    onProgress: hooks.onProgress ?? options.onProgress,
    onWarning: hooks.onWarning,
    signal: hooks.signal,
  };
  const specs = await splitSpec(spec);
  const opened: OpenedSource[] = [];
  for (const s of specs) {
    hooks.signal?.throwIfAborted();
    const o = await openSource(s, context);
    for (const w of o.warnings) hooks.onWarning?.(w);
    opened.push(o);
  }

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
    const isDir = (await platform.files.stat(part).catch(() => null))?.isDirectory() === true;
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
    await platform.files.stat(path);
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

async function openSource(spec: string, options: ProbeContext): Promise<OpenedSource> {
  const path = platform.paths.resolve(spec);
  let st: FileStat;
  try {
    st = await platform.files.stat(path);
  } catch (err) {
    if (fsErrorCode(err) !== 'ENOENT') {
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
    const format = cifarFormatOf(platform.paths.basename(path));
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

/**
 * Reads one probe image by its `ProbeImage.source` (as written to a results folder's images.txt): an image
 * file's path (decoded as PIL's `convert('RGB')` does) or `cifar:FILE#r`, record r of a CIFAR binary file.
 * Errors: ClipDissectError 'ERR_IMAGE_READ' / 'ERR_IMAGE' naming the source.
 */
export async function loadProbeSource(source: string): Promise<RGBImage> {
  const m = /^cifar:(.*)#(\d+)$/.exec(source);
  if (!m) return decodeImageRGB(source);
  const format = cifarFormatOf(platform.paths.basename(m[1]));
  if (!format)
    throw new ClipDissectError(
      'ERR_IMAGE_READ',
      `${source}: '${platform.paths.basename(m[1])}' is not a CIFAR binary file name (${formatChoices([...CIFAR10_FILES, ...CIFAR100_FILES])})`,
    );
  return readCifarRecord(m[1], Number(m[2]), format.labelBytes + CIFAR_PIXELS, format.labelBytes);
}
