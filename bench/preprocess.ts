/**
 * Micro-benchmark of image preprocessing (not a test; CI does not time anything).
 *
 *   npx tsc -p tsconfig.json && node dist/bench/preprocess.js [--iters 200]
 *
 * A synthetic 500x375 photo-like JPEG (quality 90, 4:2:0; the size of a typical ImageNet / Broden image) is
 * decoded (decodeImageRGB: sharp + the PIL-compatible conversion), resized (Pillow-exact resampler, to
 * 298x224 bicubic for CLIP, 341x256 bilinear for ImageNet), center-cropped to 224 and normalised to CHW
 * float32. Printed: images/s of the whole pipeline for both presets, and the time of each stage alone.
 * Single-threaded: one image at a time on the main thread.
 */
import { parseArgs } from 'node:util';
import sharp from 'sharp';
import { decodeImageRGB, type RGBImage } from '../src/data/decode.js';
import {
  CLIP_PREPROCESS,
  IMAGENET_PREPROCESS,
  type PreprocessConfig,
  preprocessImage,
  resizedSize,
} from '../src/data/preprocess.js';
import { resizeRGB } from '../src/data/resize.js';
import { mulberry32 } from '../src/numeric/random.js';

const W = 500;
const H = 375;

/** A smooth random colour field plus pixel noise, encoded as JPEG: compresses like a photo. */
async function syntheticJpeg(): Promise<Uint8Array> {
  const rand = mulberry32(42);
  const small = new Uint8Array(32 * 24 * 3);
  for (let i = 0; i < small.length; i++) small[i] = Math.floor(rand() * 256);
  const smooth = await sharp(small, { raw: { width: 32, height: 24, channels: 3 } })
    .resize(W, H, { kernel: 'cubic' })
    .raw()
    .toBuffer();
  for (let i = 0; i < smooth.length; i++) {
    smooth[i] = Math.max(0, Math.min(255, smooth[i] + Math.round((rand() - 0.5) * 24)));
  }
  const jpeg = await sharp(smooth, { raw: { width: W, height: H, channels: 3 } })
    .jpeg({ quality: 90, chromaSubsampling: '4:2:0' })
    .toBuffer();
  return new Uint8Array(jpeg);
}

const ROUNDS = 5;

/**
 * Runs decode -> resize -> crop/normalise `iters` times in ROUNDS rounds, timing each stage; returns the
 * per-image milliseconds of each stage in the round with the median total (the machine may be shared).
 */
async function timePipeline(
  jpeg: Uint8Array,
  cfg: PreprocessConfig,
  iters: number,
): Promise<{ decode: number; resize: number; crop: number; total: number }> {
  const perRound = Math.max(1, Math.round(iters / ROUNDS));
  const rounds: { decode: number; resize: number; crop: number; total: number }[] = [];
  for (let r = -1; r < ROUNDS; r++) {
    let decode = 0n;
    let resize = 0n;
    let crop = 0n;
    for (let i = 0; i < perRound; i++) {
      const t0 = process.hrtime.bigint();
      const img = await decodeImageRGB(jpeg);
      const t1 = process.hrtime.bigint();
      const [rw, rh] = resizedSize(img.width, img.height, cfg.resize);
      const resized = resizeRGB(img, rw, rh, cfg.interpolation);
      const t2 = process.hrtime.bigint();
      preprocessImage(resized, { ...cfg, resize: [rh, rw] });
      const t3 = process.hrtime.bigint();
      decode += t1 - t0;
      resize += t2 - t1;
      crop += t3 - t2;
    }
    if (r < 0) continue; // warm-up round
    const ms = (ns: bigint) => Number(ns) / 1e6 / perRound;
    rounds.push({
      decode: ms(decode),
      resize: ms(resize),
      crop: ms(crop),
      total: ms(decode + resize + crop),
    });
  }
  rounds.sort((a, b) => a.total - b.total);
  return rounds[Math.floor(rounds.length / 2)];
}

async function main(): Promise<void> {
  const { values } = parseArgs({ options: { iters: { type: 'string', default: '200' } } });
  const iters = Number(values.iters);
  const jpeg = await syntheticJpeg();
  const decoded: RGBImage = await decodeImageRGB(jpeg);
  console.log(
    `input: ${decoded.width}x${decoded.height} JPEG q90 4:2:0, ${jpeg.length} bytes; ${iters} images per preset ` +
      `(${ROUNDS} rounds, median round shown)`,
  );
  const presets: [string, PreprocessConfig][] = [
    ['CLIP_PREPROCESS     (Resize 224 bicubic, CenterCrop 224)', CLIP_PREPROCESS],
    ['IMAGENET_PREPROCESS (Resize 256 bilinear, CenterCrop 224)', IMAGENET_PREPROCESS],
  ];
  for (const [name, cfg] of presets) {
    const [rw, rh] = resizedSize(W, H, cfg.resize);
    const t = await timePipeline(jpeg, cfg, iters);
    const pct = (x: number) => `${((100 * x) / t.total).toFixed(0)}%`;
    console.log(`${name}: ${(1000 / t.total).toFixed(1)} images/s (${t.total.toFixed(2)} ms/image)`);
    console.log(`  decode (sharp + RGB conversion)  ${t.decode.toFixed(2)} ms  ${pct(t.decode)}`);
    console.log(`  resize ${W}x${H} -> ${rw}x${rh}        ${t.resize.toFixed(2)} ms  ${pct(t.resize)}`);
    console.log(`  crop + ToTensor + Normalize      ${t.crop.toFixed(2)} ms  ${pct(t.crop)}`);
  }
}

await main();
