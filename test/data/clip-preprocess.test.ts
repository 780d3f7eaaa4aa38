/**
 * CLIP's input tensors against OpenAI's `clip.load` transform (torchvision) and transformers' PIL image
 * processor, on images whose resized overhang is odd, in both orientations, and on grayscale, palette, RGBA and
 * 16-bit PNGs, read in the official order: decoded as `Image.open(p).convert('RGB')` (torchvision's ImageFolder
 * loader), then CLIP's transforms. Golden values from scripts/make_clip_preprocess_golden.py
 * (test/fixtures/clip-preprocess/).
 */
import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { describe, it } from 'node:test';
import { fileURLToPath } from 'node:url';
import { inflateSync } from 'node:zlib';
import { decodeImageRGB } from '../../src/data/decode.js';
import {
  type PreprocessConfig,
  preprocessImage,
  preprocessorConfigFromHF,
  resizedSize,
} from '../../src/data/preprocess.js';
import { CLIP_PREPROCESS_CHOICES, clipCropRounding } from '../../src/models/onnx-clip-encoder.js';
import { ArgumentError } from '../../src/numeric/errors.js';
import { loadPreprocessConfig } from '../../src/pipeline/preprocess-config.js';
import { maxAbsDiff } from '../helpers/data.js';

const DIR = fileURLToPath(new URL('../../../test/fixtures/clip-preprocess/', import.meta.url));
const CLIP_JSON = fileURLToPath(
  new URL('../../../test/fixtures/clip/model/preprocessor_config.json', import.meta.url),
);

interface Golden {
  shape: number[];
  sha256: string;
  sum: number;
  samples: [number, number][];
  rows?: string;
  cols?: string;
}
interface Case {
  image: string;
  mode: string;
  size: [number, number];
  resized: [number, number];
  offset: { openai: [number, number]; hf: [number, number] };
  openai: Golden;
  hf: Golden;
}
const EXPECTED: { images: Case[] } = JSON.parse(readFileSync(`${DIR}expected.json`, 'utf8'));
const N = 224;

function sha256(a: Float32Array): string {
  return createHash('sha256')
    .update(new Uint8Array(a.buffer, a.byteOffset, a.byteLength))
    .digest('hex');
}

function f32(b64: string): Float32Array {
  const bytes = inflateSync(Buffer.from(b64, 'base64'));
  return new Float32Array(bytes.buffer.slice(bytes.byteOffset, bytes.byteOffset + bytes.byteLength));
}

/** Rows 0, 1, 222, 223 and columns 0, 1, 222, 223 of each channel, in the golden file's layout. */
function border(t: Float32Array): { rows: Float32Array; cols: Float32Array } {
  const lines = [0, 1, N - 2, N - 1];
  const rows = new Float32Array(3 * 4 * N);
  const cols = new Float32Array(3 * 4 * N);
  for (let c = 0; c < 3; c++)
    for (let l = 0; l < 4; l++)
      for (let i = 0; i < N; i++) {
        rows[(c * 4 + l) * N + i] = t[c * N * N + lines[l] * N + i];
        cols[(c * 4 + l) * N + i] = t[c * N * N + i * N + lines[l]];
      }
  return { rows, cols };
}

/** Equal to the golden tensor bit for bit; on a mismatch, says where (border and samples). */
function assertGolden(got: Float32Array, want: Golden, what: string): void {
  assert.deepEqual([3, N, N], want.shape);
  assert.equal(got.length, 3 * N * N);
  if (want.rows !== undefined && want.cols !== undefined) {
    const b = border(got);
    assert.equal(maxAbsDiff(b.rows, f32(want.rows)), 0, `${what}: rows 0, 1, 222, 223 differ`);
    assert.equal(maxAbsDiff(b.cols, f32(want.cols)), 0, `${what}: columns 0, 1, 222, 223 differ`);
  }
  for (const [i, v] of want.samples) assert.equal(got[i], Math.fround(v), `${what}: [${i}]`);
  let sum = 0;
  for (const v of got) sum += v;
  assert.ok(Math.abs(sum - want.sum) <= 1e-6 * 3 * N * N, `${what}: sum ${sum} vs ${want.sum}`);
  assert.equal(sha256(got), want.sha256, `${what}: sha256 of the float32 tensor`);
}

describe("CLIP preprocessing equals clip.load's (torchvision) and transformers' PIL processor", () => {
  const json = JSON.parse(readFileSync(CLIP_JSON, 'utf8'));
  const openai: PreprocessConfig = preprocessorConfigFromHF(json, CLIP_JSON, clipCropRounding('openai'));
  const hf: PreprocessConfig = preprocessorConfigFromHF(json, CLIP_JSON, clipCropRounding('hf'));

  it('covers odd overhangs in both orientations, control cases and every PNG mode', () => {
    const differ = EXPECTED.images.filter((c) => c.offset.openai.join() !== c.offset.hf.join());
    assert.ok(differ.length >= 8, `${differ.length} images where the roundings differ`);
    assert.ok(differ.some((c) => c.offset.openai[0] !== c.offset.hf[0]));
    assert.ok(differ.some((c) => c.offset.openai[1] !== c.offset.hf[1]));
    assert.ok(EXPECTED.images.some((c) => c.offset.openai.join() === c.offset.hf.join()));
    assert.deepEqual(
      ['L', 'P', 'RGBA', 'I;16'].filter((m) => !EXPECTED.images.some((c) => c.mode === m)),
      [],
    );
    const c741 = EXPECTED.images.find((c) => c.image === 'rgb_741x500.jpg') as Case;
    assert.deepEqual(c741.resized, [331, 224]);
    assert.deepEqual(
      [c741.offset.openai, c741.offset.hf],
      [
        [54, 0],
        [53, 0],
      ],
    );
  });

  for (const c of EXPECTED.images) {
    it(`${c.image} (${c.mode} ${c.size.join('x')} -> ${c.resized.join('x')}, crop at ${c.offset.openai} / hf ${c.offset.hf})`, async () => {
      const img = await decodeImageRGB(`${DIR}${c.image}`);
      assert.deepEqual([img.width, img.height], c.size);
      assert.deepEqual(resizedSize(img.width, img.height, openai.resize), c.resized);
      assertGolden(preprocessImage(img, openai), c.openai, `${c.image} openai`);
      assertGolden(preprocessImage(img, hf), c.hf, `${c.image} hf`);
    });
  }

  it("a Hugging Face preprocessor_config given as the target's preprocessing crops as torchvision", async () => {
    // the official code preprocesses targets with torchvision transforms too (README: where clip-dissect decides)
    const target = await loadPreprocessConfig(CLIP_JSON);
    assert.equal(target.cropRounding, 'round');
    for (const c of EXPECTED.images
      .filter((e) => e.offset.openai.join() !== e.offset.hf.join())
      .slice(0, 2)) {
      const img = await decodeImageRGB(`${DIR}${c.image}`);
      assertGolden(preprocessImage(img, target), c.openai, `${c.image} as a target`);
    }
  });

  it("the default reading of a preprocessor_config.json is clip.load's crop; choices are checked", () => {
    assert.equal(preprocessorConfigFromHF(json).cropRounding, 'round');
    assert.deepEqual(CLIP_PREPROCESS_CHOICES, ['openai', 'hf']);
    assert.equal(clipCropRounding(), 'round');
    assert.throws(
      () => clipCropRounding('torch' as never),
      (e: unknown) =>
        e instanceof ArgumentError &&
        /'clipPreprocess' must be 'openai' or 'hf' but got "torch"/.test(e.message),
    );
    assert.throws(
      () => preprocessorConfigFromHF(json, CLIP_JSON, 'ceil' as never),
      (e: unknown) =>
        e instanceof ArgumentError && /'cropRounding' must be 'round' or 'floor'/.test(e.message),
    );
  });
});
