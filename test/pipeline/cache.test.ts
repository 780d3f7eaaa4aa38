import assert from 'node:assert/strict';
import { copyFileSync, existsSync, readFileSync, utimesSync, writeFileSync } from 'node:fs';
import { rm } from 'node:fs/promises';
import { join } from 'node:path';
import { describe, it } from 'node:test';
import { create, fromBinary, toBinary } from '@bufbuild/protobuf';
import * as onnx from 'onnx-buf';
import { sha256Hex } from '../../src/io/sha256.js';
import { ClipDissectError } from '../../src/numeric/errors.js';
import type { Matrix } from '../../src/numeric/matrix.js';
import {
  cacheKey,
  canonicalJson,
  FeatureCache,
  fileSha256,
  fileSha256s,
  modelSha256s,
} from '../../src/pipeline/cache.js';
import { tempDir } from '../helpers/cli.js';
import { makeFifo } from '../helpers/data.js';
import { rewriteWeights, saveWithExternalData } from '../helpers/external-data.js';
import { FOLDED } from './helpers.js';

const matrix = (rows: number, cols: number, seed = 1): Matrix => ({
  rows,
  cols,
  data: Float32Array.from({ length: rows * cols }, (_, i) => Math.sin(i * seed)),
});

describe('canonicalJson and cacheKey', () => {
  it('sorts object keys at every level and drops undefined members', () => {
    assert.equal(
      canonicalJson({ b: 1, a: { d: [1, 'x'], c: null }, e: undefined }),
      '{"a":{"c":null,"d":[1,"x"]},"b":1}',
    );
    assert.equal(cacheKey({ x: 1, y: 2 }), cacheKey({ y: 2, x: 1 }));
    assert.notEqual(cacheKey({ x: 1, y: 2 }), cacheKey({ x: 1, y: 3 }));
    assert.match(cacheKey({}), /^[0-9a-f]{64}$/);
    assert.equal(cacheKey({ a: 'b' }), sha256Hex('{"a":"b"}'));
  });
  it('rejects non-finite numbers', () => {
    assert.throws(() => cacheKey({ x: Number.NaN }), /finite/);
  });
});

describe('fileSha256', () => {
  it('hashes the bytes and sees a changed file (size or mtime)', async () => {
    const dir = tempDir();
    const p = join(dir, 'm.onnx');
    writeFileSync(p, 'abc');
    assert.equal(await fileSha256(p), sha256Hex('abc'));
    assert.equal(await fileSha256(p), sha256Hex('abc'), 'memoised');
    writeFileSync(p, 'abd');
    utimesSync(p, new Date(), new Date(Date.now() + 5000));
    assert.equal(await fileSha256(p), sha256Hex('abd'));
  });
});

describe('fileSha256s (on a worker thread)', () => {
  it('hashes several files in order, sees changes, and names a missing file', async () => {
    const dir = tempDir();
    const a = join(dir, 'a.bin');
    const b = join(dir, 'b.bin');
    writeFileSync(a, 'first');
    writeFileSync(b, Buffer.alloc(3 << 20, 7)); // several read chunks
    const want = [sha256Hex('first'), sha256Hex(Buffer.alloc(3 << 20, 7))];
    assert.deepEqual(await fileSha256s([a, b]), want);
    assert.equal(await fileSha256(b), want[1], 'the same as fileSha256');
    writeFileSync(a, 'second');
    utimesSync(a, new Date(), new Date(Date.now() + 5000));
    assert.deepEqual(await fileSha256s([a, b]), [sha256Hex('second'), want[1]]);
    await assert.rejects(fileSha256s([a, join(dir, 'nope.onnx')]), /ENOENT.*nope\.onnx|nope\.onnx.*ENOENT/);
  });
});

describe('modelSha256s (a model and its external data files)', () => {
  it('is the file hash for a self-contained model', async () => {
    assert.deepEqual(await modelSha256s([FOLDED]), [await fileSha256(FOLDED)]);
  });

  for (const location of ['model.onnx_data', 'weights.bin', './x.bin', 'sub/w.bin', 'model.onnx.data']) {
    it(`covers external data in '${location}': other weights bytes, another hash; the same bytes, the same`, async () => {
      const dir = tempDir();
      const { model, data } = saveWithExternalData(FOLDED, dir, 'model.onnx', location);
      const before = (await modelSha256s([model]))[0];
      const modelOnly = await fileSha256(model);
      assert.equal(before, sha256Hex(`${modelOnly}:${await fileSha256(data)}`));
      const original = readFileSync(data);
      rewriteWeights(data); // in place: same size, same name, the model file untouched
      const after = (await modelSha256s([model]))[0];
      assert.notEqual(after, before, 'changed weights change the hash');
      assert.equal(await fileSha256(model), modelOnly);
      writeFileSync(data, original);
      assert.equal((await modelSha256s([model]))[0], before, 'content, not modification times');
    });
  }

  it('hashes content, not names: the same model and weights in another folder hash the same', async () => {
    const a = saveWithExternalData(FOLDED, tempDir(), 'model.onnx', 'w.bin');
    const dir = tempDir();
    copyFileSync(a.model, join(dir, 'renamed.onnx'));
    copyFileSync(a.data, join(dir, 'w.bin'));
    assert.deepEqual(await modelSha256s([a.model]), await modelSha256s([join(dir, 'renamed.onnx')]));
  });

  it('sees external data of subgraph initializers (an If branch)', async () => {
    const dir = tempDir();
    const entry = (key: string, value: string) => create(onnx.StringStringEntryProtoSchema, { key, value });
    const weight = create(onnx.TensorProtoSchema, {
      name: 'w',
      dataType: onnx.TensorProto_DataType.FLOAT,
      dims: [4n],
      dataLocation: onnx.TensorProto_DataLocation.EXTERNAL,
      externalData: [entry('location', './branch.bin'), entry('offset', '0'), entry('length', '16')],
    });
    const branch = create(onnx.GraphProtoSchema, {
      name: 'then',
      initializer: [weight],
      node: [create(onnx.NodeProtoSchema, { opType: 'Identity', input: ['w'], output: ['y_then'] })],
      output: [create(onnx.ValueInfoProtoSchema, { name: 'y_then' })],
    });
    const ifNode = create(onnx.NodeProtoSchema, {
      opType: 'If',
      input: ['cond'],
      output: ['y'],
      attribute: [
        create(onnx.AttributeProtoSchema, {
          name: 'then_branch',
          type: onnx.AttributeProto_AttributeType.GRAPH,
          g: branch,
        }),
      ],
    });
    const model = create(onnx.ModelProtoSchema, {
      irVersion: 8n,
      opsetImport: [{ domain: '', version: 17n }],
      graph: { name: 'g', node: [ifNode], output: [create(onnx.ValueInfoProtoSchema, { name: 'y' })] },
    });
    const path = join(dir, 'if.onnx');
    writeFileSync(path, toBinary(onnx.ModelProtoSchema, model));
    writeFileSync(join(dir, 'branch.bin'), new Uint8Array(new Float32Array([1, 2, 3, 4]).buffer));
    const before = (await modelSha256s([path]))[0];
    assert.notEqual(before, await fileSha256(path));
    writeFileSync(join(dir, 'branch.bin'), new Uint8Array(new Float32Array([1, 2, 3, 5]).buffer));
    assert.notEqual((await modelSha256s([path]))[0], before);
  });

  it("finds external data whose 'location' entry straddles two 4 MiB read pieces of a big model file", async () => {
    const dir = tempDir();
    const entry = (key: string, value: string) => create(onnx.StringStringEntryProtoSchema, { key, value });
    const write = (inlineBytes: number) => {
      const model = create(onnx.ModelProtoSchema, {
        irVersion: 8n,
        opsetImport: [{ domain: '', version: 17n }],
        graph: {
          name: 'g',
          node: [create(onnx.NodeProtoSchema, { opType: 'Add', input: ['a', 'b'], output: ['y'] })],
          initializer: [
            create(onnx.TensorProtoSchema, {
              name: 'a',
              dataType: onnx.TensorProto_DataType.UINT8,
              dims: [BigInt(inlineBytes)],
              rawData: new Uint8Array(inlineBytes),
            }),
            create(onnx.TensorProtoSchema, {
              name: 'b',
              dataType: onnx.TensorProto_DataType.UINT8,
              dims: [4n],
              dataLocation: onnx.TensorProto_DataLocation.EXTERNAL,
              externalData: [entry('location', 'b.bin'), entry('offset', '0'), entry('length', '4')],
            }),
          ],
          output: [create(onnx.ValueInfoProtoSchema, { name: 'y' })],
        },
      });
      return Buffer.from(toBinary(onnx.ModelProtoSchema, model));
    };
    const piece = 4 << 20;
    let size = piece;
    let bytes = write(size);
    for (let i = 0; i < 3; i++) {
      size += piece - 3 - bytes.indexOf('location'); // 'loc' | 'ation' across the boundary
      bytes = write(size);
    }
    assert.equal(bytes.indexOf('location'), piece - 3);
    const path = join(dir, 'big.onnx');
    writeFileSync(path, bytes);
    writeFileSync(join(dir, 'b.bin'), Buffer.from([1, 2, 3, 4]));
    const before = (await modelSha256s([path]))[0];
    assert.equal(before, sha256Hex(`${await fileSha256(path)}:${sha256Hex(Buffer.from([1, 2, 3, 4]))}`));
  });

  it('refuses absolute locations and locations outside the model folder, and names a missing file', async () => {
    const cases: [string, RegExp][] = [
      ['../outside.bin', /location '\.\.\/outside\.bin'.*relative to the model's folder/],
      ['sub/../../outside.bin', /location 'sub\/\.\.\/\.\.\/outside\.bin'/],
      ['/tmp/abs.bin', /location '\/tmp\/abs\.bin'/],
    ];
    for (const [location, message] of cases) {
      const dir = join(tempDir(), 'm');
      const { model } = saveWithExternalData(FOLDED, dir, 'model.onnx', 'w.bin');
      // the same model with its tensors pointing at the bad location
      const m = fromBinary(onnx.ModelProtoSchema, readFileSync(model));
      for (const t of m.graph?.initializer ?? [])
        for (const kv of t.externalData) if (kv.key === 'location') kv.value = location;
      writeFileSync(model, toBinary(onnx.ModelProtoSchema, m));
      await assert.rejects(modelSha256s([model]), (e: unknown) => {
        assert.ok(e instanceof ClipDissectError, String(e));
        assert.equal(e.code, 'ERR_MODEL_EXTERNAL_DATA');
        assert.match(e.message, message);
        assert.match(e.message, /model\.onnx/);
        return true;
      });
    }
    const missing = (e: unknown) => {
      assert.ok(e instanceof ClipDissectError, String(e));
      assert.equal(e.code, 'ERR_MODEL_EXTERNAL_DATA');
      assert.match(e.message, /keeps its weights in 'weights\.bin'.*does not exist/);
      return true;
    };
    const a = saveWithExternalData(FOLDED, tempDir(), 'model.onnx', 'weights.bin');
    await rm(a.data);
    await assert.rejects(modelSha256s([a.model]), missing);
    // hashed (memoised) before the file went away
    const b = saveWithExternalData(FOLDED, tempDir(), 'model.onnx', 'weights.bin');
    await modelSha256s([b.model]);
    await rm(b.data);
    await assert.rejects(modelSha256s([b.model]), missing);
  });
});

describe('FeatureCache', () => {
  it('computes once, then reads the verified entry back', async () => {
    const cache = new FeatureCache(tempDir(), { fsync: false });
    const key = cacheKey({ what: 'test', n: 1 });
    let calls = 0;
    const compute = async () => {
      calls++;
      return matrix(5, 3);
    };
    const a = await cache.getOrCompute(key, 'image', compute, { what: 'test', n: 1 });
    const b = await cache.getOrCompute(key, 'image', compute);
    assert.equal(calls, 1);
    assert.deepEqual([b.rows, b.cols], [5, 3]);
    assert.deepEqual(Array.from(b.data), Array.from(a.data));
    assert.deepEqual(cache.stats, { hits: 1, misses: 1, corrupted: 0, writes: 1 });
    const side = JSON.parse(readFileSync(cache.path(key, 'image').replace(/\.npy$/, '.json'), 'utf8'));
    assert.deepEqual(side.shape, [5, 3]);
    assert.deepEqual(side.parts, { what: 'test', n: 1 });
    assert.equal(side.sha256, sha256Hex(readFileSync(cache.path(key, 'image'))));
    assert.ok(cache.path(key, 'image').startsWith(join(cache.dir, 'image', key.slice(0, 2))));
  });

  const corruptions: [string, (npy: string, json: string) => void][] = [
    [
      'a flipped byte in the data',
      (npy) => {
        const b = readFileSync(npy);
        b[b.length - 1] ^= 1;
        writeFileSync(npy, b);
      },
    ],
    ['a truncated .npy', (npy) => writeFileSync(npy, readFileSync(npy).subarray(0, 40))],
    ['a missing .npy', (npy) => writeFileSync(npy, '')],
    ['a sidecar that is not JSON', (_npy, json) => writeFileSync(json, '{')],
    // never opened: a read would wait for a writer
    ['a FIFO in place of the .npy', (npy) => makeFifo(npy, true)],
    ['a FIFO in place of the sidecar', (_npy, json) => makeFifo(json, true)],
    [
      'a sidecar with another shape',
      (_npy, json) => {
        const s = JSON.parse(readFileSync(json, 'utf8'));
        s.shape = [3, 5];
        writeFileSync(json, JSON.stringify(s));
      },
    ],
    [
      'a sidecar of another key',
      (_npy, json) => {
        const s = JSON.parse(readFileSync(json, 'utf8'));
        s.key = '0'.repeat(64);
        writeFileSync(json, JSON.stringify(s));
      },
    ],
  ];
  for (const [what, corrupt] of corruptions) {
    it(`recomputes an entry with ${what} (never returns it)`, { timeout: 10_000 }, async () => {
      const warnings: string[] = [];
      const cache = new FeatureCache(tempDir(), { fsync: false, onWarning: (w) => warnings.push(w) });
      const key = cacheKey({ what });
      await cache.put(key, 'activations', matrix(5, 3));
      const npy = cache.path(key, 'activations');
      corrupt(npy, npy.replace(/\.npy$/, '.json'));
      assert.equal(await cache.get(key, 'activations'), undefined);
      assert.equal(cache.stats.corrupted, 1);
      assert.match(warnings[0], /corrupted/);
      assert.ok(!existsSync(npy), 'the corrupted entry is deleted');
      let calls = 0;
      const m = await cache.getOrCompute(key, 'activations', async () => {
        calls++;
        return matrix(5, 3, 2);
      });
      assert.equal(calls, 1);
      assert.deepEqual(Array.from(m.data), Array.from(matrix(5, 3, 2).data));
      assert.deepEqual(Array.from((await cache.get(key, 'activations'))?.data ?? []), Array.from(m.data));
    });
  }

  it('an .npy without its sidecar (a run killed between the two writes) is a miss', async () => {
    const cache = new FeatureCache(tempDir(), { fsync: false });
    const key = cacheKey({ x: 1 });
    await cache.put(key, 'text', matrix(2, 2));
    await rm(cache.path(key, 'text').replace(/\.npy$/, '.json'));
    assert.equal(await cache.get(key, 'text'), undefined);
    assert.equal(cache.stats.corrupted, 0);
    assert.equal(cache.stats.misses, 1);
  });

  it('disabled: never reads or writes', async () => {
    const cache = new FeatureCache(tempDir(), { enabled: false });
    const key = cacheKey({ x: 1 });
    let calls = 0;
    for (let i = 0; i < 2; i++)
      await cache.getOrCompute(key, 'text', async () => {
        calls++;
        return matrix(1, 1);
      });
    assert.equal(calls, 2);
    assert.ok(!existsSync(cache.dir));
  });

  it('rejects bad keys and kinds', () => {
    const cache = new FeatureCache(tempDir());
    assert.throws(() => cache.path('abc', 'text'), /64 hex/);
    assert.throws(() => cache.path(cacheKey({}), '../x'), /kind/);
  });
});
