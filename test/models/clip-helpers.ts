/**
 * Fixtures of the CLIP encoder tests: test/fixtures/clip (written by scripts/export_tiny_clip.py) and the real
 * OpenAI CLIP tokenizer in ../shared/fixtures/clip-tokenizer (not committed here: tests that need it skip).
 */
import assert from 'node:assert/strict';
import { existsSync, readFileSync } from 'node:fs';
import { copyFile, mkdir, mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before } from 'node:test';
import { fileURLToPath } from 'node:url';
import { npyToMatrix, readNpy } from '../../src/io/npy.js';
import type { Matrix } from '../../src/numeric/matrix.js';

export const CLIP_FIXTURES = fileURLToPath(new URL('../../../test/fixtures/clip/', import.meta.url));
export const TOKENIZER_DIR = fileURLToPath(
  new URL('../../../../shared/fixtures/clip-tokenizer/', import.meta.url),
);
export const HAVE_TOKENIZER = existsSync(join(TOKENIZER_DIR, 'tokenizer.json'));
/** `skip` option of tests that need ../shared. */
export const NEEDS_SHARED: string | false = !HAVE_TOKENIZER && 'needs ../shared/fixtures/clip-tokenizer';

/** Files of the model folder, relative to it. */
export const MODEL_FILES = [
  'config.json',
  'preprocessor_config.json',
  'onnx/text_model.onnx',
  'onnx/vision_model.onnx',
] as const;
export const TOKENIZER_FILES = [
  'tokenizer.json',
  'tokenizer_config.json',
  'special_tokens_map.json',
] as const;

export const GOLDEN = JSON.parse(readFileSync(join(CLIP_FIXTURES, 'concepts.json'), 'utf8')) as {
  concepts: string[];
  ids: number[][];
};

/**
 * A complete model folder in a new temp directory (the fixture's model files and the tokenizer files from
 * ../shared), as `<tmp>/<sub>`; `extra` renames files (e.g. the fp32 text model under its fp16 name).
 * Returns the folder and a cleanup function.
 */
export async function assembleModelDir(
  sub = 'tiny-clip',
  rename: Record<string, string> = {},
): Promise<{ root: string; dir: string; cleanup: () => Promise<void> }> {
  const root = await mkdtemp(join(tmpdir(), 'clip-dissect-clip-'));
  const dir = join(root, sub);
  await mkdir(join(dir, 'onnx'), { recursive: true });
  for (const f of MODEL_FILES) await copyFile(join(CLIP_FIXTURES, 'model', f), join(dir, rename[f] ?? f));
  for (const f of TOKENIZER_FILES) await copyFile(join(TOKENIZER_DIR, f), join(dir, f));
  return { root, dir, cleanup: () => rm(root, { recursive: true, force: true }) };
}

/**
 * For a describe() block: the tiny CLIP's model folder, assembled before its tests and removed after them.
 * Read `dir()` inside a test (it is empty before the suite's `before` hook has run).
 */
export function tinyClipForSuite(): { dir: () => string } {
  let folder = '';
  let cleanup: () => Promise<void> = async () => undefined;
  before(async () => {
    const m = await assembleModelDir();
    folder = m.dir;
    cleanup = m.cleanup;
  });
  after(() => cleanup());
  return { dir: () => folder };
}

export async function goldenMatrix(name: string): Promise<Matrix> {
  return npyToMatrix(await readNpy(join(CLIP_FIXTURES, name)), name);
}

/** The synthetic NCHW batch of scripts/export_tiny_clip.py: x[i] = f32(((i * 7919 + 13) % 1000) / 250 - 2). */
export function syntheticPixels(n: number, size = 224): Float32Array {
  const out = new Float32Array(n * 3 * size * size);
  for (let i = 0; i < out.length; i++) out[i] = ((i * 7919 + 13) % 1000) / 250 - 2;
  return out;
}

/** max |a - b| over the matrices / max |b|, and the smallest row cosine. */
export function compare(got: Matrix, want: Matrix): { relative: number; minCosine: number } {
  assert.equal(got.rows, want.rows, 'rows');
  assert.equal(got.cols, want.cols, 'cols');
  let diff = 0;
  let scale = 0;
  let minCosine = 1;
  for (let r = 0; r < want.rows; r++) {
    let dot = 0;
    let ng = 0;
    let nw = 0;
    for (let c = 0; c < want.cols; c++) {
      const g = got.data[r * want.cols + c];
      const w = want.data[r * want.cols + c];
      diff = Math.max(diff, Math.abs(g - w));
      scale = Math.max(scale, Math.abs(w));
      dot += g * w;
      ng += g * g;
      nw += w * w;
    }
    minCosine = Math.min(minCosine, dot / Math.sqrt(ng * nw));
  }
  return { relative: diff / Math.max(scale, 1e-12), minCosine };
}
