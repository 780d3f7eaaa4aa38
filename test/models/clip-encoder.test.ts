import assert from 'node:assert/strict';
import { readFile, rm, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import { fromBinary, toBinary } from '@bufbuild/protobuf';
import * as onnx from 'onnx-buf';
import * as ort from 'onnxruntime-node';
import { decodeImageRGB } from '../../src/data/decode.js';
import { CLIP_PREPROCESS, preprocessImage } from '../../src/data/preprocess.js';
import { tokenizerSpec } from '../../src/models/_clip-tokenizer.js';
import { createOnnxClipEncoder, type OnnxClipEncoder } from '../../src/models/onnx-clip-encoder.js';
import { ArgumentError, type ClipDissectError, ShapeError } from '../../src/numeric/errors.js';
import type { Matrix } from '../../src/numeric/matrix.js';
import type { ProgressEvent } from '../../src/progress.js';
import {
  assembleModelDir,
  CLIP_FIXTURES,
  compare,
  GOLDEN,
  goldenMatrix,
  NEEDS_SHARED,
  syntheticPixels,
} from './clip-helpers.js';
import { assertStopsBetweenBatches } from './helpers.js';

const IMAGE_FILES = ['rgb444.jpg', 'rgb_odd.png', 'tall10x1100.png'];
const IMAGES = join(CLIP_FIXTURES, '..', 'images');

function rows(m: Matrix, idx: readonly number[]): Matrix {
  const data = new Float32Array(idx.length * m.cols);
  for (const [i, r] of idx.entries()) data.set(m.data.subarray(r * m.cols, (r + 1) * m.cols), i * m.cols);
  return { rows: idx.length, cols: m.cols, data };
}

/** The fixture's text model run directly on ids padded to 77 (clip.tokenize's layout), one text at a time. */
async function embedPadded77(path: string, ids: number[][], pad: number): Promise<Matrix> {
  const session = await ort.InferenceSession.create(path, { intraOpNumThreads: 1 });
  try {
    const out: number[] = [];
    let cols = 0;
    for (const row of ids) {
      const t = new BigInt64Array(77).fill(BigInt(pad));
      row.forEach((v, i) => {
        t[i] = BigInt(v);
      });
      const res = await session.run({ input_ids: new ort.Tensor('int64', t, [1, 77]) });
      const e = res['text_embeds'];
      cols = e.dims[1];
      out.push(...(e.data as Float32Array));
    }
    return { rows: ids.length, cols, data: Float32Array.from(out) };
  } finally {
    await session.release();
  }
}

describe('SigLIP tokenizer settings', () => {
  test('pad every text to the context length with the pad token', () => {
    const spec = tokenizerSpec(
      'siglip',
      { text_config: { max_position_embeddings: 64 } },
      { model_max_length: 1e30, pad_token: '</s>' },
      (t) => (t === '</s>' ? 1 : undefined),
      'config.json',
    );
    assert.deepEqual(spec, { contextLength: 64, padding: 'max_length', padId: 1, clean: false });
    assert.throws(
      () => tokenizerSpec('siglip', {}, {}, () => undefined, 'config.json'),
      /SigLIP pads every text/,
    );
  });
});

describe('ONNX CLIP encoder on the tiny fixture model', { skip: NEEDS_SHARED }, () => {
  let dir: string;
  let cleanup: () => Promise<void>;
  let enc: OnnxClipEncoder;

  before(async () => {
    ({ dir, cleanup } = await assembleModelDir());
    enc = await createOnnxClipEncoder(dir, { threads: 1 });
  });
  after(async () => {
    await enc?.release();
    await cleanup?.();
  });

  test('reads the model description', () => {
    assert.equal(enc.modelId, dir);
    assert.equal(enc.modelType, 'clip');
    assert.equal(enc.embedDim, 16);
    assert.equal(enc.contextLength, 77);
    assert.deepEqual(enc.imageShape, [3, 224, 224]);
    // OpenAI CLIP's transform as clip.load crops (round half to even); rescale 1/255 is ToTensor's x / 255
    const { rescale, cropRounding, ...rest } = enc.preprocess;
    assert.deepEqual(rest, { ...CLIP_PREPROCESS });
    assert.equal(rescale, 1 / 255);
    assert.equal(cropRounding, 'round');
  });

  test('text embeddings equal PyTorch get_text_features (77-token padding)', async () => {
    const want = await goldenMatrix('text_embeds.npy');
    const events: ProgressEvent[] = [];
    const got = await enc.encodeText(GOLDEN.concepts, { batchSize: 5, onProgress: (e) => events.push(e) });
    const { relative, minCosine } = compare(got, want);
    assert.ok(relative <= 1e-4, `relative error ${relative}`);
    assert.ok(minCosine >= 0.99999, `cosine ${minCosine}`);
    const long = GOLDEN.ids.findIndex((ids) => ids.length === 77);
    assert.deepEqual(got.truncated, [long]);
    assert.deepEqual(
      events.map((e) => e.done),
      [0, 5, 10, GOLDEN.concepts.length],
    );
    assert.ok(events.every((e) => e.stage === 'text features' && e.total === GOLDEN.concepts.length));
  });

  test('length bucketing equals 77-token padding and keeps the input order', async () => {
    const texts = [
      ...GOLDEN.concepts,
      'a',
      'a photo of a dog',
      'dog',
      '',
      'the quick brown fox jumps over the lazy dog',
      'ice cream',
    ];
    const ids = texts.map((t) => enc.tokenize(t).ids);
    const textModel = join(dir, 'onnx', 'text_model.onnx');
    const want0 = await embedPadded77(textModel, ids, 0); // clip.tokenize pads with 0
    const want1 = await embedPadded77(textModel, ids, 49407); // transformers pads with <|endoftext|>
    for (const batchSize of [1, 4, 256]) {
      const got = await enc.encodeText(texts, { batchSize });
      for (const want of [want0, want1]) {
        const { relative } = compare(got, want);
        assert.ok(relative <= 1e-5, `batch ${batchSize}: relative error ${relative}`);
      }
    }
    // any permutation of the input permutes the rows alike
    const perm = texts.map((_, i) => (i * 7) % texts.length);
    assert.equal(new Set(perm).size, texts.length);
    const base = await enc.encodeText(texts, { batchSize: 3 });
    const shuffled = await enc.encodeText(
      perm.map((i) => texts[i]),
      { batchSize: 3 },
    );
    assert.ok(compare(shuffled, rows(base, perm)).relative <= 1e-6);
    // duplicates give equal rows
    const dup = await enc.encodeText(['dog', 'cat', 'dog'], { batchSize: 2 });
    assert.ok(compare(rows(dup, [0]), rows(dup, [2])).relative <= 1e-6);
  });

  test('empty input and argument checks', async () => {
    const none = await enc.encodeText([]);
    assert.equal(none.rows, 0);
    assert.equal(none.cols, 16);
    await assert.rejects(enc.encodeText(['a'], { batchSize: 0 }), ArgumentError);
    await assert.rejects(enc.encodeText([3 as unknown as string]), /texts\[0\] must be a string/);
  });

  test("the signal stops text encoding between batches with the signal's reason", async () => {
    await assertStopsBetweenBatches((texts, options) => enc.encodeText(texts, options));
  });

  test('image embeddings equal PyTorch get_image_features', async () => {
    const want = await goldenMatrix('image_embeds_synthetic.npy');
    const got = await enc.encodeImages(syntheticPixels(3), 3);
    const { relative, minCosine } = compare(got, want);
    assert.ok(relative <= 1e-4, `relative error ${relative}`);
    assert.ok(minCosine >= 0.99999, `cosine ${minCosine}`);
    // batch size does not matter
    const one = await enc.encodeImages(syntheticPixels(3).subarray(3 * 224 * 224, 6 * 224 * 224), 1);
    assert.ok(compare(one, rows(want, [1])).relative <= 1e-4);
  });

  test('decoded and preprocessed image files give PyTorch/transformers embeddings', async () => {
    const want = await goldenMatrix('image_embeds_files.npy');
    const per = 3 * 224 * 224;
    const batch = new Float32Array(IMAGE_FILES.length * per);
    for (let i = 0; i < IMAGE_FILES.length; i++) {
      const img = await decodeImageRGB(join(IMAGES, IMAGE_FILES[i]));
      preprocessImage(img, enc.preprocess, batch.subarray(i * per, (i + 1) * per));
    }
    const got = await enc.encodeImages(batch, IMAGE_FILES.length);
    const { relative, minCosine } = compare(got, want);
    assert.ok(relative <= 1e-4, `relative error ${relative}`);
    assert.ok(minCosine >= 0.99999, `cosine ${minCosine}`);
  });

  test('runBatchSize splits the vision batch into runs and gives the same rows', async () => {
    const want = await goldenMatrix('image_embeds_synthetic.npy');
    for (const runBatchSize of [1, 2]) {
      const e2 = await createOnnxClipEncoder(dir, { threads: 1, runBatchSize });
      try {
        const got = await e2.encodeImages(syntheticPixels(3), 3); // runs of 1 / of 2 + 1
        assert.ok(compare(got, want).relative <= 1e-4, `runBatchSize ${runBatchSize}`);
      } finally {
        await e2.release();
      }
    }
    await assert.rejects(
      createOnnxClipEncoder(dir, { runBatchSize: 1.5 }),
      /'runBatchSize' must be a positive integer but got 1.5/,
    );
  });

  test('a batch of the wrong size is a ShapeError', async () => {
    await assert.rejects(enc.encodeImages(new Float32Array(10), 1), ShapeError);
    await assert.rejects(enc.encodeImages(new Float32Array(0), 0), ArgumentError);
  });
});

describe('ONNX CLIP encoder variants and errors', { skip: NEEDS_SHARED }, () => {
  test('an export that also takes attention_mask is fed a mask', async () => {
    const { dir, cleanup } = await assembleModelDir();
    try {
      const path = join(dir, 'onnx', 'text_model.onnx');
      const model = fromBinary(onnx.ModelProtoSchema, await readFile(path));
      const ids = model.graph!.input[0];
      // an extra int64 [batch, sequence] input that the graph ignores (HF CLIP's mask changes nothing either:
      // the causal mask already hides the padding from every token up to the end token)
      const mask = { ...ids, name: 'attention_mask' } as typeof ids;
      model.graph!.input.push(mask);
      await writeFile(path, toBinary(onnx.ModelProtoSchema, model));
      const enc = await createOnnxClipEncoder(dir, { threads: 1 });
      try {
        const got = await enc.encodeText(GOLDEN.concepts, { batchSize: 4 });
        assert.ok(compare(got, await goldenMatrix('text_embeds.npy')).relative <= 1e-4);
      } finally {
        await enc.release();
      }
    } finally {
      await cleanup();
    }
  });

  test("model_type 'siglip' pads every text to the context length", async () => {
    const { dir, cleanup } = await assembleModelDir();
    try {
      const cfgPath = join(dir, 'config.json');
      const cfg = JSON.parse(await readFile(cfgPath, 'utf8'));
      await writeFile(cfgPath, JSON.stringify({ ...cfg, model_type: 'siglip' }));
      const enc = await createOnnxClipEncoder(dir, { threads: 1 });
      try {
        assert.equal(enc.modelType, 'siglip');
        assert.equal(enc.tokenizerSpec.padding, 'max_length');
        assert.equal(enc.tokenizerSpec.clean, false);
        const plain = GOLDEN.concepts.filter((c) => /^[a-z ]+$/.test(c)); // lower case: no cleaning needed
        const got = await enc.encodeText(plain, { batchSize: 4 });
        const want = rows(
          await goldenMatrix('text_embeds.npy'),
          plain.map((c) => GOLDEN.concepts.indexOf(c)),
        );
        assert.ok(compare(got, want).relative <= 1e-4);
      } finally {
        await enc.release();
      }
    } finally {
      await cleanup();
    }
  });

  test('dtype picks the file names; a missing file is named with its folder', async () => {
    const { dir, cleanup } = await assembleModelDir('fp16-named', {
      'onnx/text_model.onnx': 'onnx/text_model_fp16.onnx',
      'onnx/vision_model.onnx': 'onnx/vision_model_fp16.onnx',
    });
    try {
      const enc = await createOnnxClipEncoder(dir, { dtype: 'fp16', threads: 1 });
      await enc.release();
      await assert.rejects(createOnnxClipEncoder(dir, { dtype: 'q8' }), (e: ClipDissectError) => {
        assert.equal(e.code, 'ERR_MODEL_FILES');
        assert.match(e.message, /onnx\/text_model_quantized\.onnx, onnx\/vision_model_quantized\.onnx/);
        assert.ok(e.message.includes(dir), e.message);
        return true;
      });
      await assert.rejects(createOnnxClipEncoder(dir), /lacks onnx\/text_model\.onnx/);
      await assert.rejects(createOnnxClipEncoder(dir, { dtype: 'int4' as 'q8' }), ArgumentError);
      await assert.rejects(createOnnxClipEncoder(dir, { threads: 0 }), ArgumentError);
      const reason = new Error('stopped by the caller');
      await assert.rejects(createOnnxClipEncoder(dir, {}, { signal: AbortSignal.abort(reason) }), reason);
      // aborted while the folder is read: no tower is opened
      const ac = new AbortController();
      const opening = createOnnxClipEncoder(dir, { dtype: 'fp16', threads: 1 }, { signal: ac.signal });
      ac.abort(reason);
      await assert.rejects(opening, reason);
    } finally {
      await cleanup();
    }
  });

  test('unsupported model types and broken files are reported', async () => {
    const { dir, cleanup } = await assembleModelDir();
    try {
      const cfgPath = join(dir, 'config.json');
      const cfg = JSON.parse(await readFile(cfgPath, 'utf8'));
      await writeFile(cfgPath, JSON.stringify({ ...cfg, model_type: 'blip' }));
      await assert.rejects(createOnnxClipEncoder(dir), /model_type "blip" is not supported/);
      await writeFile(cfgPath, '{ not json');
      await assert.rejects(createOnnxClipEncoder(dir), /config\.json is not valid JSON/);
      await writeFile(cfgPath, JSON.stringify(cfg));
      await writeFile(join(dir, 'onnx', 'vision_model.onnx'), 'not a model');
      await assert.rejects(
        createOnnxClipEncoder(dir),
        (e: ClipDissectError) => e.code === 'ERR_MODEL_SESSION',
      );
      // the text tower's model as the vision tower: wrong inputs
      await rm(join(dir, 'onnx', 'vision_model.onnx'));
      await writeFile(
        join(dir, 'onnx', 'vision_model.onnx'),
        await readFile(join(dir, 'onnx', 'text_model.onnx')),
      );
      await assert.rejects(createOnnxClipEncoder(dir), /takes 'pixel_values' but this one takes 'input_ids'/);
    } finally {
      await cleanup();
    }
  });

  test("towers 'text' / 'vision' open one session each and give the same embeddings", async () => {
    const { dir, cleanup } = await assembleModelDir();
    try {
      const texts = ['dog', 'a photo of a cat'];
      const pixels = syntheticPixels(2);
      await using both = await createOnnxClipEncoder(dir, { threads: 1 });
      const wantText = await both.encodeText(texts);
      const wantImages = await both.encodeImages(pixels, 2);
      {
        await using text = await createOnnxClipEncoder(dir, { threads: 1, towers: 'text' });
        assert.deepEqual((await text.encodeText(texts)).data, wantText.data);
        assert.equal(text.embedDim, 16);
        await assert.rejects(text.encodeImages(pixels, 2), (e: ClipDissectError) => {
          assert.equal(e.code, 'ERR_NO_TOWER');
          assert.match(e.message, /without its vision tower/);
          assert.match(e.message, /towers 'vision' or 'both'/);
          return true;
        });
      }
      {
        await using vision = await createOnnxClipEncoder(dir, { threads: 1, towers: 'vision' });
        assert.deepEqual((await vision.encodeImages(pixels, 2)).data, wantImages.data);
        await assert.rejects(vision.encodeText(texts), (e: ClipDissectError) => e.code === 'ERR_NO_TOWER');
      }
      await assert.rejects(
        createOnnxClipEncoder(dir, { towers: 'image' as never }),
        /'towers' must be 'both', 'text' or 'vision' but got 'image'/,
      );
    } finally {
      await cleanup();
    }
  });

  test('release is idempotent and later calls fail', async () => {
    const { dir, cleanup } = await assembleModelDir();
    try {
      let enc: OnnxClipEncoder | undefined;
      try {
        enc = await createOnnxClipEncoder(dir, { threads: 1 });
        await enc.encodeText(['dog']);
      } finally {
        await enc?.release();
      }
      await enc.release();
      await assert.rejects(enc.encodeText(['dog']), (e: ClipDissectError) => e.code === 'ERR_RELEASED');
      await assert.rejects(
        enc.encodeImages(syntheticPixels(1), 1),
        (e: ClipDissectError) => e.code === 'ERR_RELEASED',
      );
      {
        await using scoped = await createOnnxClipEncoder(dir, { threads: 1 });
        assert.equal((await scoped.encodeText(['x'])).rows, 1);
      }
    } finally {
      await cleanup();
    }
  });
});
