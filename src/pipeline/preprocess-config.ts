/**
 * Preprocessing given as a JSON file (`--preprocess FILE`): either clip-dissect's own PreprocessConfig
 * (`{"resize": 256, "crop": 224, "interpolation": "bilinear", "mean": [...], "std": [...]}`) or a Hugging Face
 * `preprocessor_config.json` (read by preprocessorConfigFromHF).
 */
import {
  IMAGENET_PREPROCESS,
  type PreprocessConfig,
  preprocessorConfigFromHF,
  preprocessShape,
} from '../data/preprocess.js';
import { readTextInput } from '../io/regular-file.js';
import { ArgumentError, ClipDissectError, formatChoices } from '../numeric/errors.js';

/** The keys of a PreprocessConfig file; `resize` and `crop` are required, the others default to ImageNet's. */
const OWN_KEYS = ['resize', 'crop', 'interpolation', 'mean', 'std', 'rescale', 'cropRounding'] as const;

/** Keys that mark a Hugging Face image processor config. */
const HF_KEYS = [
  'size',
  'crop_size',
  'resample',
  'image_mean',
  'image_std',
  'rescale_factor',
  'do_resize',
  'do_center_crop',
  'do_rescale',
  'do_normalize',
  'image_processor_type',
  'feature_extractor_type',
  'processor_class',
];

/**
 * Reads a preprocessing JSON file: a PreprocessConfig (recognised by its `resize` / `crop` keys; `interpolation`,
 * `mean` and `std` default to torchvision's ImageNet transform) or a Hugging Face `preprocessor_config.json`.
 * Errors (ClipDissectError 'ERR_PREPROCESSOR_CONFIG' or ArgumentError) start with the path.
 */
export async function loadPreprocessConfig(path: string): Promise<PreprocessConfig> {
  const text = await readTextInput(path, 'preprocessing file');
  let json: unknown;
  try {
    json = JSON.parse(text);
  } catch (e) {
    throw new ClipDissectError(
      'ERR_PREPROCESSOR_CONFIG',
      `${path}: not valid JSON (${(e as Error).message}); expected a preprocessing config such as {"resize": 256, "crop": 224} or a Hugging Face preprocessor_config.json`,
    );
  }
  return parsePreprocessJson(json, path);
}

/** {@link loadPreprocessConfig} on parsed JSON; `source` starts error messages. */
export function parsePreprocessJson(json: unknown, source: string): PreprocessConfig {
  if (json === null || typeof json !== 'object' || Array.isArray(json))
    throw new ClipDissectError(
      'ERR_PREPROCESSOR_CONFIG',
      `${source}: expected a JSON object (a preprocessing config or a Hugging Face preprocessor_config.json) but got ${Array.isArray(json) ? 'an array' : JSON.stringify(json)}`,
    );
  const j = json as Record<string, unknown>;
  const keys = Object.keys(j);
  if ('resize' in j || 'crop' in j) {
    const unknown = keys.filter((k) => !(OWN_KEYS as readonly string[]).includes(k));
    if (unknown.length > 0)
      throw new ClipDissectError(
        'ERR_PREPROCESSOR_CONFIG',
        `${source}: unknown key${unknown.length > 1 ? 's' : ''} ${formatChoices(unknown).replace(' or ', ' and ')} in a preprocessing config; its keys are ${formatChoices(OWN_KEYS)}`,
      );
    for (const k of ['resize', 'crop'])
      if (!(k in j))
        throw new ClipDissectError(
          'ERR_PREPROCESSOR_CONFIG',
          `${source}: '${k}' is missing (both 'resize' and 'crop' are required)`,
        );
    const cfg: PreprocessConfig = {
      resize: j.resize as PreprocessConfig['resize'],
      crop: j.crop as PreprocessConfig['crop'],
      interpolation: (j.interpolation ??
        IMAGENET_PREPROCESS.interpolation) as PreprocessConfig['interpolation'],
      mean: (j.mean ?? [...IMAGENET_PREPROCESS.mean]) as PreprocessConfig['mean'],
      std: (j.std ?? [...IMAGENET_PREPROCESS.std]) as PreprocessConfig['std'],
      ...(j.rescale !== undefined ? { rescale: j.rescale as number } : {}),
      ...(j.cropRounding !== undefined ? { cropRounding: j.cropRounding as 'round' | 'floor' } : {}),
    };
    try {
      preprocessShape(cfg);
    } catch (e) {
      if (e instanceof ArgumentError)
        throw new ClipDissectError(
          'ERR_PREPROCESSOR_CONFIG',
          `${source}: ${e.message.replace(/^cfg\./, '')}`,
        );
      throw e;
    }
    return cfg;
  }
  if (!keys.some((k) => HF_KEYS.includes(k)))
    throw new ClipDissectError(
      'ERR_PREPROCESSOR_CONFIG',
      `${source}: neither a preprocessing config (no 'resize' / 'crop') nor a Hugging Face preprocessor_config.json (none of ${formatChoices(HF_KEYS.slice(0, 6))} …); got the keys ${keys.length ? formatChoices(keys) : '(none)'}`,
    );
  return preprocessorConfigFromHF(json, source);
}
