import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { readFileSync, rmSync, writeFileSync } from 'node:fs';
import { writeFile } from 'node:fs/promises';
import { availableParallelism } from 'node:os';
import { join } from 'node:path';
import { before, describe, test } from 'node:test';
import { fileURLToPath, pathToFileURL } from 'node:url';
import { GraphBuilder } from '../../src/compute/_onnx.js';
import { readNpy } from '../../src/io/npy.js';
import { ArgumentError, ClipDissectError } from '../../src/numeric/errors.js';
import {
  checkDeviceOption,
  checkThreads,
  createSession,
  DEVICES,
  floatTensor,
  floatTensorValues,
  maxThreads,
  type RuntimeName,
  runtimeVersions,
  selectRuntime,
  sessionOptions,
  Tensor,
} from '../../src/runtime/index.js';
import { tempDir } from '../helpers/cli.js';
import { saveWithExternalData } from '../helpers/external-data.js';

const RUNTIMES: readonly RuntimeName[] = ['native', 'wasm'];
const MODELS = new URL('../../../test/fixtures/models/', import.meta.url);

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

for (const runtime of RUNTIMES)
  describe(`runtime gateway: sessions (${runtime})`, () => {
    before(() => selectRuntime(runtime));

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
        if (runtime === 'native') {
          assert.match(
            e.message,
            /^device 'cuda' was requested for 'relu' but onnxruntime cannot load its CUDA/,
          );
          assert.match(e.message, /ONNXRUNTIME_NODE_INSTALL=cuda12 node node_modules\/onnxruntime-node\//);
          assert.match(e.message, /or use device 'cpu'$/);
        } else {
          assert.match(
            e.message,
            /^device 'cuda' was requested for 'relu' but the runtime is wasm \(onnxruntime-web 1\.31\.1\), which has no CUDA execution provider; install the native runtime/,
          );
          assert.match(
            e.message,
            /`npm i onnxruntime-node@1\.31\.1` \(on Linux x64 it downloads the CUDA 12 provider/,
          );
        }
        return true;
      });
    });

    test('external data files are handed over in memory under their location', async () => {
      const dir = tempDir('clip-dissect-runtime-');
      const { model, data } = saveWithExternalData(
        fileURLToPath(new URL('resnet_small_ts.onnx', MODELS)),
        dir,
        'm.onnx',
        'weights.bin',
      );
      const x = await readNpy(fileURLToPath(new URL('resnet_small_input.npy', MODELS)));
      const want = await readNpy(fileURLToPath(new URL('resnet_small_logits.npy', MODELS)));
      const s = await createSession(readFileSync(model), { device: 'cpu', threads: 2 }, 'm.onnx', [
        { path: 'weights.bin', data: readFileSync(data) },
      ]);
      try {
        const res = await s.run({ [s.inputNames[0]]: new Tensor('float32', x.data, x.shape) });
        const got = res[s.outputNames[0]].data as Float32Array;
        assert.equal(got.length, want.data.length);
        for (let i = 0; i < got.length; i++)
          assert.ok(Math.abs(got[i] - (want.data[i] as number)) < 1e-4, `logit ${i}`);
      } finally {
        await s.release();
      }
    });

    test('a model file keeps its external data beside it: opened by its path, refused without it', async () => {
      const dir = tempDir('clip-dissect-runtime-');
      const { model, data } = saveWithExternalData(
        fileURLToPath(new URL('resnet_small_ts.onnx', MODELS)),
        dir,
        'm.onnx',
        'sub/m.bin',
      );
      const s = await createSession(model, { device: 'cpu', threads: 2 }, `model '${model}'`);
      try {
        assert.deepEqual(s.inputNames, ['input']);
      } finally {
        await s.release();
      }
      rmSync(data);
      await assert.rejects(createSession(model, { device: 'cpu' }, `model '${model}'`), (e: unknown) => {
        assert.ok(e instanceof ClipDissectError);
        if (runtime === 'wasm') {
          assert.equal(e.code, 'ERR_MODEL_EXTERNAL_DATA');
          assert.equal(
            e.message,
            `model '${model}' keeps its weights in 'sub/m.bin', but '${data}' cannot be read (ENOENT); copy it next to the model`,
          );
        } else {
          assert.equal(e.code, 'ERR_MODEL_SESSION');
          assert.match(e.message, /External data path does not exist/);
        }
        return true;
      });
    });

    test('versions record the runtime in use', () => {
      const v = runtimeVersions();
      assert.equal(v.runtime, runtime);
      assert.equal(
        v.onnxruntime,
        packageVersion(runtime === 'native' ? 'onnxruntime-node' : 'onnxruntime-web'),
      );
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
  test('the installed onnxruntime-node and sharp', async () => {
    await selectRuntime('native');
    const v = runtimeVersions();
    assert.equal(v.onnxruntime, packageVersion('onnxruntime-node'));
    assert.equal(v.sharp, packageVersion('sharp'));
    assert.match(v.libvips, /^\d+\.\d+\.\d+/);
  });
});

describe('runtime gateway: choosing the runtime', () => {
  const gateway = new URL('../../src/runtime/index.js', import.meta.url).href;
  /** Runs `code` (an ES module with `gw`, the gateway) in a child Node; `hideNative` makes onnxruntime-node
   * unresolvable, as in a project that did not install it. */
  function child(code: string, hideNative: boolean): { status: number | null; stdout: string } {
    const dir = tempDir('clip-dissect-runtime-');
    const hooks = join(dir, 'hooks.mjs');
    writeFileSync(
      hooks,
      `export async function resolve(spec, ctx, next) {
  if (spec === 'onnxruntime-node') {
    const e = new Error("Cannot find package 'onnxruntime-node' imported from " + ctx.parentURL);
    e.code = 'ERR_MODULE_NOT_FOUND';
    throw e;
  }
  return next(spec, ctx);
}\n`,
    );
    const register = join(dir, 'register.mjs');
    writeFileSync(
      register,
      `import { register } from 'node:module';\nregister(${JSON.stringify(pathToFileURL(hooks).href)});\n`,
    );
    const main = join(dir, 'main.mjs');
    writeFileSync(main, `const gw = await import(${JSON.stringify(gateway)});\n${code}\n`);
    const r = spawnSync(
      process.execPath,
      [...(hideNative ? ['--import', pathToFileURL(register).href] : []), main],
      {
        encoding: 'utf8',
      },
    );
    return { status: r.status, stdout: r.stdout + r.stderr };
  }

  test("'auto' takes onnxruntime-node when it is installed, the WebAssembly runtime when it is not", () => {
    const code =
      'const r = await gw.selectRuntime(); console.log(JSON.stringify(r)); console.log(gw.runtimeLine(r));';
    for (const hideNative of [false, true]) {
      const r = child(code, hideNative);
      assert.equal(r.status, 0, r.stdout);
      const [json, line] = r.stdout.trim().split('\n');
      const [name, pkg] = hideNative ? ['wasm', 'onnxruntime-web'] : ['native', 'onnxruntime-node'];
      const reason = `onnxruntime-node is ${hideNative ? 'not ' : ''}installed`;
      assert.deepEqual(JSON.parse(json), { name, version: packageVersion(pkg), reason });
      if (!hideNative) assert.equal(line, `runtime: native (${pkg} ${packageVersion(pkg)}; ${reason})`);
      else
        assert.match(
          line,
          /^runtime: wasm \(onnxruntime-web 1\.31\.1, WebAssembly; onnxruntime-node is not installed\); for the faster native runtime, install the native runtime next to clip-dissect: `ONNXRUNTIME_NODE_INSTALL=skip npm i onnxruntime-node@1\.31\.1` for the CPU/,
        );
    }
  });

  test("'native' without onnxruntime-node is ERR_RUNTIME_UNAVAILABLE saying how to install it", () => {
    const r = child(
      "try { await gw.selectRuntime('native'); } catch (e) { console.log(e.code); console.log(e.message); }",
      true,
    );
    assert.equal(r.status, 0, r.stdout);
    const [code, message] = r.stdout.trim().split('\n');
    assert.equal(code, 'ERR_RUNTIME_UNAVAILABLE');
    assert.match(
      message,
      /^runtime 'native' was requested but onnxruntime-node cannot be imported \(onnxruntime-node is not installed\); install the native runtime .*, or use runtime 'wasm'$/,
    );
  });

  test('a bad runtime name is an ArgumentError naming the choices', async () => {
    await assert.rejects(
      selectRuntime('gpu' as RuntimeName),
      (e: unknown) =>
        e instanceof ArgumentError &&
        e.message === "'runtime' must be 'auto', 'native' or 'wasm' but got 'gpu'",
    );
  });
});
