import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { writeFile } from 'node:fs/promises';
import { availableParallelism } from 'node:os';
import { join } from 'node:path';
import { describe, test } from 'node:test';
import { GraphBuilder } from '../../src/compute/_onnx.js';
import { ArgumentError, ClipDissectError } from '../../src/numeric/errors.js';
import {
  checkDeviceOption,
  checkThreads,
  createSession,
  DEVICES,
  floatTensor,
  floatTensorValues,
  maxThreads,
  runtimeVersions,
  sessionOptions,
  Tensor,
} from '../../src/runtime/node.js';
import { tempDir } from '../helpers/cli.js';

function packageVersion(name: string): string {
  const url = new URL(`../../../node_modules/${name}/package.json`, import.meta.url);
  return (JSON.parse(readFileSync(url, 'utf8')) as { version: string }).version;
}

/** y = relu(x) over a vector of 3. */
function reluModel(): Uint8Array {
  const g = new GraphBuilder();
  g.input('x', [3]);
  g.op('Relu', ['x'], 'y');
  g.output('y', [3]);
  return g.toBytes();
}

describe('runtime gateway: session options', () => {
  test('all cores, full graph optimisation, CPU only unless cuda is asked for', () => {
    assert.deepEqual(sessionOptions({ device: 'cpu' }), {
      graphOptimizationLevel: 'all',
      executionMode: 'sequential',
      logSeverityLevel: 4,
      executionProviders: ['cpu'],
      intraOpNumThreads: availableParallelism(),
    });
    const cuda = sessionOptions({ device: 'cuda', threads: 2, optimization: 'basic' });
    assert.deepEqual(cuda.executionProviders, ['cuda', 'cpu']);
    assert.equal(cuda.intraOpNumThreads, 2);
    assert.equal(cuda.graphOptimizationLevel, 'basic');
  });

  test('device and threads options are checked with the choices named', () => {
    assert.deepEqual(DEVICES, ['cpu', 'cuda']);
    for (const d of [undefined, 'cpu', 'cuda']) checkDeviceOption(d);
    assert.throws(
      () => checkDeviceOption('gpu'),
      (e: unknown) =>
        e instanceof ArgumentError && e.message === "'device' must be 'cpu' or 'cuda' but got 'gpu'",
    );
    checkThreads(undefined);
    checkThreads(1);
    checkThreads(maxThreads());
    for (const bad of [0, 1.5, maxThreads() + 1])
      assert.throws(() => checkThreads(bad), /'threads' must be an integer from 1 to \d+ .* but got/);
  });
});

describe('runtime gateway: sessions', () => {
  test('a session opens on serialised bytes and on a file, and runs', async () => {
    const bytes = reluModel();
    const file = join(tempDir('clip-dissect-runtime-'), 'relu.onnx');
    await writeFile(file, bytes);
    for (const model of [bytes, file]) {
      const s = await createSession(model, { device: 'cpu', threads: 1 }, 'relu');
      try {
        const res = await s.run({ x: new Tensor('float32', Float32Array.of(-1, 0, 2), [3]) });
        assert.deepEqual([...(res['y'].data as Float32Array)], [0, 0, 2]);
      } finally {
        await s.release();
      }
    }
  });

  test('a model onnxruntime cannot open is ERR_MODEL_SESSION naming it', async () => {
    const junk = join(tempDir('clip-dissect-runtime-'), 'junk.onnx');
    await writeFile(junk, 'not a model');
    for (const model of [new TextEncoder().encode('not a model'), junk]) {
      await assert.rejects(createSession(model, { device: 'cpu' }, "target model 'junk.onnx'"), (e) => {
        assert.ok(e instanceof ClipDissectError);
        assert.equal(e.code, 'ERR_MODEL_SESSION');
        assert.match(e.message, /^onnxruntime cannot load target model 'junk\.onnx': \S/);
        return true;
      });
    }
  });

  test("device 'cuda' without onnxruntime's CUDA build is ERR_CUDA_UNAVAILABLE with the install hint", async () => {
    await assert.rejects(createSession(reluModel(), { device: 'cuda' }, "'relu'"), (e) => {
      assert.ok(e instanceof ClipDissectError);
      assert.equal(e.code, 'ERR_CUDA_UNAVAILABLE');
      assert.match(e.message, /^device 'cuda' was requested for 'relu' but onnxruntime cannot load its CUDA/);
      assert.match(e.message, /ONNXRUNTIME_NODE_INSTALL=cuda12 node node_modules\/onnxruntime-node\//);
      assert.match(e.message, /or use device 'cpu'$/);
      return true;
    });
  });
});

describe('runtime gateway: float tensors', () => {
  test('float16 inputs are rounded halves; outputs come back as float32 copies; other types are null', () => {
    const x = Float32Array.of(1, 0.5, -2, 0.1);
    const h = floatTensor('float16', x, [2, 2]);
    assert.equal(h.type, 'float16');
    assert.deepEqual(h.dims, [2, 2]);
    assert.deepEqual([...(h.data as Uint16Array)], [0x3c00, 0x3800, 0xc000, 0x2e66]);
    assert.deepEqual([...floatTensorValues(h)!], [1, 0.5, -2, 0.0999755859375]);
    const f = floatTensor('float32', x, [4]);
    assert.equal(f.data, x, 'float32 data is not copied in');
    const back = floatTensorValues(f)!;
    assert.deepEqual(back, x);
    assert.notEqual(back.buffer, x.buffer, 'outputs are copied out');
    assert.equal(floatTensorValues(new Tensor('int64', new BigInt64Array(2), [2])), null);
  });
});

describe('runtime gateway: versions', () => {
  test('the installed onnxruntime-node and sharp', () => {
    const v = runtimeVersions();
    assert.equal(v.onnxruntime, packageVersion('onnxruntime-node'));
    assert.equal(v.sharp, packageVersion('sharp'));
    assert.match(v.libvips, /^\d+\.\d+\.\d+/);
  });
});
