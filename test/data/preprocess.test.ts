/**
 * preprocessImage against torchvision's Resize / CenterCrop / ToTensor / Normalize on PIL images, using the
 * fixtures written by scripts/make_image_fixtures.py (test/fixtures/images/).
 */
import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { describe, it } from 'node:test';
import { fileURLToPath } from 'node:url';
import { inflateSync } from 'node:zlib';
import { decodeImageRGB } from '../../src/data/decode.js';
import {
  CLIP_PREPROCESS,
  IMAGENET_PREPROCESS,
  type PreprocessConfig,
  preprocessImage,
  preprocessorConfigFromHF,
  preprocessShape,
  resizedSize,
} from '../../src/data/preprocess.js';
import type { ResampleFilter, RGBImage } from '../../src/data/resize.js';
import { readNpy } from '../../src/io/npy.js';
import { ClipDissectError } from '../../src/numeric/errors.js';

const DIR = fileURLToPath(new URL('../../../test/fixtures/images/', import.meta.url));

interface PreprocessCase {
  image: string;
  variant: string;
  file: string;
  resize: number;
  crop: number | [number, number];
  interpolation: ResampleFilter;
  mean: [number, number, number];
  std: [number, number, number];
  shape: number[];
}
interface Preprocess224Case {
  image: string;
  config: 'imagenet' | 'clip';
  shape: number[];
  sha256: string;
  sum: number;
  samples: [number, number][];
}
const EXPECTED: {
  images: Record<string, { width: number; height: number; rgb: string }>;
  preprocess: PreprocessCase[];
  preprocess224: Preprocess224Case[];
} = JSON.parse(readFileSync(`${DIR}expected.json`, 'utf8'));

function pilImage(name: string): RGBImage {
  const e = EXPECTED.images[name];
  return {
    width: e.width,
    height: e.height,
    data: new Uint8Array(inflateSync(Buffer.from(e.rgb, 'base64'))),
  };
}

function maxAbsDiff(a: Float32Array, b: Float32Array): { max: number; differ: number } {
  assert.equal(a.length, b.length);
  let max = 0;
  let differ = 0;
  for (let i = 0; i < a.length; i++) {
    const d = Math.abs(a[i] - b[i]);
    if (d !== 0) differ++;
    if (d > max) max = d;
  }
  return { max, differ };
}

function sha256(a: Float32Array): string {
  return createHash('sha256')
    .update(new Uint8Array(a.buffer, a.byteOffset, a.byteLength))
    .digest('hex');
}

function throwsCode(fn: () => unknown, code: string, parts: string[]): void {
  assert.throws(fn, (err: unknown) => {
    assert.ok(err instanceof ClipDissectError, String(err));
    assert.equal(err.code, code, err.message);
    for (const p of parts) assert.ok(err.message.includes(p), `'${p}' not in: ${err.message}`);
    return true;
  });
}

const caseConfig = (c: PreprocessCase): PreprocessConfig => ({
  resize: c.resize,
  crop: c.crop,
  interpolation: c.interpolation,
  mean: c.mean,
  std: c.std,
});

describe('preprocessImage equals torchvision (float32, bit for bit)', () => {
  for (const c of EXPECTED.preprocess) {
    it(`${c.image} ${c.variant}`, async () => {
      const want = (await readNpy(`${DIR}${c.file}`)).data as Float32Array;
      const cfg = caseConfig(c);
      assert.deepEqual(preprocessShape(cfg), c.shape);
      const got = preprocessImage(pilImage(c.image), cfg);
      const d = maxAbsDiff(got, want);
      assert.ok(d.max <= 1e-6, `max |diff| ${d.max}`);
      assert.equal(d.differ, 0, `${d.differ} values differ (max ${d.max})`);
    });
  }

  for (const c of EXPECTED.preprocess224) {
    it(`${c.image} ${c.config} at 224 (sha256 of the float32 tensor)`, () => {
      const cfg = c.config === 'imagenet' ? IMAGENET_PREPROCESS : CLIP_PREPROCESS;
      const got = preprocessImage(pilImage(c.image), cfg);
      assert.equal(got.length, 3 * 224 * 224);
      for (const [i, v] of c.samples) assert.ok(Math.abs(got[i] - v) <= 1e-6, `[${i}] ${got[i]} vs ${v}`);
      let sum = 0;
      for (let i = 0; i < got.length; i++) sum += got[i];
      assert.ok(Math.abs(sum - c.sum) <= 1e-6 * got.length, `sum ${sum} vs ${c.sum}`);
      assert.equal(sha256(got), c.sha256);
    });
  }

  it('end to end from PNG files: decodeImageRGB + preprocessImage', async () => {
    const pngCases = EXPECTED.preprocess.filter((c) => c.image.endsWith('.png'));
    assert.ok(pngCases.length >= 10);
    for (const c of pngCases) {
      const want = (await readNpy(`${DIR}${c.file}`)).data as Float32Array;
      const got = preprocessImage(await decodeImageRGB(`${DIR}${c.image}`), caseConfig(c));
      assert.equal(maxAbsDiff(got, want).differ, 0, `${c.image} ${c.variant}`);
    }
  });
});

describe('preprocessImage details', () => {
  it('resizedSize truncates the long side like torchvision', () => {
    assert.deepEqual(resizedSize(64, 48, 40), [53, 40]); // 40 * 64 / 48 = 53.33
    assert.deepEqual(resizedSize(500, 375, 224), [298, 224]); // 298.67
    assert.deepEqual(resizedSize(375, 500, 256), [256, 341]); // 341.33
    assert.deepEqual(resizedSize(300, 20, 40), [600, 40]);
    assert.deepEqual(resizedSize(1, 1, 40), [40, 40]);
    assert.deepEqual(resizedSize(10, 1100, 17), [17, 1870]);
    assert.deepEqual(resizedSize(64, 48, [30, 20]), [20, 30]);
  });

  it('crop offsets: torchvision rounds half to even, floor mode rounds down', () => {
    // 67x32 image, resize 32 keeps it, crop 32: offset (67 - 32) / 2 = 17.5 -> 18 (round) or 17 (floor).
    const img: RGBImage = { width: 67, height: 32, data: new Uint8Array(67 * 32 * 3) };
    for (let y = 0; y < 32; y++) for (let x = 0; x < 67; x++) img.data[(y * 67 + x) * 3] = x;
    const cfg: PreprocessConfig = {
      resize: 32,
      crop: 32,
      interpolation: 'bilinear',
      mean: [0, 0, 0],
      std: [1, 1, 1],
    };
    const round = preprocessImage(img, cfg);
    const floor = preprocessImage(img, { ...cfg, cropRounding: 'floor' });
    assert.equal(Math.round(round[0] * 255), 18);
    assert.equal(Math.round(floor[0] * 255), 17);
    // 65 wide: 16.5 -> 16 (half to even).
    const img65: RGBImage = { width: 65, height: 32, data: img.data.slice(0, 65 * 32 * 3) };
    for (let y = 0; y < 32; y++) for (let x = 0; x < 65; x++) img65.data[(y * 65 + x) * 3] = x;
    assert.equal(Math.round(preprocessImage(img65, cfg)[0] * 255), 16);
  });

  it('pads with zeros (normalised) when the crop is larger than the image', () => {
    const img: RGBImage = { width: 2, height: 1, data: new Uint8Array([255, 255, 255, 255, 255, 255]) };
    const cfg: PreprocessConfig = {
      resize: [1, 2],
      crop: [3, 5],
      interpolation: 'nearest',
      mean: [0.5, 0.5, 0.5],
      std: [0.5, 0.5, 0.5],
    };
    const out = preprocessImage(img, cfg);
    // Padding: left (5-2)//2 = 1, right 2; top (3-1)//2 = 1, bottom 1. Pixel value 255 -> 1, padding -> -1.
    const r = Array.from(out.subarray(0, 15));
    assert.deepEqual(r, [-1, -1, -1, -1, -1, -1, 1, 1, -1, -1, -1, -1, -1, -1, -1]);
  });

  it('writes into a caller buffer and leaves the input alone', () => {
    const img = pilImage('rgb_odd.png');
    const before = img.data.slice();
    const out = new Float32Array(3 * 32 * 32);
    const cfg: PreprocessConfig = { ...CLIP_PREPROCESS, resize: 40, crop: 32 };
    assert.equal(preprocessImage(img, cfg, out), out);
    assert.deepEqual(out, preprocessImage(img, cfg));
    assert.deepEqual(img.data, before);
    throwsCode(() => preprocessImage(img, cfg, new Float32Array(5)), 'ERR_SHAPE', [
      '3*32*32 = 3072',
      'length 5',
    ]);
  });

  it('presets', () => {
    assert.deepEqual(
      { ...IMAGENET_PREPROCESS },
      {
        resize: 256,
        crop: 224,
        interpolation: 'bilinear',
        mean: [0.485, 0.456, 0.406],
        std: [0.229, 0.224, 0.225],
      },
    );
    assert.deepEqual(
      { ...CLIP_PREPROCESS },
      {
        resize: 224,
        crop: 224,
        interpolation: 'bicubic',
        mean: [0.48145466, 0.4578275, 0.40821073],
        std: [0.26862954, 0.26130258, 0.27577711],
      },
    );
    assert.ok(Object.isFrozen(CLIP_PREPROCESS));
  });

  it('rejects bad configs, naming the field and the value', () => {
    const img = pilImage('tiny1x1.png');
    const ok: PreprocessConfig = { ...IMAGENET_PREPROCESS };
    throwsCode(() => preprocessImage(img, { ...ok, resize: 0 }), 'ERR_ARGUMENT', ['cfg.resize', '0']);
    throwsCode(() => preprocessImage(img, { ...ok, crop: [3] as unknown as number }), 'ERR_ARGUMENT', [
      'cfg.crop',
      '[3]',
    ]);
    throwsCode(
      () => preprocessImage(img, { ...ok, interpolation: 'area' as ResampleFilter }),
      'ERR_ARGUMENT',
      ['cfg.interpolation', "'bilinear', 'bicubic' or 'nearest'", '"area"'],
    );
    throwsCode(
      () => preprocessImage(img, { ...ok, mean: [1, 2] as unknown as [number, number, number] }),
      'ERR_ARGUMENT',
      ['cfg.mean', '3 finite numbers'],
    );
    throwsCode(() => preprocessImage(img, { ...ok, std: [1, 0, 1] }), 'ERR_ARGUMENT', [
      'cfg.std',
      'must not contain 0',
    ]);
  });
});

describe('preprocessorConfigFromHF', () => {
  const CLIP_MEAN = [0.48145466, 0.4578275, 0.40821073];
  const CLIP_STD = [0.26862954, 0.26130258, 0.27577711];

  it('reads an old-style CLIPFeatureExtractor config (ints)', () => {
    const cfg = preprocessorConfigFromHF({
      crop_size: 224,
      do_center_crop: true,
      do_normalize: true,
      do_resize: true,
      feature_extractor_type: 'CLIPFeatureExtractor',
      image_mean: CLIP_MEAN,
      image_std: CLIP_STD,
      resample: 3,
      size: 224,
    });
    assert.deepEqual(cfg, { ...CLIP_PREPROCESS, rescale: 1 / 255, cropRounding: 'round' });
  });

  it('reads a CLIPImageProcessor config (dicts, rescale)', () => {
    const cfg = preprocessorConfigFromHF({
      crop_size: { height: 336, width: 336 },
      do_center_crop: true,
      do_convert_rgb: true,
      do_normalize: true,
      do_rescale: true,
      do_resize: true,
      image_mean: CLIP_MEAN,
      image_processor_type: 'CLIPImageProcessor',
      image_std: CLIP_STD,
      resample: 3,
      rescale_factor: 0.00392156862745098,
      size: { shortest_edge: 336 },
    });
    assert.deepEqual(cfg, {
      resize: 336,
      crop: 336,
      interpolation: 'bicubic',
      mean: CLIP_MEAN,
      std: CLIP_STD,
      rescale: 0.00392156862745098,
      cropRounding: 'round',
    });
  });

  it('reads a SigLIP-style config (fixed size, no crop)', () => {
    const cfg = preprocessorConfigFromHF({
      do_normalize: true,
      do_rescale: true,
      do_resize: true,
      image_mean: [0.5, 0.5, 0.5],
      image_processor_type: 'SiglipImageProcessor',
      image_std: [0.5, 0.5, 0.5],
      resample: 2,
      rescale_factor: 0.00392156862745098,
      size: { height: 384, width: 384 },
    });
    assert.deepEqual([cfg.resize, cfg.crop, cfg.interpolation], [[384, 384], 384, 'bilinear']);
  });

  it("reads ViT's int size as a square and ConvNeXt's (the Hugging Face ResNets') with crop_pct", () => {
    // Xenova/vit-base-patch16-224
    const vit = preprocessorConfigFromHF({
      feature_extractor_type: 'ViTFeatureExtractor',
      image_mean: [0.5, 0.5, 0.5],
      image_std: [0.5, 0.5, 0.5],
      resample: 2,
      size: 224,
    });
    assert.deepEqual([vit.resize, vit.crop, vit.interpolation], [[224, 224], 224, 'bilinear']);
    // Xenova/resnet-50: shorter side to int(224 / 0.875) = 256, centre 224×224 (torchvision's ImageNet
    // transform, bicubic)
    const resnet = preprocessorConfigFromHF({
      crop_pct: 0.875,
      feature_extractor_type: 'ConvNextFeatureExtractor',
      image_mean: [0.485, 0.456, 0.406],
      image_std: [0.229, 0.224, 0.225],
      resample: 3,
      size: 224,
    });
    assert.deepEqual([resnet.resize, resnet.crop, resnet.interpolation], [256, 224, 'bicubic']);
    // defaults: crop_pct 224/256, bilinear, ImageNet mean / std; 384 and up: a square resize, no crop
    const d = preprocessorConfigFromHF({
      image_processor_type: 'ConvNextImageProcessor',
      size: { shortest_edge: 32 },
    });
    assert.deepEqual(
      [d.resize, d.crop, d.interpolation, d.mean],
      [36, 32, 'bilinear', [0.485, 0.456, 0.406]],
    );
    const big = preprocessorConfigFromHF({ image_processor_type: 'ConvNextImageProcessor' });
    assert.deepEqual([big.resize, big.crop], [[384, 384], 384]);
  });

  it('defaults to CLIPImageProcessor values; do_normalize / do_rescale false', () => {
    assert.deepEqual(preprocessorConfigFromHF({}), {
      ...CLIP_PREPROCESS,
      rescale: 1 / 255,
      cropRounding: 'round',
    });
    const raw = preprocessorConfigFromHF({ do_normalize: false, do_rescale: false });
    assert.deepEqual([raw.mean, raw.std, raw.rescale], [[0, 0, 0], [1, 1, 1], 1]);
  });

  it('Hugging Face numerics (x * (1/255)) equal torchvision (x / 255) bit for bit', async () => {
    // palette.png and tiny1x1.png: floor and round-half-even give the same crop offsets here.
    for (const image of ['palette.png', 'tiny1x1.png']) {
      const c = EXPECTED.preprocess.find((p) => p.image === image && p.variant === 'r40c32_bicubic');
      assert.ok(c);
      const want = (await readNpy(`${DIR}${c.file}`)).data as Float32Array;
      const hf = preprocessorConfigFromHF({ size: { shortest_edge: 40 }, crop_size: 32, resample: 3 });
      const d = maxAbsDiff(preprocessImage(pilImage(image), hf), want);
      assert.equal(d.differ, 0, `${image}: max |diff| ${d.max}`);
    }
  });

  it('errors name the file and the field', () => {
    const src = 'models/x/preprocessor_config.json';
    throwsCode(
      () => preprocessorConfigFromHF({ size: { longest_edge: 224 } }, src),
      'ERR_PREPROCESSOR_CONFIG',
      [src, "'size'", '{"shortest_edge": int}', 'longest_edge'],
    );
    throwsCode(() => preprocessorConfigFromHF({ crop_size: 'big' }, src), 'ERR_PREPROCESSOR_CONFIG', [
      "'crop_size'",
      '"big"',
    ]);
    throwsCode(() => preprocessorConfigFromHF({ resample: 1 }, src), 'ERR_PREPROCESSOR_CONFIG', [
      "'resample'",
      '0 (nearest), 2 (bilinear) or 3 (bicubic)',
      'LANCZOS',
    ]);
    throwsCode(() => preprocessorConfigFromHF({ image_mean: [0.5, 0.5] }, src), 'ERR_PREPROCESSOR_CONFIG', [
      "'image_mean'",
      '[0.5,0.5]',
    ]);
    throwsCode(() => preprocessorConfigFromHF({ do_center_crop: false }, src), 'ERR_PREPROCESSOR_CONFIG', [
      "'do_center_crop'",
      'shortest-edge',
    ]);
    const fixed = preprocessorConfigFromHF({
      do_center_crop: false,
      size: { height: 32, width: 48 },
      crop_size: 8,
    });
    assert.deepEqual(
      [fixed.resize, fixed.crop],
      [
        [32, 48],
        [32, 48],
      ],
    );
    throwsCode(() => preprocessorConfigFromHF({ do_resize: 'yes' }, src), 'ERR_PREPROCESSOR_CONFIG', [
      "'do_resize'",
      'true or false',
    ]);
    throwsCode(
      () => preprocessorConfigFromHF({ image_processor_type: 'SiglipImageProcessor', size: 224 }, src),
      'ERR_PREPROCESSOR_CONFIG',
      ["'size'", 'SiglipImageProcessor', '{"shortest_edge": 224}'],
    );
    throwsCode(
      () =>
        preprocessorConfigFromHF({ feature_extractor_type: 'ConvNextFeatureExtractor', crop_pct: 1.5 }, src),
      'ERR_PREPROCESSOR_CONFIG',
      ["'crop_pct'", '(0, 1]'],
    );
    throwsCode(() => preprocessorConfigFromHF([1, 2], src), 'ERR_PREPROCESSOR_CONFIG', [src, 'an array']);
  });
});
