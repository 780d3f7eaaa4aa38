import assert from 'node:assert/strict';
import { readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, it } from 'node:test';
import { fileURLToPath } from 'node:url';
import { computeSimilarity } from '../../src/compute/similarity/index.js';
import { ClipDissectError } from '../../src/numeric/errors.js';
import type { Matrix } from '../../src/numeric/matrix.js';
import { mulberry32 } from '../../src/numeric/random.js';
import { loadDissectRun } from '../../src/pipeline/_results.js';
import { type LayerResult, neuronsJsonBody } from '../../src/results/descriptions.js';
import {
  type DissectArgs,
  layerDescriptions,
  RESULTS_SCHEMA_VERSION,
  readArgsJson,
  readDescriptionsCsv,
  readDissectArgs,
  readImagesTxt,
  readNeuronsJson,
  readResultsMatrix,
  type SimilarityArgs,
  writeAnalysisJson,
  writeArgsJson,
  writeDescriptionsCsv,
  writeImagesTxt,
  writeNeuronsJson,
  writeResultsMatrix,
} from '../../src/results/index.js';
import { VERSION } from '../../src/version.js';
import { tempDir } from '../helpers/cli.js';

/** A results folder written by `clip-dissect dissect` before the results contract (commit 1880b3e). */
const LEGACY = fileURLToPath(new URL('../../../test/fixtures/results-v0/', import.meta.url));

function randomMatrix(rows: number, cols: number, seed: number): Matrix {
  const rand = mulberry32(seed);
  return { rows, cols, data: Float32Array.from({ length: rows * cols }, () => rand() * 2 - 1) };
}

/** A layer labelled by the real similarity engine: 3 neurons, 40 images, 6 concepts (one with a comma). */
async function labelledLayer(): Promise<LayerResult> {
  const result = await computeSimilarity(
    'soft_wpmi',
    {
      imageFeatures: randomMatrix(40, 8, 1),
      textFeatures: randomMatrix(6, 8, 2),
      activations: randomMatrix(40, 3, 3),
    },
    { top: 3, options: { topK: 10 } },
  );
  return {
    layer: 'layer4',
    result,
    concepts: ['dog', 'tench, Tinca tinca', 'sky', 'say "hi"', 'car', 'grass'],
  };
}

function dissectArgs(): DissectArgs {
  return {
    command: 'dissect',
    version: '0.0.0-test',
    node: process.version,
    date: '2026-12-07T00:00:00.000Z',
    cwd: '/work',
    similarity: 'soft_wpmi',
    options: { topK: 10, a: 10, lambda: 1, minProb: 1e-7 },
    top: 3,
    device: 'cpu',
    inputs: {
      target: { given: 'resnet.onnx', model: '/models/resnet.onnx', classNames: null },
      clip: { given: 'tiny-clip', dir: '/models/clip', dtype: 'fp32' },
      concepts: {
        source: '/c/concepts.txt',
        given: 'concepts.txt',
        concepts: 6,
        template: '{}',
        sha256: 'ab12',
      },
      probe: { given: '/probe', images: 40, rows: 40 },
    },
    layers: [{ name: 'layer4', file: 'layer4.npy', tensor: '/layer4/Relu', kind: 'conv', neurons: 3 }],
    files: {
      imageFeatures: { file: 'image_features.npy', shape: [40, 8] },
      textFeatures: { file: 'text_features.npy', shape: [6, 8] },
      images: 'images.txt',
    },
  };
}

/** Rewrites the JSON file `path` with `edit`. */
function editJson(path: string, edit: (j: Record<string, unknown>) => void): void {
  const j = JSON.parse(readFileSync(path, 'utf8'));
  edit(j);
  writeFileSync(path, JSON.stringify(j));
}

/** Asserts a ClipDissectError 'ERR_RESULTS' whose message matches every pattern. */
function resultsError(...patterns: RegExp[]) {
  return (e: unknown) => {
    assert.ok(e instanceof ClipDissectError, String(e));
    assert.equal(e.code, 'ERR_RESULTS');
    for (const p of patterns) assert.match(e.message, p);
    return true;
  };
}

describe('results contract: round trips', () => {
  it('args.json of dissect and of similarity reads back as written, with the schema version', async () => {
    const dir = tempDir();
    const a = dissectArgs();
    assert.equal(await writeArgsJson(dir, a), join(dir, 'args.json'));
    assert.deepEqual(await readArgsJson(dir), { schemaVersion: RESULTS_SCHEMA_VERSION, ...a });
    assert.equal(JSON.parse(readFileSync(join(dir, 'args.json'), 'utf8')).schemaVersion, '1.0');
    const s: SimilarityArgs = {
      command: 'similarity',
      version: '0.0.0-test',
      similarity: 'wpmi',
      options: { topK: 10 },
      top: 5,
      layer: 'fc',
      inputs: {
        imageFeatures: { path: '/f/I.npy', shape: [40, 8], sha256: 'a' },
        textFeatures: { path: '/f/T.npy', shape: [6, 8], sha256: 'b' },
        activations: { path: '/f/A.npy', shape: [40, 3], sha256: 'c' },
        concepts: { source: 'c.txt', concepts: 6, duplicatesDropped: 0 },
      },
    };
    await writeArgsJson(dir, s);
    assert.deepEqual(await readArgsJson(dir), { schemaVersion: RESULTS_SCHEMA_VERSION, ...s });
    await assert.rejects(readDissectArgs(dir), resultsError(/written by 'similarity', not by 'dissect'/));
  });

  it('neurons.json and descriptions.csv read back what the engine labelled', async () => {
    const dir = tempDir();
    const layer = await labelledLayer();
    const body = neuronsJsonBody([layer], { version: '0.0.0-test', similarity: 'soft_wpmi' });
    await writeNeuronsJson(dir, body);
    const n = await readNeuronsJson(dir);
    assert.deepEqual(n, body);
    assert.equal(n.schemaVersion, RESULTS_SCHEMA_VERSION);
    assert.equal(n.neurons.length, 3);
    assert.deepEqual(
      n.neurons.map((r) => r.label),
      Array.from(layer.result.labels, (i) => layer.concepts[i]),
    );
    await writeDescriptionsCsv(dir, [layer]);
    const rows = await readDescriptionsCsv(dir);
    assert.deepEqual(
      rows.map((r) => [r.layer, r.unit, r.description, Math.fround(r.similarity)]),
      Array.from(layer.result.labels, (c, k) => ['layer4', k, layer.concepts[c], layer.result.scores[k]]),
    );
    assert.deepEqual(
      layerDescriptions(rows, 'layer4', 3, dir),
      n.neurons.map((r) => r.label),
    );
  });

  it('images.txt and the .npy matrices read back as written', async () => {
    const dir = tempDir();
    const sources = ['/probe/a/1.jpg', '/probe/b/2 with space.png', 'cifar:/data/test_batch#7'];
    await writeImagesTxt(dir, sources);
    assert.deepEqual(await readImagesTxt(dir), sources);
    const m = randomMatrix(5, 4, 9);
    assert.equal(await writeResultsMatrix(dir, 'layer4.npy', m), join(dir, 'layer4.npy'));
    assert.deepEqual(await readResultsMatrix(dir, 'layer4.npy'), m);
  });
});

describe("results contract: the analyses' outputs", () => {
  it('<command>.json starts with schemaVersion, command and the library version, then the body', async () => {
    const dir = tempDir();
    const nonFinite = (_k: string, v: unknown) =>
      typeof v === 'number' && !Number.isFinite(v) ? String(v) : v;
    const path = await writeAnalysisJson(
      dir,
      'weights',
      { results: '/r', r: Number.NEGATIVE_INFINITY },
      nonFinite,
    );
    assert.equal(path, join(dir, 'weights.json'));
    const j = JSON.parse(readFileSync(path, 'utf8'));
    assert.deepEqual(Object.keys(j), ['schemaVersion', 'command', 'version', 'results', 'r']);
    assert.deepEqual([j.schemaVersion, j.command, j.r], [RESULTS_SCHEMA_VERSION, 'weights', '-Infinity']);
    assert.equal(j.version, VERSION);
  });
});

describe('results contract: a folder written before it', () => {
  it('every file of the legacy fixture reads (no schemaVersion: 1.0)', async () => {
    const args = await readDissectArgs(LEGACY);
    assert.equal(args.schemaVersion, undefined);
    assert.equal(args.similarity, 'soft_wpmi');
    assert.deepEqual(
      args.layers.map((l) => [l.name, l.file]),
      [['layer4', 'layer4.npy']],
    );
    const n = await readNeuronsJson(LEGACY);
    assert.equal(n.schemaVersion, undefined);
    const K = args.layers[0].neurons;
    assert.equal(n.neurons.length, K);
    const rows = await readDescriptionsCsv(LEGACY);
    assert.deepEqual(
      layerDescriptions(rows, 'layer4', K, LEGACY),
      n.neurons.map((r) => r.label),
    );
    const images = await readImagesTxt(LEGACY);
    const A = await readResultsMatrix(LEGACY, args.layers[0].file);
    assert.deepEqual([A.rows, A.cols], [images.length, K]);
    const I = await readResultsMatrix(LEGACY, args.files.imageFeatures.file);
    assert.deepEqual([I.rows, I.cols], args.files.imageFeatures.shape);
    // what score, sanity, compose and weights read
    const run = await loadDissectRun(LEGACY);
    assert.equal(run.neurons.get('layer4')?.length, K);
    assert.equal(run.concepts.count, args.inputs.concepts.concepts);
  });
});

describe('results contract: refusals', () => {
  async function writtenFolder(): Promise<string> {
    const dir = tempDir();
    await writeArgsJson(dir, dissectArgs());
    await writeNeuronsJson(
      dir,
      neuronsJsonBody([await labelledLayer()], { version: 't', similarity: 'soft_wpmi' }),
    );
    return dir;
  }

  it('a newer major version is refused, a newer minor one read', async () => {
    const dir = await writtenFolder();
    editJson(join(dir, 'args.json'), (j) => {
      j.schemaVersion = '1.7';
    });
    assert.equal((await readArgsJson(dir)).schemaVersion, '1.7');
    editJson(join(dir, 'args.json'), (j) => {
      j.schemaVersion = '2.0';
    });
    await assert.rejects(
      readArgsJson(dir),
      resultsError(/args\.json: results format version 2\.0 is newer/, /1\.x/),
    );
    editJson(join(dir, 'neurons.json'), (j) => {
      j.schemaVersion = '3.1';
    });
    await assert.rejects(readNeuronsJson(dir), resultsError(/neurons\.json: results format version 3\.1/));
    editJson(join(dir, 'neurons.json'), (j) => {
      j.schemaVersion = 1;
    });
    await assert.rejects(
      readNeuronsJson(dir),
      resultsError(/field 'schemaVersion' is 1 but must be a version/),
    );
  });

  it('a malformed field is named with its value and what was expected', async () => {
    const dir = await writtenFolder();
    editJson(join(dir, 'neurons.json'), (j) => {
      (j.neurons as { unit: unknown }[])[1].unit = -1;
    });
    await assert.rejects(
      readNeuronsJson(dir),
      resultsError(/neurons\.json: field 'neurons\[1\]\.unit' is -1 but must be a non-negative integer/),
    );
    editJson(join(dir, 'args.json'), (j) => {
      (j.layers as { file: unknown }[])[0].file = 3;
    });
    await assert.rejects(
      readArgsJson(dir),
      resultsError(/args\.json: field 'layers\[0\]\.file' is 3 but must be a string/),
    );
    editJson(join(dir, 'args.json'), (j) => {
      j.command = 'eval';
    });
    await assert.rejects(readArgsJson(dir), resultsError(/field 'command' is "eval"/));
    writeFileSync(join(dir, 'descriptions.csv'), 'layer,unit,description,similarity\nlayer4,x,dog,0.5\n');
    await assert.rejects(
      readDescriptionsCsv(dir),
      resultsError(/descriptions\.csv: field 'line 2 unit' is "x" but must be a non-negative integer/),
    );
    writeFileSync(join(dir, 'descriptions.csv'), 'layer,unit,description,similarity\nlayer4,0,dog,0.5\n');
    assert.throws(
      () =>
        layerDescriptions(
          [{ layer: 'layer4', unit: 0, description: 'dog', similarity: 0.5 }],
          'layer4',
          2,
          dir,
        ),
      resultsError(/layer 'layer4' has no row for unit 1 \(of 2\)/),
    );
    assert.throws(
      () =>
        layerDescriptions([{ layer: 'layer4', unit: 0, description: 'dog', similarity: 0.5 }], 'fc', 1, dir),
      resultsError(/no rows of layer 'fc'; its layers are 'layer4'/),
    );
  });

  it('the analyses refuse a folder of a newer format before any work', async () => {
    const dir = await writtenFolder();
    editJson(join(dir, 'args.json'), (j) => {
      j.schemaVersion = '2.0';
    });
    await assert.rejects(loadDissectRun(dir), resultsError(/newer than this clip-dissect reads/));
  });
});
