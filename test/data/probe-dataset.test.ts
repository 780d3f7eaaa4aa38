import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import {
  mkdirSync,
  readdirSync,
  readFileSync,
  rmSync,
  statSync,
  symlinkSync,
  utimesSync,
  writeFileSync,
} from 'node:fs';
import { createServer } from 'node:http';
import type { AddressInfo } from 'node:net';
import { join, relative } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { gzipSync } from 'node:zlib';
import sharp from 'sharp';
import {
  CIFAR10_CLASSES,
  CIFAR100_CLASSES,
  compareCodePoints,
  isProbeImageFile,
  type OpenProbeDatasetOptions,
  openProbeDataset,
  type ProbeDataset,
  ProbeDatasetError,
  readTar,
} from '../../src/data/probe-dataset.js';
import { verifyCache } from '../../src/pipeline/cache-admin.js';
import type { ProgressEvent } from '../../src/progress.js';
import { tempDir } from '../helpers/cli.js';
import { makeFifo } from '../helpers/data.js';

const png = (r: number, g: number, b: number, width = 2, height = 3) =>
  sharp({ create: { width, height, channels: 3, background: { r, g, b } } })
    .png()
    .toBuffer();

function put(root: string, rel: string, data: Uint8Array | string): string {
  const p = join(root, rel);
  mkdirSync(join(p, '..'), { recursive: true });
  writeFileSync(p, data);
  return p;
}

const rel = (ds: ProbeDataset, root: string) => ds.images.map((im) => relative(root, im.source));

/** A CIFAR record: label bytes, then the R, G and B planes; pixel (y, x) of plane c is `f(c, y, x)`. */
function cifarRecord(labels: number[], f: (c: number, y: number, x: number) => number): Uint8Array {
  const rec = new Uint8Array(labels.length + 3072);
  rec.set(labels, 0);
  for (let c = 0; c < 3; c++)
    for (let y = 0; y < 32; y++)
      for (let x = 0; x < 32; x++) rec[labels.length + c * 1024 + y * 32 + x] = f(c, y, x);
  return rec;
}

const cat = (parts: Uint8Array[]) => Buffer.concat(parts);

describe('compareCodePoints', () => {
  it('sorts like Python str (code points), not UTF-16 units or locale', () => {
    const names = ['a2', 'a10', 'B', '_x', 'a', '\u{1F600}', '\uFF01', 'ä', 'A', 'a b', 'a/b', 'a-b'];
    assert.deepEqual([...names].sort(compareCodePoints), [
      'A',
      'B',
      '_x',
      'a',
      'a b',
      'a-b',
      'a/b',
      'a10',
      'a2',
      'ä',
      '\uFF01',
      '\u{1F600}',
    ]);
    // plain JS sort would put the emoji (surrogate pair, 0xD83D...) before U+FF01
    assert.ok('\u{1F600}' < '\uFF01');
    assert.ok(compareCodePoints('\u{1F600}', '\uFF01') > 0);
  });
  it('recognises torchvision IMG_EXTENSIONS in any case', () => {
    for (const n of [
      'a.jpg',
      'b.JPEG',
      'c.Png',
      'd.ppm',
      'e.bmp',
      'f.pgm',
      'g.tif',
      'h.TIFF',
      'i.webp',
      '.jpg',
    ])
      assert.ok(isProbeImageFile(n), n);
    for (const n of ['a.gif', 'b.txt', 'jpg', 'c.png.bak', 'd.jpe']) assert.ok(!isProbeImageFile(n), n);
  });
});

describe('image folders', () => {
  let base = '';
  let root = '';
  before(async () => {
    base = tempDir('clip-dissect-probe-');
    root = join(base, 'root');
    const img = await png(10, 20, 30);
    // the tree of the torchvision check below; every "image" is a valid PNG whatever its extension
    const files = [
      'B/z.png',
      'B/a.PNG',
      'B/.jpg',
      'a/x.jpg',
      'a/X.png',
      'a/.hidden.png',
      'a/img.JpEg',
      'a/notes.txt',
      'a/image.gif',
      'a/a10.png',
      'a/a2.png',
      'a/noext',
      'a/sub/y.png',
      'a/sub b/w.png',
      'a/sub/deep/v.png',
      'a/sub-c/u.png',
      'a/sub0/t.png',
      'a/sub.d/s.tif',
      'a/sub/docs/readme.md',
      'a10/1.png',
      'a2/1.png',
      '_x/q.webp',
      'ä/1.bmp',
      '\uFF01/1.png',
      '\u{1F600}/1.png',
      '\u{1F600}/\uFF01.png',
      '\u{1F600}/\u{1F601}.png',
      'a/deep/ends.Tiff',
      'README.png',
      'top.txt',
    ];
    for (const f of files) put(root, f, img);
    put(base, 'outside/o2.jpg', img);
    put(base, 'outside/o1.png', img);
    symlinkSync('../outside', join(root, 'linked')); // a class folder that is a link
    symlinkSync('sub/deep', join(root, 'a/lnk')); // a link to a folder inside the class: followed
    symlinkSync('nonexistent.png', join(root, 'a/broken.png')); // listed by torchvision too
    symlinkSync('x.jpg', join(root, 'a/link.png'));
  });
  after(() => rmSync(base, { recursive: true, force: true }));

  it('lists a tricky class-folder tree exactly as torchvision ImageFolder does', async () => {
    const ds = await openProbeDataset(root);
    // Verified during development against torchvision 0.28.0's own find_classes / make_dataset
    // (torchvision/datasets/folder.py executed on this same tree, symlinks included). Note the walk order
    // within class 'a': directories sort by whole path, so 'a/sub' < 'a/sub b' < 'a/sub-c' < 'a/sub.d'
    // < 'a/sub/deep' < 'a/sub0'; and code-point order puts '！' (U+FF01) before '😀' (U+1F600).
    assert.deepEqual(ds.classes, ['B', '_x', 'a', 'a10', 'a2', 'linked', 'ä', '\uFF01', '\u{1F600}']);
    const expected: [number, string][] = [
      [0, 'B/.jpg'],
      [0, 'B/a.PNG'],
      [0, 'B/z.png'],
      [1, '_x/q.webp'],
      [2, 'a/.hidden.png'],
      [2, 'a/X.png'],
      [2, 'a/a10.png'],
      [2, 'a/a2.png'],
      [2, 'a/broken.png'],
      [2, 'a/img.JpEg'],
      [2, 'a/link.png'],
      [2, 'a/x.jpg'],
      [2, 'a/deep/ends.Tiff'],
      [2, 'a/lnk/v.png'],
      [2, 'a/sub/y.png'],
      [2, 'a/sub b/w.png'],
      [2, 'a/sub-c/u.png'],
      [2, 'a/sub.d/s.tif'],
      [2, 'a/sub/deep/v.png'],
      [2, 'a/sub0/t.png'],
      [3, 'a10/1.png'],
      [4, 'a2/1.png'],
      [5, 'linked/o1.png'],
      [5, 'linked/o2.jpg'],
      [6, 'ä/1.bmp'],
      [7, '\uFF01/1.png'],
      [8, '\u{1F600}/1.png'],
      [8, '\u{1F600}/\uFF01.png'],
      [8, '\u{1F600}/\u{1F601}.png'],
    ];
    assert.deepEqual(
      ds.images.map((im) => [im.label, relative(root, im.source)]),
      expected,
    );
    assert.deepEqual(
      ds.images.map((im) => im.index),
      expected.map((_, i) => i),
    );
    assert.equal(ds.images[22].className, 'linked');
    assert.equal(ds.sources[0].kind, 'image-folder');
    assert.equal(ds.sources[0].count, expected.length);
    assert.equal(ds.warnings.length, 1);
    assert.match(ds.warnings[0], /README\.png\) are ignored/);
  });

  it('hooks: progress and each warning as it arises; an aborted signal stops the opening', async () => {
    const warned: string[] = [];
    const events: ProgressEvent[] = [];
    const ds = await openProbeDataset(
      root,
      {},
      { onWarning: (w) => warned.push(w), onProgress: (e) => events.push(e) },
    );
    assert.deepEqual(warned, ds.warnings);
    assert.deepEqual(events.at(-1), {
      stage: 'scan probe images',
      done: ds.images.length,
      total: ds.images.length,
      unit: 'files',
    });
    await assert.rejects(
      openProbeDataset(root, {}, { signal: AbortSignal.abort(new Error('stop now')) }),
      /stop now/,
    );
  });

  it('decodes files; a broken one throws the decoder error naming the file, other indices unaffected', async () => {
    const ds = await openProbeDataset(root);
    const im = await ds.load(0);
    assert.equal(im.width, 2);
    assert.equal(im.height, 3);
    assert.deepEqual(Array.from(im.data.subarray(0, 3)), [10, 20, 30]);
    await assert.rejects(ds.load(8), (e: Error & { code?: string }) => {
      assert.equal(e.code, 'ERR_IMAGE_READ');
      assert.match(e.message, /a\/broken\.png: cannot read image file/);
      return true;
    });
    assert.equal((await ds.load(9)).width, 2);
    await assert.rejects(ds.load(ds.images.length), /image index must be an integer from 0 to 28 but got 29/);
    // the broken link is in the manifest with its error, not its size
    assert.match(ds.manifest(), /broken\.png","ENOENT"\]/);
  });

  it('rejects a link back to an ancestor folder (torchvision would recurse until the OS refuses)', async () => {
    const dir = join(base, 'loop');
    put(dir, 'c/1.png', await png(0, 0, 0));
    symlinkSync('..', join(dir, 'c/up'));
    await assert.rejects(
      openProbeDataset(dir),
      /loop\/c\/up\/c is a link back to a folder that contains it \(a cycle\)/,
    );
  });

  it('refuses empty class folders as ImageFolder does', async () => {
    const dir = join(base, 'emptyclass');
    put(dir, 'cat/1.png', await png(0, 0, 0));
    put(dir, 'dog/readme.txt', 'x');
    mkdirSync(join(dir, '.ipynb_checkpoints'));
    await assert.rejects(openProbeDataset(dir), (e: Error & { code?: string }) => {
      assert.equal(e.code, 'ERR_PROBE_DATASET');
      assert.match(e.message, /class folders '\.ipynb_checkpoints' and 'dog' in .* hold no image files/);
      return true;
    });
  });

  it('reads a flat folder: image files sorted by code point, sub-folders without images ignored', async () => {
    const dir = join(base, 'flat');
    put(dir, 'b.png', await png(1, 2, 3));
    put(dir, 'B.JPG', await png(4, 5, 6));
    put(dir, 'a10.png', await png(7, 8, 9));
    put(dir, 'a2.png', await png(7, 8, 9));
    put(dir, 'notes.txt', 'x');
    put(dir, 'thumbs/readme.txt', 'x');
    mkdirSync(join(dir, 'empty'));
    const ds = await openProbeDataset(dir);
    assert.deepEqual(rel(ds, dir), ['B.JPG', 'a10.png', 'a2.png', 'b.png']);
    assert.equal(ds.sources[0].kind, 'flat-folder');
    assert.equal(ds.classes, undefined);
    assert.equal(ds.images[0].label, undefined);
    assert.deepEqual(Array.from((await ds.load(3)).data.subarray(0, 3)), [1, 2, 3]);
    assert.deepEqual(ds.warnings, []);
  });

  it('a file name that is not UTF-8 (byte 0xff): an image is refused naming it, another file is ignored', async () => {
    const dir = join(base, 'latin1');
    put(dir, 'a.png', await png(1, 2, 3));
    writeFileSync(
      Buffer.concat([Buffer.from(`${dir}/notes`), Buffer.from([0xff]), Buffer.from('.txt')]),
      'x',
    );
    assert.equal((await openProbeDataset(dir)).images.length, 1);
    writeFileSync(
      Buffer.concat([Buffer.from(`${dir}/caf`), Buffer.from([0xe9, 0xff]), Buffer.from('.png')]),
      await png(4, 5, 6),
    );
    await assert.rejects(
      openProbeDataset(dir),
      (e: unknown) =>
        e instanceof ProbeDatasetError &&
        e.message.includes(`the image file name 'caf\\xe9\\xff.png' in ${dir} is not valid UTF-8; rename it`),
    );
    // the same in a class folder of an ImageFolder tree, and a class folder of such a name
    const tree = join(base, 'latin1-tree');
    put(tree, 'cats/a.png', await png(1, 2, 3));
    mkdirSync(Buffer.concat([Buffer.from(`${tree}/d`), Buffer.from([0xff])]));
    await assert.rejects(openProbeDataset(tree), /the folder name 'd\\xff' in .* is not valid UTF-8/);
  });

  it('manifest: stable, path + size + mtime per file, changes when a file is touched', async () => {
    const dir = join(base, 'manifest');
    const a = put(dir, 'a.png', await png(1, 1, 1));
    put(dir, 'b.png', await png(2, 2, 2));
    const m1 = (await openProbeDataset(dir)).manifest();
    const m2 = (await openProbeDataset(`${dir}/`)).manifest();
    assert.equal(m1, m2);
    const lines = m1.trimEnd().split('\n');
    assert.equal(lines[0], 'clip-dissect probe manifest v1');
    assert.equal(lines[1], 'images\t2');
    const [kind, path, size, mtime] = JSON.parse(lines[2]) as string[];
    assert.equal(kind, 'file');
    assert.equal(path, a);
    assert.equal(size, String(readFileSync(a).length));
    assert.match(mtime, /^\d+$/);
    utimesSync(a, new Date(), new Date(Date.now() + 5000));
    const m3 = (await openProbeDataset(dir)).manifest();
    assert.notEqual(m3, m1);
    assert.equal(m3.split('\n')[3], m1.split('\n')[3]); // b.png unchanged
  });

  it('manifest: a file overwritten with the same size and its mtime put back (cp -p) still changes it', async () => {
    const dir = join(base, 'manifest-replaced');
    const a = put(dir, 'a.png', await png(1, 1, 1));
    const other = Buffer.from(readFileSync(a));
    other[other.length - 5] ^= 1; // other bytes, the same size
    const t = new Date('2024-01-02T03:04:05Z');
    utimesSync(a, t, t);
    const mtime = statSync(a, { bigint: true }).mtimeNs;
    const m1 = (await openProbeDataset(dir)).manifest();
    await new Promise((r) => setTimeout(r, 20)); // a later change time
    writeFileSync(a, other);
    utimesSync(a, t, t);
    assert.equal(statSync(a, { bigint: true }).mtimeNs, mtime, 'the same size and mtime');
    assert.notEqual((await openProbeDataset(dir)).manifest(), m1);
  });
});

describe('CIFAR binary files', () => {
  let dir = '';
  // 3 CIFAR-10 records with distinct pixels; plane c of record r at (y, x) = (r * 50 + c * 10 + y + x) & 255
  const px = (r: number) => (c: number, y: number, x: number) => (r * 50 + c * 10 + y + x * 3) & 255;
  before(() => {
    dir = tempDir('clip-dissect-cifar-');
    put(dir, 'c10/data_batch_1.bin', cat([cifarRecord([3], px(0)), cifarRecord([9], px(1))]));
    put(dir, 'c10/data_batch_2.bin', cat([cifarRecord([0], px(2))]));
    put(dir, 'c10/test_batch.bin', cat([cifarRecord([1], px(3))]));
    put(dir, 'c10/batches.meta.txt', 'airplane\n');
    put(dir, 'c100/train.bin', cat([cifarRecord([7, 42], px(4)), cifarRecord([19, 99], px(5))]));
    put(dir, 'c100/test.bin', cat([cifarRecord([0, 0], px(6))]));
    put(dir, 'bad/test_batch.bin', new Uint8Array(3073 * 2 + 5));
    put(dir, 'badlabel/test.bin', cifarRecord([0, 100], px(0)));
    put(dir, 'empty/train.bin', new Uint8Array(0));
    put(dir, 'other/random.bin', new Uint8Array(3073));
  });
  after(() => rmSync(dir, { recursive: true, force: true }));

  it('reads CIFAR-10 records: labels, class names and 32×32 HWC pixels from the R, G, B planes', async () => {
    const file = join(dir, 'c10/data_batch_1.bin');
    const ds = await openProbeDataset(file);
    assert.deepEqual(
      ds.images.map((im) => [im.index, im.source, im.label, im.className]),
      [
        [0, `cifar:${file}#0`, 3, 'cat'],
        [1, `cifar:${file}#1`, 9, 'truck'],
      ],
    );
    assert.deepEqual(ds.classes, [...CIFAR10_CLASSES]);
    assert.equal(ds.sources[0].kind, 'cifar10');
    const im = await ds.load(1);
    assert.equal(im.width, 32);
    assert.equal(im.height, 32);
    for (const [y, x] of [
      [0, 0],
      [5, 7],
      [31, 31],
    ])
      for (let c = 0; c < 3; c++)
        assert.equal(im.data[(y * 32 + x) * 3 + c], px(1)(c, y, x), `${y},${x},${c}`);
  });

  it('a CIFAR-10 folder gives data_batch_1…5 then test_batch, other files ignored', async () => {
    const ds = await openProbeDataset(join(dir, 'c10'));
    assert.deepEqual(
      ds.images.map((im) => [im.source.replace(/^cifar:.*\//, ''), im.label]),
      [
        ['data_batch_1.bin#0', 3],
        ['data_batch_1.bin#1', 9],
        ['data_batch_2.bin#0', 0],
        ['test_batch.bin#0', 1],
      ],
    );
    const im = await ds.load(3);
    assert.equal(im.data[0], px(3)(0, 0, 0));
    assert.equal(im.data[(2 * 32 + 1) * 3 + 2], px(3)(2, 2, 1));
  });

  it('reads CIFAR-100 records with the fine label (second byte)', async () => {
    const ds = await openProbeDataset(join(dir, 'c100'));
    assert.deepEqual(
      ds.images.map((im) => [im.source.replace(/^cifar:.*\//, ''), im.label, im.className]),
      [
        ['train.bin#0', 42, 'leopard'],
        ['train.bin#1', 99, 'worm'],
        ['test.bin#0', 0, 'apple'],
      ],
    );
    assert.equal(ds.sources[0].kind, 'cifar100');
    assert.equal(CIFAR100_CLASSES.length, 100);
    assert.equal(new Set(CIFAR100_CLASSES).size, 100);
    assert.deepEqual([...CIFAR100_CLASSES].sort(compareCodePoints), [...CIFAR100_CLASSES]);
    const im = await ds.load(1);
    assert.equal(im.data[(10 * 32 + 20) * 3 + 1], px(5)(1, 10, 20));
  });

  it('manifest: content hash and record count per file, no path; changes with the content', async () => {
    const file = join(dir, 'c100/test.bin');
    const m = (await openProbeDataset(file)).manifest();
    const sha = createHash('sha256').update(readFileSync(file)).digest('hex');
    assert.equal(m, `clip-dissect probe manifest v1\nimages\t1\n["cifar","cifar100","${sha}",1]\n`);
    const copy = put(dir, 'copy/test.bin', readFileSync(file));
    assert.equal((await openProbeDataset(copy)).manifest(), m);
    writeFileSync(copy, cifarRecord([0, 1], px(6)));
    assert.notEqual((await openProbeDataset(copy)).manifest(), m);
  });

  it('rejects a file that is not whole records, naming it and the record size', async () => {
    await assert.rejects(openProbeDataset(join(dir, 'bad')), (e: Error & { code?: string }) => {
      assert.equal(e.code, 'ERR_PROBE_DATASET');
      assert.match(
        e.message,
        /bad\/test_batch\.bin: 6151 bytes is not a whole number of CIFAR-10 records of 3073 bytes/,
      );
      return true;
    });
    await assert.rejects(
      openProbeDataset(join(dir, 'badlabel/test.bin')),
      /record 0 has label 100 but CIFAR-100 labels go from 0 to 99/,
    );
    await assert.rejects(openProbeDataset(join(dir, 'empty/train.bin')), /empty \(0 records\)/);
    await assert.rejects(openProbeDataset(join(dir, 'empty')), /the CIFAR files in .* hold no records/);
    await assert.rejects(
      openProbeDataset(join(dir, 'other/random.bin')),
      /is a file but not a CIFAR binary file/,
    );
  });

  it('concatenates a comma-separated list in order (CIFAR, then a folder)', async () => {
    const flat = join(dir, 'flat');
    put(flat, 'only.png', await png(9, 9, 9));
    const c10 = join(dir, 'c10/test_batch.bin');
    const ds = await openProbeDataset(`${c10},${flat}`);
    assert.deepEqual(
      ds.images.map((im) => [im.index, im.source]),
      [
        [0, `cifar:${c10}#0`],
        [1, join(flat, 'only.png')],
      ],
    );
    assert.deepEqual(
      ds.sources.map((s) => [s.kind, s.start, s.count]),
      [
        ['cifar10', 0, 1],
        ['flat-folder', 1, 1],
      ],
    );
    assert.equal(ds.classes, undefined); // the sources' class lists differ
    assert.equal((await ds.load(0)).width, 32);
    assert.deepEqual(Array.from((await ds.load(1)).data.subarray(0, 3)), [9, 9, 9]);
    const m = ds.manifest().split('\n');
    assert.equal(m[1], 'images\t2');
    assert.match(m[2], /^\["cifar"/);
    assert.match(m[3], /^\["file"/);
    // the same source twice, as an array (no comma splitting), and same class lists kept
    const twice = await openProbeDataset([c10, ` ${c10}`.trim()]);
    assert.equal(twice.images.length, 2);
    assert.equal(twice.images[1].index, 1);
    assert.deepEqual(twice.classes, [...CIFAR10_CLASSES]);
    // a path that contains a comma is taken whole when it exists
    const comma = join(dir, 'a,b');
    put(comma, 'x.png', await png(0, 0, 0));
    assert.equal((await openProbeDataset(comma)).images.length, 1);
  });
});

describe('probe source errors', () => {
  let dir = '';
  before(() => {
    dir = tempDir('clip-dissect-probe-err-');
  });
  after(() => rmSync(dir, { recursive: true, force: true }));

  it('a missing path lists what was expected', async () => {
    await assert.rejects(openProbeDataset(join(dir, 'nope')), (e: Error & { code?: string }) => {
      assert.equal(e.code, 'ERR_PROBE_DATASET');
      assert.match(
        e.message,
        /nope': no such file or folder .* and not a built-in dataset; expected a folder of images/,
      );
      assert.match(e.message, /'cifar100_train' or 'cifar100_val'/);
      assert.match(e.message, /'data_batch_1\.bin'/);
      return true;
    });
  });
  it('an unknown built-in name is a missing source', async () => {
    await assert.rejects(
      openProbeDataset('cifar100_test', { cacheDir: dir, offline: true }),
      /'cifar100_test': no such file or folder/,
    );
  });
  it('an empty folder, or one without images, names the folder', async () => {
    mkdirSync(join(dir, 'empty'));
    await assert.rejects(
      openProbeDataset(join(dir, 'empty')),
      /empty': no image files in .*empty \(image files end in/,
    );
    put(dir, 'noimg/a.txt', 'x');
    put(dir, 'noimg/sub/b.gif', 'x');
    await assert.rejects(
      openProbeDataset(join(dir, 'noimg')),
      /no image files in .*noimg or its 1 sub-folder\(s\)/,
    );
  });
  it('an empty entry in the list is an argument error', async () => {
    await assert.rejects(openProbeDataset('a,,b'), (e: Error & { code?: string }) => {
      assert.equal(e.code, 'ERR_ARGUMENT');
      assert.match(e.message, /probe set 'a,,b': empty source name/);
      return true;
    });
    await assert.rejects(openProbeDataset([]), /no source given/);
  });
  it('a built-in set that is not cached fails offline with a clear message', async () => {
    await assert.rejects(openProbeDataset('cifar100_val', { cacheDir: dir, offline: true }), (e: Error) => {
      assert.match(
        e.message,
        /built-in probe dataset 'cifar100_val' is not in the cache \(.*datasets\/cifar-100-binary\)/,
      );
      assert.match(e.message, /offline mode forbids downloading it/);
      assert.match(e.message, /cifar-100-binary\/test\.bin/);
      return true;
    });
  });
  it('a FIFO, socket or device named like an image is listed (as torchvision lists it) but never opened: load refuses it as unreadable', {
    timeout: 10_000,
  }, async () => {
    put(dir, 'fifo/a.png', await png(1, 2, 3));
    makeFifo(join(dir, 'fifo', 'b.jpg'));
    symlinkSync('/dev/zero', join(dir, 'fifo', 'c.png'));
    const ds = await openProbeDataset(join(dir, 'fifo'));
    assert.equal(ds.images.length, 3);
    assert.match(ds.manifest(), /b\.jpg","a FIFO \(named pipe\)"\]/);
    assert.match(ds.manifest(), /c\.png","a character device"\]/);
    assert.equal((await ds.load(0)).width, 2);
    await assert.rejects(ds.load(1), (e: Error & { code?: string }) => {
      assert.equal(e.code, 'ERR_IMAGE_READ'); // what skipBadImages / --skip-bad-images leaves out
      assert.match(
        e.message,
        /b\.jpg: cannot read image file: .*b\.jpg is a FIFO \(named pipe\), not a regular file/,
      );
      return true;
    });
    await assert.rejects(ds.load(2), /c\.png is a character device, not a regular file/);
  });
  it('a FIFO named like a CIFAR file is refused at open', { timeout: 10_000 }, async () => {
    mkdirSync(join(dir, 'cififo'));
    makeFifo(join(dir, 'cififo', 'data_batch_1.bin'));
    await assert.rejects(openProbeDataset(join(dir, 'cififo')), (e: Error & { code?: string }) => {
      assert.equal(e.code, 'ERR_PROBE_DATASET');
      assert.match(e.message, /data_batch_1\.bin is a FIFO \(named pipe\), not a regular file/);
      return true;
    });
  });
  it('a corrupt image throws ERR_IMAGE naming the file at load time, not at open', async () => {
    const p = put(dir, 'corrupt/bad.png', 'not a png');
    const ds = await openProbeDataset(join(dir, 'corrupt'));
    await assert.rejects(ds.load(0), (e: Error & { code?: string }) => {
      assert.equal(e.code, 'ERR_IMAGE');
      assert.ok(e.message.startsWith(p), e.message);
      return true;
    });
  });
});

/** A minimal POSIX ustar archive (what the test server serves as cifar-100-binary.tar.gz). */
function makeTar(entries: { name: string; data?: Uint8Array }[]): Uint8Array {
  const blocks: Uint8Array[] = [];
  for (const { name, data } of entries) {
    const h = new Uint8Array(512);
    const w = (s: string, at: number) => h.set(Buffer.from(s, 'utf8'), at);
    const size = data?.length ?? 0;
    w(name, 0);
    w('0000644\0', 100);
    w('0000000\0', 108);
    w('0000000\0', 116);
    w(`${size.toString(8).padStart(11, '0')}\0`, 124);
    w('14000000000\0', 136);
    w('        ', 148);
    w(data ? '0' : '5', 156);
    w('ustar\0', 257);
    w('00', 263);
    const sum = h.reduce((s, b) => s + b, 0);
    w(`${sum.toString(8).padStart(6, '0')}\0 `, 148);
    blocks.push(h);
    if (data) {
      blocks.push(data);
      if (size % 512) blocks.push(new Uint8Array(512 - (size % 512)));
    }
  }
  blocks.push(new Uint8Array(1024));
  return Buffer.concat(blocks);
}

describe('built-in CIFAR-100 download', () => {
  const train = cat([
    cifarRecord([1, 5], () => 11),
    cifarRecord([2, 6], () => 22),
    cifarRecord([3, 7], () => 33),
  ]);
  const test = cat([cifarRecord([4, 8], () => 44)]);
  const archive = (t: Uint8Array) =>
    gzipSync(
      makeTar([
        { name: 'cifar-100-binary/' },
        { name: 'cifar-100-binary/coarse_label_names.txt', data: Buffer.from('aquatic_mammals\n') },
        { name: 'cifar-100-binary/train.bin', data: train },
        { name: 'cifar-100-binary/test.bin', data: t },
      ]),
    );
  const md5 = (b: Uint8Array) => createHash('md5').update(b).digest('hex');
  const archiveA = archive(test);
  const archiveB = archive(cat([cifarRecord([4, 9], () => 45)])); // a different archive
  let body: Uint8Array = archiveA;
  let status = 200;
  const requests: string[] = [];
  const server = createServer((req, res) => {
    requests.push(req.url ?? '');
    if (status !== 200 || !(req.url ?? '').endsWith('/cifar-100-binary.tar.gz')) {
      res.writeHead(status === 200 ? 404 : status).end();
      return;
    }
    res.writeHead(200, { 'content-length': String(body.length) }).end(body);
  });
  let baseUrl = '';
  let cacheDir = '';
  const opts = (extra: OpenProbeDatasetOptions = {}): OpenProbeDatasetOptions => ({
    cacheDir,
    baseUrl,
    archiveChecksums: { md5: md5(body) },
    ...extra,
  });
  before(async () => {
    await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
    baseUrl = `http://127.0.0.1:${(server.address() as AddressInfo).port}/kriz`;
    cacheDir = tempDir('clip-dissect-cache-');
  });
  after(() => {
    server.close();
    rmSync(cacheDir, { recursive: true, force: true });
  });

  it('the test archive parses with readTar', () => {
    const members = readTar(makeTar([{ name: 'd/' }, { name: 'd/f', data: new Uint8Array([1, 2, 3]) }]), 't');
    assert.deepEqual(
      members.map((m) => [m.name, m.type, Array.from(m.data)]),
      [
        ['d/', 'directory', []],
        ['d/f', 'file', [1, 2, 3]],
      ],
    );
    const broken = makeTar([{ name: 'x', data: new Uint8Array(3) }]);
    broken[0] ^= 1;
    assert.throws(
      () => readTar(broken, 'arch.tar'),
      /arch\.tar: corrupt tar archive \(bad header checksum at byte 0\)/,
    );
  });

  it('downloads, checks, extracts and caches on first use; then reads from the cache', async () => {
    const events: ProgressEvent[] = [];
    const ds = await openProbeDataset('cifar100_train', opts({ onProgress: (e) => events.push(e) }));
    assert.deepEqual(requests, ['/kriz/cifar-100-binary.tar.gz']);
    const file = join(cacheDir, 'datasets', 'cifar-100-binary', 'train.bin');
    assert.deepEqual(
      ds.images.map((im) => [im.source, im.label, im.className]),
      [
        [`cifar:${file}#0`, 5, 'bed'],
        [`cifar:${file}#1`, 6, 'bee'],
        [`cifar:${file}#2`, 7, 'beetle'],
      ],
    );
    assert.equal(ds.sources[0].spec, 'cifar100_train');
    assert.equal((await ds.load(2)).data[100], 33);
    const dl = events.filter((e) => e.stage === 'download cifar-100-binary.tar.gz');
    assert.deepEqual(dl.at(-1), {
      stage: 'download cifar-100-binary.tar.gz',
      done: archiveA.length,
      total: archiveA.length,
      unit: 'bytes',
    });
    // trust on first use: the archive's SHA-256 is pinned in the cache
    const pin = JSON.parse(readFileSync(join(cacheDir, 'datasets', 'cifar-100-binary.json'), 'utf8'));
    assert.equal(pin.sha256, createHash('sha256').update(archiveA).digest('hex'));
    assert.equal(pin.md5, md5(archiveA));
    assert.deepEqual(Object.keys(pin.members), ['train.bin', 'test.bin']);

    // the other split and an offline open come from the cache; the hit records the last use, and
    // clip-dissect cache verify checks the members against the extraction record
    const pinPath = join(cacheDir, 'datasets', 'cifar-100-binary.json');
    const longAgo = new Date(Date.now() - 40 * 86400e3);
    utimesSync(pinPath, longAgo, longAgo);
    const val = await openProbeDataset('cifar100_val', opts({ offline: true }));
    assert.ok(Date.now() - statSync(pinPath).mtimeMs < 60e3);
    const verified = (await verifyCache(cacheDir)).filter((r) => r.entry.kind === 'probes');
    assert.deepEqual(
      verified.map((r) => [r.entry.id, r.status]),
      [['cifar-100-binary', 'ok']],
    );
    assert.deepEqual(
      val.images.map((im) => im.className),
      ['bicycle'],
    );
    assert.equal(requests.length, 1);
    // the manifest is content-addressed: the same as the file opened by path elsewhere
    const copy = join(cacheDir, 'copy', 'test.bin');
    put(cacheDir, 'copy/test.bin', test);
    assert.equal(val.manifest(), (await openProbeDataset(copy)).manifest());
    assert.ok(!val.manifest().includes(cacheDir));
  });

  it('re-extracts a corrupted cached file (same archive); offline it cannot', async () => {
    const file = join(cacheDir, 'datasets', 'cifar-100-binary', 'test.bin');
    writeFileSync(file, cat([cifarRecord([4, 8], () => 0)])); // same size, other content
    await assert.rejects(
      openProbeDataset('cifar100_val', opts({ offline: true })),
      /'cifar100_val' is corrupted in the cache \(.*test\.bin\) and offline mode forbids downloading it/,
    );
    const before = requests.length;
    const ds = await openProbeDataset('cifar100_val', opts());
    assert.equal(requests.length, before + 1);
    assert.equal((await ds.load(0)).data[0], 44);
  });

  it('a later download whose SHA-256 differs from the pinned one is refused', async () => {
    rmSync(join(cacheDir, 'datasets', 'cifar-100-binary', 'test.bin'));
    body = archiveB;
    try {
      await assert.rejects(openProbeDataset('cifar100_val', opts()), (e: Error) => {
        assert.match(
          e.message,
          /its SHA-256 is [0-9a-f]{64} but [0-9a-f]{64} was expected \(pinned in .*cifar-100-binary\.json when the archive was first downloaded/,
        );
        return true;
      });
    } finally {
      body = archiveA;
    }
    // the cache was left as it was (no partial download either): train.bin still opens offline
    assert.deepEqual(readdirSync(join(cacheDir, 'datasets')).sort(), [
      'cifar-100-binary',
      'cifar-100-binary.json',
    ]);
    assert.equal((await openProbeDataset('cifar100_train', opts({ offline: true }))).images.length, 3);
  });

  it('checks the published MD5 by default, and reports HTTP errors', async () => {
    const fresh = tempDir('clip-dissect-cache-');
    try {
      await assert.rejects(openProbeDataset('cifar100_val', { cacheDir: fresh, baseUrl }), (e: Error) => {
        assert.match(
          e.message,
          /its MD5 is [0-9a-f]{32} but 03b5dce01913d631647c71ecec9e9cb8 was expected \(the published MD5\)/,
        );
        return true;
      });
      status = 503;
      await assert.rejects(
        openProbeDataset('cifar100_val', { cacheDir: fresh, baseUrl }),
        /cannot download built-in probe dataset 'cifar100_val' from http:\/\/127\.0\.0\.1:\d+\/kriz\/cifar-100-binary\.tar\.gz: HTTP 503/,
      );
    } finally {
      status = 200;
      rmSync(fresh, { recursive: true, force: true });
    }
  });
});
