/** CIFAR-10 / CIFAR-100 binary files: their formats, class names, labels and records. */
import { platform } from '#platform';
import { describeFsError } from '../../io/files.js';
import { regularFileStat } from '../../io/regular-file.js';
import { ClipDissectError } from '../../numeric/errors.js';
import type { RGBImage } from '../decode.js';
import { type OpenedSource, type ProbeContext, ProbeDatasetError, type Segment } from './types.js';

export const CIFAR10_FILES = [
  'data_batch_1.bin',
  'data_batch_2.bin',
  'data_batch_3.bin',
  'data_batch_4.bin',
  'data_batch_5.bin',
  'test_batch.bin',
];
export const CIFAR100_FILES = ['train.bin', 'test.bin'];
export const CIFAR_PIXELS = 32 * 32 * 3;

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

export interface CifarFormat {
  kind: 'cifar10' | 'cifar100';
  /** Label bytes before the pixels of each record. */
  labelBytes: number;
  /** Which label byte is the label (CIFAR-100: 1, the fine label). */
  labelAt: number;
  classes: readonly string[];
}

export const CIFAR10: CifarFormat = { kind: 'cifar10', labelBytes: 1, labelAt: 0, classes: CIFAR10_CLASSES };
export const CIFAR100: CifarFormat = {
  kind: 'cifar100',
  labelBytes: 2,
  labelAt: 1,
  classes: CIFAR100_CLASSES,
};

export function cifarFormatOf(name: string): CifarFormat | undefined {
  if (CIFAR10_FILES.includes(name)) return CIFAR10;
  if (CIFAR100_FILES.includes(name)) return CIFAR100;
  return undefined;
}

/**
 * Reads a CIFAR binary file once: its SHA-256 (for the manifest) and every record's label. The file must
 * be a whole number of records.
 */
export async function openCifarFile(
  path: string,
  format: CifarFormat,
  options: ProbeContext,
): Promise<{ segment: Omit<Segment, 'start'>; images: OpenedSource['images']; sha256: string }> {
  const recordSize = format.labelBytes + CIFAR_PIXELS;
  const name = platform.paths.basename(path);
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
  const hash = platform.hashing.sha256();
  let pos = 0;
  let nextRecord = 0;
  try {
    for await (const chunk of platform.files.readChunks(path, 1 << 20)) {
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
  const sha256 = hash.digestHex();
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
export async function readCifarRecord(
  path: string,
  r: number,
  recordSize: number,
  labelBytes: number,
): Promise<RGBImage> {
  const source = `cifar:${path}#${r}`;
  const planes = new Uint8Array(CIFAR_PIXELS);
  try {
    const fh = await platform.files.open(path, 'r');
    try {
      const bytesRead = await fh.read(planes, 0, CIFAR_PIXELS, r * recordSize + labelBytes);
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
