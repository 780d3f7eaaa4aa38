/**
 * `clip-dissect/data`: image decoding and the torchvision-equivalent preprocessing on their own (sharp decodes,
 * the resize and crop are the library's own), and the label files other methods write.
 */

export { decodeImageRGB, type RGBImage, supportedImageFormats } from './decode.js';
export {
  LabelsFileError,
  type LabelsLayout,
  type MethodLabels,
  readClassNames,
  readMethodLabels,
} from './labels-files.js';
export {
  CLIP_PREPROCESS,
  IMAGENET_PREPROCESS,
  type PreprocessConfig,
  preprocessImage,
  preprocessorConfigFromHF,
  preprocessShape,
  resizedSize,
} from './preprocess.js';
export { RESAMPLE_FILTERS, type ResampleFilter, resizeRGB } from './resize.js';
