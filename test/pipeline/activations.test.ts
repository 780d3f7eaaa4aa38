import assert from 'node:assert/strict';
import { copyFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, it } from 'node:test';
import { ArgumentError, ClipDissectError } from '../../src/numeric/errors.js';
import type { Matrix } from '../../src/numeric/matrix.js';
import { type ActivationsResult, extractActivations } from '../../src/pipeline/activations.js';
import { loadPreprocessConfig, parsePreprocessJson } from '../../src/pipeline/preprocess-config.js';
import type { ProgressEvent } from '../../src/progress.js';
import { tempDir } from '../helpers/cli.js';
import { assertClose } from '../models/helpers.js';
import {
  FOLDED,
  GOLDEN_IMAGES,
  golden,
  IMAGES,
  LAYERS,
  NOFOLD,
  PREPROCESS,
  PREPROCESS_JSON,
  probeFolder,
} from './helpers.js';

const layer = (r: ActivationsResult, name: string): Matrix => {
  const l = r.layers.find((x) => x.name === name);
  assert.ok(l, `layer ${name} missing`);
  return l.matrix;
};

async function assertGolden(r: ActivationsResult, pool: 'avg' | 'max', what: string): Promise<void> {
  for (const name of LAYERS) assertClose(layer(r, name), await golden(name, pool), `${what} ${name} ${pool}`);
}

describe('extractActivations: PyTorch forward-hook golden values (resnet_small, 22 fixture images)', () => {
  const probe = probeFolder();

  for (const pool of ['avg', 'max'] as const) {
    for (const workers of [0, 1, 2]) {
      it(`${pool} pooling, ${workers} preprocessing worker${workers === 1 ? '' : 's'}, batches of 5`, async () => {
        const r = await extractActivations({
          target: NOFOLD,
          layers: LAYERS,
          probe,
          pool,
          batchSize: 5,
          workers,
          preprocess: PREPROCESS_JSON,
        });
        assert.equal(r.pool, pool);
        assert.equal(r.workers, workers);
        assert.deepEqual(
          r.layers.map((l) => [l.name, l.neurons, l.matrix.rows, l.matrix.cols]),
          [
            ['conv1', 8, 22, 8],
            ['layer1', 8, 22, 8],
            ['layer2', 16, 22, 16],
            ['layer3', 32, 22, 32],
            ['layer4', 64, 22, 64],
            ['fc', 10, 22, 10],
          ],
        );
        await assertGolden(r, pool, `workers=${workers}`);
        assert.deepEqual(r.skipped, []);
      });
    }
  }

  it('rows follow the probe order (ImageFolder order: names sorted by code point)', async () => {
    const r = await extractActivations({
      target: NOFOLD,
      layers: 'layer4',
      probe,
      preprocess: PREPROCESS_JSON,
    });
    assert.deepEqual(
      r.images.map((im) => im.source),
      GOLDEN_IMAGES.map((n) => join(probe, n)),
    );
    assert.deepEqual(
      r.images.map((im) => im.index),
      GOLDEN_IMAGES.map((_, i) => i),
    );
    assert.equal(r.batchSize, 22); // the default 64, capped at N
  });

  it('one batch larger than the probe set, a batch of 1, and the PreprocessConfig object give the same rows', async () => {
    for (const batchSize of [1, 64]) {
      const r = await extractActivations({
        target: NOFOLD,
        layers: LAYERS,
        probe,
        batchSize,
        preprocess: PREPROCESS,
      });
      await assertGolden(r, 'avg', `batch ${batchSize}`);
      assert.equal(r.preprocess.source, 'options');
    }
  });

  it('the folded TorchScript export: conv1 reads bn1(conv1(x)) and says so in the warnings', async () => {
    const r = await extractActivations({
      target: FOLDED,
      layers: 'conv1,layer4',
      probe,
      preprocess: PREPROCESS_JSON,
    });
    assertClose(layer(r, 'conv1'), await golden('bn1', 'avg'), 'folded conv1 = bn1');
    assertClose(layer(r, 'layer4'), await golden('layer4', 'avg'), 'layer4');
    assert.ok(r.warnings.some((w) => /^conv1: .*folded the BatchNorm/.test(w)));
    assert.ok(r.warnings.some((w) => /BatchNorm folded into 20 Conv layers/.test(w)));
    assert.equal(r.model.exporter, 'torchscript');
  });

  it('reports progress in images and its timings', async () => {
    const events: ProgressEvent[] = [];
    const r = await extractActivations(
      {
        target: NOFOLD,
        layers: 'fc',
        probe,
        batchSize: 10,
        preprocess: PREPROCESS_JSON,
      },
      { onProgress: (e) => events.push(e) },
    );
    const acts = events.filter((e) => e.stage === 'activations');
    // steps of 10 are rounded down to whole runs of 8 (the CPU's default run size)
    assert.deepEqual(
      acts.map((e) => [e.done, e.total, e.unit]),
      [
        [0, 22, 'images'],
        [8, 22, 'images'],
        [16, 22, 'images'],
        [22, 22, 'images'],
      ],
    );
    for (const k of ['openModel', 'openProbe', 'inference', 'waitForImages', 'preprocess', 'total'])
      assert.ok(r.timings[k] >= 0, k);
  });
});

describe('extractActivations: bad images', () => {
  it('a truncated JPEG stops the run with an error naming the file', async () => {
    const probe = probeFolder({ 'm_truncated.jpg': 'truncated.jpg' });
    for (const workers of [0, 1]) {
      await assert.rejects(
        extractActivations({ target: NOFOLD, layers: 'fc', probe, preprocess: PREPROCESS_JSON, workers }),
        (e: unknown) => {
          assert.ok(e instanceof ClipDissectError);
          assert.equal(e.code, 'ERR_IMAGE');
          assert.ok(e.message.startsWith(join(probe, 'm_truncated.jpg')), e.message);
          assert.match(e.message, /probe image 10/);
          assert.match(e.message, /--skip-bad-images/);
          return true;
        },
      );
    }
  });

  it('with skipBadImages it is left out of the rows and listed; the other rows are unchanged', async () => {
    const probe = probeFolder({
      'm_truncated.jpg': 'truncated.jpg',
      'zz_empty.png': 'empty.png',
      'a_text.png': 'not_an_image.txt',
    });
    for (const workers of [0, 1]) {
      const r = await extractActivations({
        target: NOFOLD,
        layers: LAYERS,
        probe,
        batchSize: 4,
        workers,
        preprocess: PREPROCESS_JSON,
        skipBadImages: true,
      });
      assert.deepEqual(
        r.skipped.map((s) => [s.index, s.source]),
        [
          [0, join(probe, 'a_text.png')],
          [11, join(probe, 'm_truncated.jpg')],
          [24, join(probe, 'zz_empty.png')],
        ],
      );
      assert.match(r.skipped[1].message, /corrupt or truncated/);
      assert.match(r.skipped[2].message, /empty file/);
      assert.deepEqual(
        r.images.map((im) => im.source),
        GOLDEN_IMAGES.map((n) => join(probe, n)),
      );
      assert.equal(r.probe.images, 25);
      await assertGolden(r, 'avg', `skipping, workers=${workers}`);
    }
  });

  it('a probe set of nothing but bad images is an error even with skipBadImages', async () => {
    const probe = tempDir('clip-dissect-probe-');
    copyFileSync(join(IMAGES, 'truncated.jpg'), join(probe, 'a.jpg'));
    copyFileSync(join(IMAGES, 'truncated.png'), join(probe, 'b.png'));
    await assert.rejects(
      extractActivations({
        target: NOFOLD,
        layers: 'fc',
        probe,
        preprocess: PREPROCESS_JSON,
        skipBadImages: true,
      }),
      /every one of the 2 probe images was skipped/,
    );
  });
});

describe('extractActivations: probe sets', () => {
  it('an empty folder is an error naming it', async () => {
    const probe = tempDir('clip-dissect-probe-');
    await assert.rejects(
      extractActivations({ target: NOFOLD, layers: 'fc', probe, preprocess: PREPROCESS_JSON }),
      (e: unknown) => {
        assert.ok(e instanceof ClipDissectError);
        assert.match(e.message, /no image files/);
        assert.ok(e.message.includes(probe));
        return true;
      },
    );
  });

  it('CIFAR records (loaded by the main thread) go through the workers like files', async () => {
    const dir = tempDir('clip-dissect-cifar-');
    const records: Uint8Array[] = [];
    for (let r = 0; r < 7; r++) {
      const rec = new Uint8Array(1 + 3072);
      rec[0] = r % 10;
      for (let i = 0; i < 3072; i++) rec[1 + i] = (i * (r + 3) + r * 17) & 255;
      records.push(rec);
    }
    writeFileSync(join(dir, 'test_batch.bin'), Buffer.concat(records));
    const run = (workers: number) =>
      extractActivations({
        target: NOFOLD,
        layers: 'layer2,fc',
        probe: join(dir, 'test_batch.bin'),
        preprocess: { ...PREPROCESS, resize: 64 },
        batchSize: 3,
        workers,
      });
    const [a, b] = [await run(0), await run(1)];
    assert.deepEqual(
      a.images.map((im) => im.source),
      records.map((_, i) => `cifar:${join(dir, 'test_batch.bin')}#${i}`),
    );
    for (const name of ['layer2', 'fc']) assert.deepEqual(layer(a, name), layer(b, name));
    assert.equal(a.probe.sources[0].kind, 'cifar10');
  });
});

describe('extractActivations: layers and options', () => {
  const probe = probeFolder();

  it('an unknown layer is an ArgumentError listing the closest names', async () => {
    await assert.rejects(
      extractActivations({ target: NOFOLD, layers: 'conv1,layer5', probe, preprocess: PREPROCESS_JSON }),
      (e: unknown) => {
        assert.ok(e instanceof ArgumentError);
        assert.match(
          e.message,
          /unknown layer 'layer5'; closest layers first: 'layer1', 'layer2', 'layer3', 'layer4'/,
        );
        return true;
      },
    );
  });

  it('a raw ONNX tensor name works as a layer', async () => {
    const r = await extractActivations({
      target: NOFOLD,
      layers: ['/layer4/layer4.1/relu_1/Relu_output_0'],
      probe,
      preprocess: PREPROCESS_JSON,
    });
    assertClose(r.layers[0].matrix, await golden('layer4', 'avg'), 'layer4 by tensor name');
  });

  it('rejects bad options with messages that name them', async () => {
    const base = { target: NOFOLD, layers: 'fc', probe, preprocess: PREPROCESS_JSON };
    await assert.rejects(
      extractActivations({ ...base, pool: 'mean' as never }),
      /'pool' must be 'avg' or 'max'/,
    );
    await assert.rejects(
      extractActivations({ ...base, batchSize: 0 }),
      /'batchSize' must be a positive integer/,
    );
    await assert.rejects(
      extractActivations({ ...base, workers: -1 }),
      /'workers' must be an integer from 0 to \d+ \(the cores of this machine, \d+, at least 4, at most 64\) but got -1/,
    );
    await assert.rejects(extractActivations({ ...base, workers: 200 }), /'workers' must be .* but got 200/);
    await assert.rejects(extractActivations({ ...base, threads: 1000 }), /'threads' must be .* but got 1000/);
    await assert.rejects(
      extractActivations({ ...base, memoryBudget: 1000 }),
      /'memoryBudget' must be at least 1 MiB \(1048576 bytes\) but got 1000/,
    );
    await assert.rejects(
      extractActivations({ ...base, device: 'tpu' as never }),
      /'device' must be 'cpu' or 'cuda'/,
    );
    await assert.rejects(
      extractActivations({ ...base, target: join(probe, 'nope.onnx') }),
      /target model '.*nope\.onnx' cannot be read \(ENOENT\)/,
    );
  });

  it('stops between batches when the signal aborts', async () => {
    const ac = new AbortController();
    await assert.rejects(
      extractActivations(
        {
          target: NOFOLD,
          layers: 'fc',
          probe,
          preprocess: PREPROCESS_JSON,
          batchSize: 2,
        },
        {
          signal: ac.signal,
          onProgress: (e) => {
            if (e.stage === 'activations' && e.done >= 4) ac.abort();
          },
        },
      ),
      { name: 'AbortError' },
    );
  });
});

describe('extractActivations: preprocessing', () => {
  const probe = probeFolder();

  it('the default (torchvision ImageNet, 224) does not fit a 64×64 model: the error names both sizes', async () => {
    await assert.rejects(extractActivations({ target: NOFOLD, layers: 'fc', probe }), (e: unknown) => {
      assert.ok(e instanceof ArgumentError);
      assert.match(
        e.message,
        /takes 64×64 images but the default preprocessing \(torchvision ImageNet.*\) crops to 224×224/,
      );
      return true;
    });
  });

  it('a crop that does not fit, from a file, names the file', async () => {
    const dir = tempDir('clip-dissect-pre-');
    const file = join(dir, 'pre.json');
    writeFileSync(file, JSON.stringify({ resize: 80, crop: 72 }));
    await assert.rejects(
      extractActivations({ target: NOFOLD, layers: 'fc', probe, preprocess: file }),
      (e: unknown) => {
        assert.ok(e instanceof ArgumentError);
        assert.ok(e.message.includes(`the preprocessing in ${file} crops to 72×72`), e.message);
        assert.match(e.message, /takes 64×64 images/);
        return true;
      },
    );
  });

  it("a model folder's preprocessor_config.json is used (Hugging Face semantics: crop offset rounded down)", async () => {
    const dir = tempDir('clip-dissect-hf-');
    copyFileSync(NOFOLD, join(dir, 'model.onnx'));
    writeFileSync(
      join(dir, 'preprocessor_config.json'),
      JSON.stringify({
        image_processor_type: 'CLIPImageProcessor',
        size: { shortest_edge: 72 },
        crop_size: { height: 64, width: 64 },
        resample: 2,
        image_mean: PREPROCESS.mean,
        image_std: PREPROCESS.std,
      }),
    );
    const hf = await extractActivations({ target: dir, layers: LAYERS, probe });
    assert.equal(hf.preprocess.source, join(dir, 'preprocessor_config.json'));
    // a Hugging Face file for the target is cropped as torchvision does (the official code's transforms)
    assert.equal(hf.preprocess.config.cropRounding, 'round');
    assert.equal(hf.model.path, join(dir, 'model.onnx'));
    const same = await extractActivations({
      target: NOFOLD,
      layers: LAYERS,
      probe,
      preprocess: { ...PREPROCESS, rescale: 1 / 255 },
    });
    for (const name of LAYERS) assert.deepEqual(layer(hf, name), layer(same, name), name);
    // an explicit preprocess wins over the folder's file
    const explicit = await extractActivations({
      target: dir,
      layers: LAYERS,
      probe,
      preprocess: PREPROCESS_JSON,
    });
    await assertGolden(explicit, 'avg', 'explicit over folder');
  });

  it('a folder without model.onnx is an error', async () => {
    const dir = tempDir('clip-dissect-hf-');
    await assert.rejects(
      extractActivations({ target: dir, layers: 'fc', probe }),
      /holds neither model\.onnx nor onnx\/model\.onnx/,
    );
  });
});

describe('preprocessing JSON files', () => {
  const write = (content: string) => {
    const dir = tempDir('clip-dissect-pre-');
    const p = join(dir, 'p.json');
    writeFileSync(p, content);
    return p;
  };

  it('reads our own config; interpolation, mean and std default to ImageNet', async () => {
    assert.deepEqual(await loadPreprocessConfig(PREPROCESS_JSON), PREPROCESS);
    assert.deepEqual(await loadPreprocessConfig(write('{"resize": [80, 90], "crop": 64}')), {
      resize: [80, 90],
      crop: 64,
      interpolation: 'bilinear',
      mean: [0.485, 0.456, 0.406],
      std: [0.229, 0.224, 0.225],
    });
    assert.deepEqual(
      (
        await loadPreprocessConfig(
          write('{"resize": 64, "crop": 64, "cropRounding": "floor", "rescale": 0.5}'),
        )
      ).cropRounding,
      'floor',
    );
  });

  it('reads a Hugging Face preprocessor_config.json', async () => {
    const cfg = await loadPreprocessConfig(
      write(JSON.stringify({ image_processor_type: 'CLIPImageProcessor', size: 224, crop_size: 224 })),
    );
    assert.equal(cfg.resize, 224);
    assert.equal(cfg.interpolation, 'bicubic');
  });

  it('errors start with the path and say what was expected', async () => {
    const bad = write('{"resize": 72,');
    await assert.rejects(loadPreprocessConfig(bad), (e: unknown) => {
      assert.ok(e instanceof ClipDissectError);
      assert.ok(e.message.startsWith(`${bad}: not valid JSON`), e.message);
      return true;
    });
    await assert.rejects(
      loadPreprocessConfig(write('{"resize": 72, "crop": 64, "mean": [0.5, 0.5, 0.5], "stdev": [1, 1, 1]}')),
      /unknown key 'stdev' in a preprocessing config; its keys are 'resize', 'crop'/,
    );
    await assert.rejects(loadPreprocessConfig(write('{"crop": 64}')), /'resize' is missing/);
    await assert.rejects(
      loadPreprocessConfig(write('{"resize": 72, "crop": 0}')),
      /p\.json: crop must be a positive integer/,
    );
    await assert.rejects(
      loadPreprocessConfig(write('{"resize": 72, "crop": 64, "interpolation": "lanczos"}')),
      /interpolation must be 'bilinear', 'bicubic' or 'nearest'/,
    );
    await assert.rejects(
      loadPreprocessConfig(write('{"hello": 1}')),
      /neither a preprocessing config.*nor a Hugging Face/,
    );
    await assert.rejects(loadPreprocessConfig(write('[1]')), /expected a JSON object/);
    await assert.rejects(loadPreprocessConfig(join(tempDir(), 'missing.json')), /cannot be read \(ENOENT\)/);
    assert.throws(
      () => parsePreprocessJson({ size: 1, resample: 1 }, 'x.json'),
      /^ClipDissectError: x\.json: 'resample'/,
    );
  });

  it('a bad PreprocessConfig object names the option', async () => {
    const probe = probeFolder();
    await assert.rejects(
      extractActivations({
        target: NOFOLD,
        layers: 'fc',
        probe,
        preprocess: { ...PREPROCESS, std: [1, 0, 1] },
      }),
      /^ArgumentError: 'preprocess'\.std must not contain 0/,
    );
  });
});
