/**
 * Image preprocessing for vision models, reproducing torchvision's
 * `Compose([Resize(r, interpolation), CenterCrop(c), ToTensor(), Normalize(mean, std)])` on a PIL RGB image
 * (the transform of torchvision's ImageNet models and of OpenAI CLIP) to the last float32 bit:
 *
 * 1. Resize (Pillow's resampler, see ./resize.ts): an int `r` makes the shorter side `r` and the longer side
 *    `int(r * long / short)` (truncated, torchvision's `_compute_resized_output_size`); `[h, w]` resizes to
 *    exactly that. No resize when the size does not change.
 * 2. CenterCrop: when the crop is larger than the image it is first padded with zeros, `(crop - size) // 2`
 *    before and `(crop - size + 1) // 2` after; the crop then starts at `round((size - crop) / 2)` with
 *    Python's round-half-to-even (`cropRounding: 'floor'` takes `(size - crop) // 2`, as Hugging Face does).
 * 3. ToTensor: `x / 255` in float32 (or `x * rescale` rounded to float32 when `rescale` is given, as Hugging
 *    Face's `rescale` does; for rescale = 1/255 both give the same float32 for every x in 0..255).
 * 4. Normalize: `(x - mean) / std` in float32, with mean and std rounded to float32 first.
 *
 * The result is a CHW Float32Array (3 x cropH x cropW).
 */
import { ArgumentError, ClipDissectError, formatChoices, ShapeError } from '../numeric/errors.js';
import type { RGBImage } from './decode.js';
import {
  assertRGBImage,
  RESAMPLE_FILTERS,
  type Region,
  type ResampleFilter,
  resizeRGBRegion,
} from './resize.js';

export interface PreprocessConfig {
  /** Resize: an int makes the shorter side this long (torchvision `Resize(int)`); `[height, width]` resizes
   * to exactly that size (torchvision `Resize([h, w])`). */
  resize: number | [number, number];
  /** Center crop: a square side, or `[height, width]`. */
  crop: number | [number, number];
  interpolation: ResampleFilter;
  /** Per-channel (R, G, B) mean subtracted after scaling to 0..1. */
  mean: [number, number, number];
  /** Per-channel (R, G, B) standard deviation divided by after subtracting the mean. */
  std: [number, number, number];
  /** Pixel scale factor. Default: `x / 255` exactly as torchvision's ToTensor; when set, `x * rescale`
   * (Hugging Face's `rescale_factor`). */
  rescale?: number;
  /** How the crop offset of an odd margin is rounded: 'round' (default, torchvision: round half to even) or
   * 'floor' (Hugging Face image processors). */
  cropRounding?: 'round' | 'floor';
}

/** torchvision's ImageNet evaluation transform: Resize(256, bilinear), CenterCrop(224), ImageNet mean/std. */
export const IMAGENET_PREPROCESS: Readonly<PreprocessConfig> = Object.freeze<PreprocessConfig>({
  resize: 256,
  crop: 224,
  interpolation: 'bilinear',
  mean: [0.485, 0.456, 0.406],
  std: [0.229, 0.224, 0.225],
});

/** OpenAI CLIP's transform (`clip.load(...)[1]` at 224 px): Resize(224, bicubic), CenterCrop(224), CLIP
 * mean/std. */
export const CLIP_PREPROCESS: Readonly<PreprocessConfig> = Object.freeze<PreprocessConfig>({
  resize: 224,
  crop: 224,
  interpolation: 'bicubic',
  mean: [0.48145466, 0.4578275, 0.40821073],
  std: [0.26862954, 0.26130258, 0.27577711],
});

/**
 * The size torchvision's `Resize(resize)` gives an image of `width` x `height`, as `[width, height]`.
 * An int makes the shorter side `resize` and the longer `int(resize * long / short)`.
 */
export function resizedSize(
  width: number,
  height: number,
  resize: number | [number, number],
): [number, number] {
  if (Array.isArray(resize)) return [resize[1], resize[0]];
  const [short, long] = width <= height ? [width, height] : [height, width];
  const newLong = Math.trunc((resize * long) / short);
  return width <= height ? [resize, newLong] : [newLong, resize];
}

/** Python's `round()` of a multiple of 0.5: halves go to the even neighbour. */
function roundHalfEven(x: number): number {
  const f = Math.floor(x);
  const d = x - f;
  if (d < 0.5) return f;
  if (d > 0.5) return f + 1;
  return f % 2 === 0 ? f : f + 1;
}

/** Checks a config; returns the crop as `[height, width]`. `where` names the config in messages. */
function checkConfig(cfg: PreprocessConfig, where: string): [number, number] {
  if (cfg === null || typeof cfg !== 'object') {
    throw new ArgumentError(`${where} must be a PreprocessConfig object but got ${String(cfg)}`);
  }
  const posInt = (v: unknown) => Number.isInteger(v) && (v as number) >= 1;
  const pair = (v: unknown) => Array.isArray(v) && v.length === 2 && v.every(posInt);
  if (!posInt(cfg.resize) && !pair(cfg.resize)) {
    throw new ArgumentError(
      `${where}.resize must be a positive integer (shorter side) or [height, width] but got ${JSON.stringify(cfg.resize)}`,
    );
  }
  if (!posInt(cfg.crop) && !pair(cfg.crop)) {
    throw new ArgumentError(
      `${where}.crop must be a positive integer or [height, width] but got ${JSON.stringify(cfg.crop)}`,
    );
  }
  if (!RESAMPLE_FILTERS.includes(cfg.interpolation)) {
    throw new ArgumentError(
      `${where}.interpolation must be ${formatChoices(RESAMPLE_FILTERS)} but got ${JSON.stringify(cfg.interpolation)}`,
    );
  }
  for (const key of ['mean', 'std'] as const) {
    const v = cfg[key];
    if (!Array.isArray(v) || v.length !== 3 || !v.every((x) => typeof x === 'number' && Number.isFinite(x))) {
      throw new ArgumentError(
        `${where}.${key} must be 3 finite numbers (R, G, B) but got ${JSON.stringify(v)}`,
      );
    }
  }
  if (cfg.std.some((x) => x === 0)) {
    throw new ArgumentError(`${where}.std must not contain 0 but got ${JSON.stringify(cfg.std)}`);
  }
  if (cfg.rescale !== undefined && !(typeof cfg.rescale === 'number' && Number.isFinite(cfg.rescale))) {
    throw new ArgumentError(
      `${where}.rescale must be a finite number but got ${JSON.stringify(cfg.rescale)}`,
    );
  }
  if (cfg.cropRounding !== undefined && cfg.cropRounding !== 'round' && cfg.cropRounding !== 'floor') {
    throw new ArgumentError(
      `${where}.cropRounding must be 'round' or 'floor' but got ${JSON.stringify(cfg.cropRounding)}`,
    );
  }
  return typeof cfg.crop === 'number' ? [cfg.crop, cfg.crop] : [cfg.crop[0], cfg.crop[1]];
}

/** Output shape `[3, cropHeight, cropWidth]` of {@link preprocessImage} for a config. */
export function preprocessShape(cfg: PreprocessConfig): [number, number, number] {
  const [h, w] = checkConfig(cfg, 'cfg');
  return [3, h, w];
}

/**
 * Resize, center-crop, scale and normalise an RGB image as torchvision does; returns CHW float32
 * (3 x cropHeight x cropWidth). When `out` is given (length 3 * cropHeight * cropWidth) it is filled and
 * returned, so that a batch can be written in place. Equal to `normalizeCrop(cropImage(img, cfg), cfg, out)`.
 */
export function preprocessImage(img: RGBImage, cfg: PreprocessConfig, out?: Float32Array): Float32Array {
  return normalizeCrop(cropImage(img, cfg), cfg, out);
}

/**
 * Steps 1–2 of {@link preprocessImage}: the resized, center-cropped image as HWC uint8 (cropHeight x cropWidth
 * x 3 bytes, a quarter of the float32 tensor), zero where the crop is larger than the resized image.
 */
export function cropImage(img: RGBImage, cfg: PreprocessConfig): Uint8Array {
  assertRGBImage(img, 'img');
  const [cropH, cropW] = checkConfig(cfg, 'cfg');

  // 1. Where the center crop lies in the resized image, padding with zeros where the crop is larger.
  const [rw, rh] = resizedSize(img.width, img.height, cfg.resize);
  const padLeft = cropW > rw ? (cropW - rw) >> 1 : 0;
  const padTop = cropH > rh ? (cropH - rh) >> 1 : 0;
  const paddedW = cropW > rw ? rw + padLeft + ((cropW - rw + 1) >> 1) : rw;
  const paddedH = cropH > rh ? rh + padTop + ((cropH - rh + 1) >> 1) : rh;
  const offset =
    cfg.cropRounding === 'floor' ? (d: number) => Math.floor(d / 2) : (d: number) => roundHalfEven(d / 2);
  // Position of output pixel (0, 0) in the resized image.
  const x0 = offset(paddedW - cropW) - padLeft;
  const y0 = offset(paddedH - cropH) - padTop;

  // 2. Resize (uint8, Pillow), computing only the resized pixels the crop keeps.
  const keep: Region = {
    x: Math.max(0, x0),
    y: Math.max(0, y0),
    width: Math.min(rw, x0 + cropW) - Math.max(0, x0),
    height: Math.min(rh, y0 + cropH) - Math.max(0, y0),
  };
  const r = resizeRGBRegion(img, rw, rh, cfg.interpolation, keep);
  if (r.width === cropW && r.height === cropH) return r.data;
  // padded: the kept region goes where the crop window sees it
  const out = new Uint8Array(cropH * cropW * 3);
  const dx = keep.x - x0;
  const dy = keep.y - y0;
  for (let y = 0; y < r.height; y++)
    out.set(r.data.subarray(y * r.width * 3, (y + 1) * r.width * 3), ((y + dy) * cropW + dx) * 3);
  return out;
}

/**
 * Steps 3–4 of {@link preprocessImage}: a crop from {@link cropImage} (HWC uint8) scaled and normalised in
 * float32, `((x / 255) - mean) / std` with each step rounded to float32, into CHW `out` (new when absent).
 */
export function normalizeCrop(crop: Uint8Array, cfg: PreprocessConfig, out?: Float32Array): Float32Array {
  const [cropH, cropW] = checkConfig(cfg, 'cfg');
  const plane = cropH * cropW;
  if (!(crop instanceof Uint8Array) || crop.length !== 3 * plane)
    throw new ShapeError(
      `normalizeCrop: 'crop' must be a Uint8Array of ${cropH}*${cropW}*3 = ${3 * plane} bytes (HWC) but got ${
        crop instanceof Uint8Array ? `length ${crop.length}` : typeof crop
      }`,
    );
  if (out === undefined) out = new Float32Array(3 * plane);
  else if (!(out instanceof Float32Array) || out.length !== 3 * plane) {
    throw new ShapeError(
      `preprocessImage: 'out' must be a Float32Array of 3*${cropH}*${cropW} = ${3 * plane} values but got ${
        out instanceof Float32Array ? `length ${out.length}` : typeof out
      }`,
    );
  }
  const lut = new Float32Array(3 * 256);
  for (let c = 0; c < 3; c++) {
    const m = Math.fround(cfg.mean[c]);
    const s = Math.fround(cfg.std[c]);
    for (let v = 0; v < 256; v++) {
      const x = cfg.rescale === undefined ? Math.fround(v / 255) : Math.fround(v * cfg.rescale);
      lut[c * 256 + v] = Math.fround(Math.fround(x - m) / s);
    }
  }
  for (let o = 0, p = 0; o < plane; o++, p += 3) {
    out[o] = lut[crop[p]];
    out[plane + o] = lut[256 + crop[p + 1]];
    out[2 * plane + o] = lut[512 + crop[p + 2]];
  }
  return out;
}

/** PIL resampling codes that Hugging Face `preprocessor_config.json` files use, and ours. */
const HF_RESAMPLE: Readonly<Record<number, ResampleFilter>> = { 0: 'nearest', 2: 'bilinear', 3: 'bicubic' };
const HF_RESAMPLE_NAMES: Readonly<Record<number, string>> = { 1: 'LANCZOS', 4: 'BOX', 5: 'HAMMING' };

/**
 * Reads a Hugging Face `preprocessor_config.json` (CLIPImageProcessor and alike: `size` as an int or
 * `{shortest_edge}` (the shorter side, CLIPImageProcessor's reading of an int) or `{height, width}`; `crop_size` as an int or `{height, width}`; `resample` as a PIL
 * code, 0 nearest, 2 bilinear or 3 bicubic; `image_mean`, `image_std`, `rescale_factor`, `do_resize`,
 * `do_center_crop`, `do_rescale`, `do_normalize`). Missing fields take CLIPImageProcessor's defaults, except
 * that a missing `crop_size` with a `{height, width}` size crops nothing (SigLIP-style processors). An int
 * `size` in a file whose processor type is not a CLIP one is refused as ambiguous, except for the processors
 * whose reading is known: ViT, DeiT and BEiT read it as a square (`{height: n, width: n}`); ConvNeXt's (which
 * the Hugging Face ResNets use) as the crop's side with `crop_pct` (default 224/256): the shorter side is
 * resized to int(size / crop_pct) and the centre size×size cropped (size < 384), or the image resized to
 * size×size (size >= 384). These processors default to bilinear resampling and their own mean/std
 * (ViT-like: 0.5; ConvNeXt: ImageNet's). `source` (the file path) starts every error message.
 *
 * `cropRounding` sets where the center crop of an odd overhang starts: 'round' (default) as torchvision's
 * CenterCrop, `round((size - crop) / 2)` with halves to the even neighbour, the crop of OpenAI's `clip.load`
 * and of the official CLIP-Dissect code, which builds torchvision transforms for CLIP and for targets alike;
 * 'floor' as Hugging Face's image processors, `(size - crop) // 2` (one pixel to the left or top of
 * torchvision's whenever the overhang is odd and its half rounds up, e.g. 741x500 -> 331x224 crops at x = 53
 * instead of 54).
 */
export function preprocessorConfigFromHF(
  json: unknown,
  source = 'preprocessor_config.json',
  cropRounding: 'round' | 'floor' = 'round',
): PreprocessConfig {
  if (cropRounding !== 'round' && cropRounding !== 'floor')
    throw new ArgumentError(
      `preprocessorConfigFromHF: 'cropRounding' must be 'round' or 'floor' but got ${JSON.stringify(cropRounding)}`,
    );
  const fail = (field: string, message: string): never => {
    throw new ClipDissectError('ERR_PREPROCESSOR_CONFIG', `${source}: '${field}' ${message}`);
  };
  if (json === null || typeof json !== 'object' || Array.isArray(json)) {
    throw new ClipDissectError(
      'ERR_PREPROCESSOR_CONFIG',
      `${source}: expected a JSON object (a Hugging Face preprocessor_config.json) but got ${
        Array.isArray(json) ? 'an array' : JSON.stringify(json)
      }`,
    );
  }
  const j = json as Record<string, unknown>;
  const show = (v: unknown) => JSON.stringify(v);
  const posInt = (v: unknown): v is number => Number.isInteger(v) && (v as number) >= 1;
  const flag = (key: string, dflt: boolean): boolean => {
    const v = j[key];
    if (v === undefined || v === null) return dflt;
    if (typeof v !== 'boolean') fail(key, `must be true or false but got ${show(v)}`);
    return v as boolean;
  };

  if (!flag('do_resize', true)) {
    fail(
      'do_resize',
      'is false: preprocessing without a resize is not supported (images of different sizes cannot be batched)',
    );
  }

  const typeName = [j['image_processor_type'], j['feature_extractor_type']].find(
    (v) => typeof v === 'string',
  ) as string | undefined;
  const sizeChoices = 'a positive int, {"shortest_edge": int} or {"height": int, "width": int}';
  // processors whose int size is known: a square (ViT and alike) or ConvNeXt's crop side
  const family =
    typeName === undefined
      ? 'clip'
      : /^(vit|deit|beit)/i.test(typeName)
        ? 'square'
        : /^convnext/i.test(typeName)
          ? 'convnext'
          : 'other';
  let resize: number | [number, number] = family === 'convnext' ? 384 : 224;
  const size = j['size'];
  if (size !== undefined && size !== null) {
    if (posInt(size)) {
      if (family === 'square') resize = [size, size];
      else if (family === 'convnext') resize = size;
      else if (typeName !== undefined && !/clip/i.test(typeName)) {
        fail(
          'size',
          `is the int ${size}, which means the shorter side for CLIPImageProcessor but a ${size}x${size} square for '${typeName}'; write {"shortest_edge": ${size}} or {"height": ${size}, "width": ${size}}`,
        );
      } else resize = size;
    } else if (typeof size === 'object' && !Array.isArray(size)) {
      const s = size as Record<string, unknown>;
      const keys = Object.keys(s).sort().join(',');
      if (keys === 'shortest_edge' && posInt(s['shortest_edge'])) resize = s['shortest_edge'];
      else if (keys === 'height,width' && posInt(s['height']) && posInt(s['width']))
        resize = [s['height'], s['width']];
      else fail('size', `must be ${sizeChoices} but got ${show(size)}`);
    } else fail('size', `must be ${sizeChoices} but got ${show(size)}`);
  }

  // Without crop_size: CLIPImageProcessor's default 224, or the resize size itself when that is fixed
  // (processors without a center crop, e.g. SigLIP's, resize to {height, width} directly).
  let crop: number | [number, number] = Array.isArray(resize) ? resize : 224;
  const cropSize = j['crop_size'];
  if (cropSize !== undefined && cropSize !== null) {
    if (posInt(cropSize)) crop = cropSize;
    else if (typeof cropSize === 'object' && !Array.isArray(cropSize)) {
      const c = cropSize as Record<string, unknown>;
      if (Object.keys(c).sort().join(',') === 'height,width' && posInt(c['height']) && posInt(c['width'])) {
        crop = [c['height'], c['width']];
      } else
        fail(
          'crop_size',
          `must be a positive int or {"height": int, "width": int} but got ${show(cropSize)}`,
        );
    } else
      fail('crop_size', `must be a positive int or {"height": int, "width": int} but got ${show(cropSize)}`);
  }
  if (Array.isArray(crop) && crop[0] === crop[1]) crop = crop[0];
  if (!flag('do_center_crop', true)) {
    // Without a center crop the output has the resize size: fine when that is fixed, not otherwise.
    if (!Array.isArray(resize)) {
      fail(
        'do_center_crop',
        'is false with a shortest-edge resize: not supported (the images would keep their aspect ratios and could not be batched)',
      );
    }
    const [rh, rw] = resize as [number, number];
    crop = rh === rw ? rh : [rh, rw];
  }

  if (family === 'convnext') {
    // ConvNextImageProcessor.resize: size is the crop's side; crop_size and do_center_crop play no part
    if (Array.isArray(resize))
      fail('size', `must be an int or {"shortest_edge": int} for '${typeName}' but got ${show(size)}`);
    const side = resize as number;
    const pct = j['crop_pct'] ?? 224 / 256;
    if (typeof pct !== 'number' || !(pct > 0 && pct <= 1))
      fail('crop_pct', `must be a number in (0, 1] but got ${show(j['crop_pct'])}`);
    if (side < 384) resize = Math.floor(side / (pct as number));
    else resize = [side, side];
    crop = side;
  }

  let interpolation: ResampleFilter = family === 'clip' || family === 'other' ? 'bicubic' : 'bilinear';
  const resample = j['resample'];
  if (resample !== undefined && resample !== null) {
    const f = typeof resample === 'number' ? HF_RESAMPLE[resample] : undefined;
    if (f === undefined) {
      const name = typeof resample === 'number' ? HF_RESAMPLE_NAMES[resample] : undefined;
      fail(
        'resample',
        `must be a PIL resampling code 0 (nearest), 2 (bilinear) or 3 (bicubic) but got ${show(resample)}${
          name ? ` (${name}, not supported)` : ''
        }`,
      );
    }
    interpolation = f as ResampleFilter;
  }

  const triple = (key: string, dflt: [number, number, number]): [number, number, number] => {
    const v = j[key];
    if (v === undefined || v === null) return dflt;
    if (typeof v === 'number' && Number.isFinite(v)) return [v, v, v];
    if (Array.isArray(v) && v.length === 3 && v.every((x) => typeof x === 'number' && Number.isFinite(x))) {
      return [v[0], v[1], v[2]];
    }
    return fail(key, `must be a number or 3 numbers (R, G, B) but got ${show(v)}`);
  };
  const [meanDefault, stdDefault]: [number, number, number][] =
    family === 'square'
      ? [
          [0.5, 0.5, 0.5],
          [0.5, 0.5, 0.5],
        ]
      : family === 'convnext'
        ? [[...IMAGENET_PREPROCESS.mean], [...IMAGENET_PREPROCESS.std]]
        : [[...CLIP_PREPROCESS.mean], [...CLIP_PREPROCESS.std]];
  let mean = triple('image_mean', meanDefault);
  let std = triple('image_std', stdDefault);
  if (std.some((x) => x === 0)) fail('image_std', `must not contain 0 but got ${show(std)}`);
  if (!flag('do_normalize', true)) {
    mean = [0, 0, 0];
    std = [1, 1, 1];
  }

  let rescale = 1 / 255; // Hugging Face multiplies by rescale_factor (default 1/255)
  const rf = j['rescale_factor'];
  if (rf !== undefined && rf !== null) {
    if (typeof rf !== 'number' || !Number.isFinite(rf) || rf <= 0) {
      fail('rescale_factor', `must be a positive number but got ${show(rf)}`);
    }
    rescale = rf as number;
  }
  if (!flag('do_rescale', true)) rescale = 1;

  return { resize, crop, interpolation, mean, std, rescale, cropRounding };
}
