/** Fixtures of test/fixtures/activations (written by scripts/make_activation_golden.py). */
import assert from 'node:assert/strict';
import { copyFileSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { npyToMatrix, readNpy } from '../../src/io/npy.js';
import type { Matrix } from '../../src/numeric/matrix.js';
import { cli, tempDir } from '../helpers/cli.js';
import { assembleModelDir } from '../models/clip-helpers.js';

export const ACTIVATIONS = fileURLToPath(new URL('../../../test/fixtures/activations/', import.meta.url));
export const IMAGES = fileURLToPath(new URL('../../../test/fixtures/images/', import.meta.url));
export const MODELS = fileURLToPath(new URL('../../../test/fixtures/models/', import.meta.url));
/** BatchNorms kept: every module's output is PyTorch's. */
export const NOFOLD = `${MODELS}resnet_small_ts_nofold.onnx`;
/** The default TorchScript export: conv1 reads bn1(conv1(x)). */
export const FOLDED = `${MODELS}resnet_small_ts.onnx`;
/** Resize(72) bilinear, CenterCrop(64), ImageNet mean/std. */
export const PREPROCESS_JSON = `${ACTIVATIONS}preprocess.json`;
export const PREPROCESS = JSON.parse(readFileSync(PREPROCESS_JSON, 'utf8'));
export const LAYERS = ['conv1', 'layer1', 'layer2', 'layer3', 'layer4', 'fc'];

/** The golden images, in row order (file names). */
export const GOLDEN_IMAGES = readFileSync(`${ACTIVATIONS}images.txt`, 'utf8').split('\n').filter(Boolean);

/** The PyTorch hook's activations of a module over the golden images ('none' for fc). */
export async function golden(module: string, pool: 'avg' | 'max'): Promise<Matrix> {
  const p = `${ACTIVATIONS}${module}_${module === 'fc' ? 'none' : pool}.npy`;
  return npyToMatrix(await readNpy(p), p);
}

/** A flat probe folder with the golden images and, optionally, broken files copied under other names. */
export function probeFolder(extra: Record<string, string> = {}): string {
  const dir = tempDir('clip-dissect-probe-');
  for (const n of GOLDEN_IMAGES) copyFileSync(join(IMAGES, n), join(dir, n));
  for (const [name, fixture] of Object.entries(extra)) copyFileSync(join(IMAGES, fixture), join(dir, name));
  return dir;
}

/** The concept set of the tiny dissections that the compose and weights tests read back. */
export const RESULTS_CONCEPTS = [
  'dog',
  'cat',
  'bird',
  'car',
  'tree',
  'water',
  'sky',
  'grass',
  'road',
  'person',
  'red',
  'striped',
];

/**
 * The arguments of `clip-dissect dissect` for the tiny runs that the compose, weights and eval tests read back:
 * the TorchScript fixture network over the fixture images with the tiny CLIP, --top-k 5, one thread, quiet,
 * no HTML report (those tests never look at it), no trust figures unless `trust`. `extra` adds flags.
 */
export function tinyDissectArgs(o: {
  layers: string;
  concepts: string;
  clip: string;
  out: string;
  cacheDir?: string;
  /** Compute the trust figures (default: --no-trust, the tests that read these runs back do not use them). */
  trust?: boolean;
  extra?: string[];
}): string[] {
  return [
    'dissect',
    ...['--target', FOLDED, '--layers', o.layers, '--probe', probeFolder(), '--concepts', o.concepts],
    ...['--clip', o.clip, '--preprocess', PREPROCESS_JSON, '--top-k', '5', '--threads', '1'],
    ...['--cache-dir', o.cacheDir ?? tempDir(), '--out', o.out, '--quiet', '--no-report'],
    ...(o.trust ? [] : ['--no-trust']),
    ...(o.extra ?? []),
  ];
}

/**
 * Runs a tiny dissection of 'layer4' (tinyDissectArgs) into `out` with the tiny CLIP over `concepts`; returns the
 * CLIP folder and its cleanup. For the tests that read a results folder back (compose, weights, results-folder).
 */
export async function runTinyDissection(
  out: string,
  concepts: readonly string[],
  extra: string[] = [],
): Promise<{ clipDir: string; cleanup: () => Promise<void> }> {
  const m = await assembleModelDir();
  const file = join(tempDir(), 'concepts.txt');
  writeFileSync(file, concepts.join('\n'));
  const r = await cli(tinyDissectArgs({ layers: 'layer4', concepts: file, clip: m.dir, out, extra }));
  assert.equal(r.code, 0, r.stderr);
  return { clipDir: m.dir, cleanup: m.cleanup };
}
