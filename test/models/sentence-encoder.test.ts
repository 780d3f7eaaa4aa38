import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { cp, mkdir, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import { fileURLToPath } from 'node:url';
import { npyToMatrix, readNpy } from '../../src/io/npy.js';
import {
  createOnnxSentenceEncoder,
  DEFAULT_SENTENCE_MODEL,
  type OnnxSentenceEncoder,
} from '../../src/models/onnx-sentence-encoder.js';
import type { ClipDissectError } from '../../src/numeric/errors.js';
import type { Matrix } from '../../src/numeric/matrix.js';
import { currentRuntime } from '../../src/runtime/index.js';
import { tempDir } from '../helpers/cli.js';
import { assertStopsBetweenBatches } from './helpers.js';

const FIXTURES = fileURLToPath(new URL('../../../test/fixtures/mpnet/', import.meta.url));
const MODEL = join(FIXTURES, 'model');
const GOLDEN = JSON.parse(readFileSync(join(FIXTURES, 'golden.json'), 'utf8')) as {
  texts: string[];
  ids: number[][];
  ids_max8: number[][];
};

async function golden(name: string): Promise<Matrix> {
  return npyToMatrix(await readNpy(join(FIXTURES, name)), name);
}

function maxAbsDiff(a: Matrix, b: Matrix): number {
  assert.equal(a.rows, b.rows);
  assert.equal(a.cols, b.cols);
  let m = 0;
  for (let i = 0; i < a.data.length; i++) m = Math.max(m, Math.abs(a.data[i] - b.data[i]));
  return m;
}

describe('ONNX sentence encoder on the tiny MPNet fixture', () => {
  let enc: OnnxSentenceEncoder;
  before(async () => {
    enc = await createOnnxSentenceEncoder(MODEL, { threads: 1 });
  });
  after(async () => {
    await enc?.release();
  });

  test('reads the model description', () => {
    assert.equal(enc.modelId, MODEL);
    assert.equal(enc.embedDim, 16);
    assert.equal(enc.maxLength, 384);
  });

  test('token ids equal the transformers fast tokenizer on the same tokenizer.json', () => {
    GOLDEN.texts.forEach((t, i) => {
      assert.deepEqual(enc.tokenize(t).ids, GOLDEN.ids[i], t);
    });
  });

  test('embeddings equal sentence-transformers mean pooling + normalisation within 1e-5, any batch size', async () => {
    const want = await golden('embeddings.npy');
    for (const batchSize of [1, 5, 64]) {
      const got = await enc.encode(GOLDEN.texts, { batchSize });
      assert.deepEqual(got.truncated, []);
      const diff = maxAbsDiff(got, want);
      assert.ok(diff < 1e-5, `batch ${batchSize}: max |diff| ${diff}`);
      for (let r = 0; r < got.rows; r++) {
        let ss = 0;
        for (let j = 0; j < got.cols; j++) ss += got.data[r * got.cols + j] ** 2;
        assert.ok(Math.abs(ss - 1) < 1e-5, `row ${r} norm² ${ss}`);
      }
    }
  });

  test('reports progress and rejects bad input', async () => {
    const events: number[] = [];
    await enc.encode(['dog', 'cat', 'tree'], { batchSize: 2, onProgress: (e) => events.push(e.done) });
    assert.deepEqual(events, [0, 2, 3]);
    await assert.rejects(
      enc.encode(['dog', 3 as unknown as string]),
      /texts\[1\] must be a string but got number/,
    );
    await assert.rejects(
      enc.encode(['dog'], { batchSize: 0 }),
      /'batchSize' must be a positive integer but got 0/,
    );
  });

  test("the signal stops between batches with the signal's reason", async () => {
    await assertStopsBetweenBatches((texts, options) => enc.encode(texts, options));
  });
});

describe('sentence encoder options and errors', () => {
  test('maxLength cuts texts keeping the end token, as sentence-transformers truncates', async () => {
    await using enc = await createOnnxSentenceEncoder(MODEL, { threads: 1, maxLength: 8 });
    GOLDEN.texts.forEach((t, i) => {
      assert.deepEqual(enc.tokenize(t).ids, GOLDEN.ids_max8[i], t);
    });
    const got = await enc.encode(GOLDEN.texts);
    const long = GOLDEN.ids.flatMap((ids, i) => (ids.length > 8 ? [i] : []));
    assert.ok(long.length >= 3);
    assert.deepEqual(got.truncated, long);
    const diff = maxAbsDiff(got, await golden('embeddings_max8.npy'));
    assert.ok(diff < 1e-5, `max |diff| ${diff}`);
  });

  test('a hub id is served from the cache in offline mode; a missing file is named', async () => {
    const cacheDir = tempDir('clip-dissect-mpnet-cache-');
    const dir = join(cacheDir, 'models', ...DEFAULT_SENTENCE_MODEL.split('/'));
    await mkdir(dir, { recursive: true });
    await cp(MODEL, dir, { recursive: true });
    await using enc = await createOnnxSentenceEncoder(undefined, { cacheDir, offline: true, threads: 1 });
    assert.equal(enc.modelId, DEFAULT_SENTENCE_MODEL);
    const e = await enc.encode(['dog']);
    const want = await golden('embeddings.npy');
    assert.ok(Math.abs(e.data[0] - want.data[0]) < 1e-5);

    await assert.rejects(
      createOnnxSentenceEncoder(DEFAULT_SENTENCE_MODEL, { cacheDir, offline: true, dtype: 'q8' }),
      (err: ClipDissectError) =>
        err.code === 'ERR_OFFLINE' &&
        /onnx\/model_quantized\.onnx is not in the cache folder/.test(err.message),
    );
    const partial = tempDir('clip-dissect-mpnet-partial-');
    await cp(join(MODEL, 'config.json'), join(partial, 'config.json'));
    await assert.rejects(
      createOnnxSentenceEncoder(partial),
      /lacks tokenizer\.json, tokenizer_config\.json, onnx\/model\.onnx; a sentence-encoder model folder has the transformers\.js layout/,
    );
    await assert.rejects(
      createOnnxSentenceEncoder(MODEL, { maxLength: 1 }),
      /'maxLength' must be an integer >= 2 but got 1/,
    );
    await assert.rejects(
      createOnnxSentenceEncoder(MODEL, { dtype: 'int4' as never }),
      /'dtype' must be 'fp32', 'fp16' or 'q8'/,
    );
  });

  test('a model onnxruntime cannot open, or a missing CUDA build, is a clear ClipDissectError', async () => {
    const dir = tempDir('clip-dissect-mpnet-junk-');
    await cp(MODEL, dir, { recursive: true });
    const model = join(dir, 'onnx', 'model.onnx');
    await writeFile(model, 'not a model');
    await assert.rejects(createOnnxSentenceEncoder(dir), (e: ClipDissectError) => {
      assert.equal(e.code, 'ERR_MODEL_SESSION');
      assert.ok(e.message.startsWith(`onnxruntime cannot load ${model}: `), e.message);
      return true;
    });
    await assert.rejects(createOnnxSentenceEncoder(MODEL, { device: 'cuda' }), (e: ClipDissectError) => {
      assert.equal(e.code, 'ERR_CUDA_UNAVAILABLE');
      if (currentRuntime()?.name === 'wasm')
        assert.match(
          e.message,
          /requested for 'sentence encoder .*' but the runtime is wasm .* onnxruntime-node@/,
        );
      else {
        assert.match(e.message, /requested for 'sentence encoder .*' but onnxruntime cannot load its CUDA/);
        assert.match(e.message, /ONNXRUNTIME_NODE_INSTALL=cuda12/);
      }
      return true;
    });
    await assert.rejects(
      createOnnxSentenceEncoder(MODEL, { device: 'gpu' as never }),
      /'device' must be 'cpu' or 'cuda' but got 'gpu'/,
    );
  });

  test("an aborted signal stops the opening with the signal's reason", async () => {
    const reason = new Error('stopped by the caller');
    await assert.rejects(createOnnxSentenceEncoder(MODEL, {}, { signal: AbortSignal.abort(reason) }), reason);
    const ac = new AbortController();
    const opening = createOnnxSentenceEncoder(MODEL, { threads: 1 }, { signal: ac.signal });
    ac.abort(reason);
    await assert.rejects(opening, reason);
  });

  test('a CLIP folder is refused with the inputs it has', async () => {
    const dir = tempDir('clip-dissect-mpnet-wrong-');
    await cp(MODEL, dir, { recursive: true });
    // a model whose output is not the token states: the fixture's CLIP text tower
    const clipText = fileURLToPath(
      new URL('../../../test/fixtures/clip/model/onnx/text_model.onnx', import.meta.url),
    );
    await cp(clipText, join(dir, 'onnx', 'model.onnx'));
    await assert.rejects(
      createOnnxSentenceEncoder(dir),
      /takes 'input_ids' and 'attention_mask' \(and optionally 'token_type_ids'\) but this one takes 'input_ids'/,
    );
  });
});
