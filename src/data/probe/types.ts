/** The types every part of a probe set shares: images, sources, the dataset, its options and errors. */
import { ClipDissectError } from '../../numeric/errors.js';
import type { ProgressCallback, RunHooks } from '../../progress.js';
import type { RGBImage } from '../decode.js';

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
  /** @deprecated pass `onProgress` in the second argument ({@link RunHooks}); still honoured. */
  onProgress?: ProgressCallback;
}

/** Error in a probe-set specification or source (code 'ERR_PROBE_DATASET'). */
export class ProbeDatasetError extends ClipDissectError {
  constructor(message: string, options?: { cause?: unknown }) {
    super('ERR_PROBE_DATASET', message, options);
  }
}

/** What the parts of openProbeDataset are given: the options and the caller's hooks (hooks win). */
export type ProbeContext = OpenProbeDatasetOptions & RunHooks;

/** A run of consecutive probe images read the same way. */
export interface Segment {
  start: number;
  count: number;
  manifest: string[];
  load(local: number): Promise<RGBImage>;
}

export interface OpenedSource {
  source: Omit<ProbeSource, 'start' | 'count'>;
  images: Omit<ProbeImage, 'index'>[];
  /** Manifest lines and loaders, one segment per CIFAR file / one for all files of a folder. */
  segments: Omit<Segment, 'start'>[];
  warnings: string[];
}
