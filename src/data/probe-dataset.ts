/**
 * Probe datasets (see ./probe/index.ts): this module keeps the import path that callers use. The parts live in
 * ./probe/: index (source composition), image-folder (ImageFolder walk), cifar (CIFAR files), builtin (the
 * CIFAR-100 download), tar (the archive reader), types.
 */
export { BUILTIN_PROBE_DATASETS } from './probe/builtin.js';
export { CIFAR10_CLASSES, CIFAR100_CLASSES } from './probe/cifar.js';
export { compareCodePoints, isProbeImageFile } from './probe/image-folder.js';
export {
  checkOutputsOutsideProbe,
  loadProbeSource,
  openProbeDataset,
  type RunOutputFolder,
} from './probe/index.js';
export { readTar, type TarMember } from './probe/tar.js';
export {
  type OpenProbeDatasetOptions,
  type ProbeDataset,
  ProbeDatasetError,
  type ProbeImage,
  type ProbeSource,
} from './probe/types.js';
