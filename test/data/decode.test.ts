/**
 * decodeImageRGB against PIL's `Image.open(p).convert('RGB')` on the fixtures written by
 * scripts/make_image_fixtures.py (test/fixtures/images/expected.json).
 */
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { describe, it } from 'node:test';
import { fileURLToPath } from 'node:url';
import { crc32, deflateSync, inflateSync } from 'node:zlib';
import sharp from 'sharp';
import { decodeImageRGB, supportedImageFormats } from '../../src/data/decode.js';
import { ClipDissectError } from '../../src/numeric/errors.js';

const DIR = fileURLToPath(new URL('../../../test/fixtures/images/', import.meta.url));

interface ExpectedImage {
  mode: string;
  width: number;
  height: number;
  orientation: number | null;
  rgb: string;
}
const EXPECTED: { images: Record<string, ExpectedImage>; errors: Record<string, { pil: string | null }> } =
  JSON.parse(readFileSync(`${DIR}expected.json`, 'utf8'));

/** PIL's RGB pixels of a fixture (stored zlib-deflated, base64). */
function pilRGB(name: string): Uint8Array {
  return new Uint8Array(inflateSync(Buffer.from(EXPECTED.images[name].rgb, 'base64')));
}

function diffStats(a: Uint8Array, b: Uint8Array): { max: number; mean: number; count: number } {
  assert.equal(a.length, b.length);
  let max = 0;
  let sum = 0;
  let count = 0;
  for (let i = 0; i < a.length; i++) {
    const d = Math.abs(a[i] - b[i]);
    if (d > 0) count++;
    if (d > max) max = d;
    sum += d;
  }
  return { max, mean: sum / a.length, count };
}

async function rejectsWith(p: Promise<unknown>, code: string, parts: (string | RegExp)[]): Promise<void> {
  await assert.rejects(p, (err: unknown) => {
    assert.ok(err instanceof ClipDissectError, `expected a ClipDissectError, got ${String(err)}`);
    assert.equal(err.code, code, err.message);
    for (const part of parts) {
      if (typeof part === 'string') assert.ok(err.message.includes(part), `'${part}' not in: ${err.message}`);
      else assert.match(err.message, part);
    }
    return true;
  });
}

const NAMES = Object.keys(EXPECTED.images);
const PNGS = NAMES.filter((n) => n.endsWith('.png'));
const JPEGS = NAMES.filter((n) => n.endsWith('.jpg'));

describe('decodeImageRGB: PNG equals PIL convert("RGB") exactly', () => {
  for (const name of PNGS) {
    const e = EXPECTED.images[name];
    it(`${name} (PIL mode ${e.mode}, ${e.width}x${e.height})`, async () => {
      const img = await decodeImageRGB(`${DIR}${name}`);
      assert.equal(img.width, e.width);
      assert.equal(img.height, e.height);
      assert.equal(img.data.length, e.width * e.height * 3);
      const d = diffStats(img.data, pilRGB(name));
      assert.equal(d.count, 0, `${d.count} samples differ, max ${d.max}`);
    });
  }
});

describe('decodeImageRGB: JPEG against PIL (libjpeg-turbo, ISLOW DCT, fancy upsampling)', () => {
  for (const name of JPEGS) {
    const e = EXPECTED.images[name];
    it(`${name} (PIL mode ${e.mode}, ${e.width}x${e.height})`, async (t) => {
      const img = await decodeImageRGB(`${DIR}${name}`);
      assert.equal(img.width, e.width);
      assert.equal(img.height, e.height);
      const d = diffStats(img.data, pilRGB(name));
      t.diagnostic(`max |diff| ${d.max}, mean |diff| ${d.mean.toFixed(5)}, ${d.count} samples differ`);
      // Measured: identical on every fixture and on 66 more JPEGs (PIL- and mozjpeg-encoded, 4:4:4, 4:2:2,
      // 4:2:0, progressive, restart markers, 500x375 and 640x480).
      assert.equal(d.max, 0);
    });
  }
});

describe('decodeImageRGB: PIL semantics', () => {
  it('does not apply the EXIF orientation (exif6.jpg stays 48x32, as PIL opens it)', async () => {
    assert.equal(EXPECTED.images['exif6.jpg'].orientation, 6);
    const meta = await sharp(`${DIR}exif6.jpg`).metadata();
    assert.equal(meta.orientation, 6);
    const img = await decodeImageRGB(`${DIR}exif6.jpg`);
    assert.deepEqual([img.width, img.height], [48, 32]);
  });

  it('ignores an embedded ICC profile (sharp would colour-convert it)', async () => {
    for (const name of ['icc_rgb.jpg', 'icc_rgb.png']) {
      const managed = await sharp(`${DIR}${name}`).removeAlpha().raw().toBuffer();
      assert.ok(
        diffStats(new Uint8Array(managed), pilRGB(name)).max > 50,
        `${name}: fixture has no effective profile`,
      );
      const img = await decodeImageRGB(`${DIR}${name}`);
      assert.equal(diffStats(img.data, pilRGB(name)).max, 0);
    }
  });

  it('drops alpha without compositing (RGBA with alpha 0 keeps its colour)', async () => {
    const rgba = await sharp(`${DIR}rgba.png`).raw().toBuffer();
    const img = await decodeImageRGB(`${DIR}rgba.png`);
    let zeroAlpha = 0;
    for (let i = 0; i < img.width * img.height; i++) {
      if (rgba[i * 4 + 3] === 0) zeroAlpha++;
      for (let c = 0; c < 3; c++) assert.equal(img.data[i * 3 + c], rgba[i * 4 + c]);
    }
    assert.ok(zeroAlpha > 0);
  });

  it('clips 16-bit grayscale to 255 (PIL I;16 -> RGB) instead of scaling', async () => {
    const img = await decodeImageRGB(`${DIR}gray16.png`);
    // First row starts with the 16-bit values 0, 1, 100, 255, 256, 257, 4000, 65535.
    assert.deepEqual(
      Array.from({ length: 8 }, (_, x) => img.data[x * 3]),
      [0, 1, 100, 255, 255, 255, 255, 255],
    );
  });

  it('converts CMYK with PIL formula, not with an ICC transform', async () => {
    const viaIcc = await sharp(`${DIR}cmyk.jpg`).raw().toBuffer();
    assert.ok(diffStats(new Uint8Array(viaIcc), pilRGB('cmyk.jpg')).max > 20);
    const img = await decodeImageRGB(`${DIR}cmyk.jpg`);
    assert.equal(diffStats(img.data, pilRGB('cmyk.jpg')).max, 0);
  });

  it('decodes bytes like the file', async () => {
    const bytes = new Uint8Array(readFileSync(`${DIR}palette.png`));
    const a = await decodeImageRGB(bytes);
    const b = await decodeImageRGB(`${DIR}palette.png`);
    assert.deepEqual([a.width, a.height], [b.width, b.height]);
    assert.deepEqual(a.data, b.data);
  });

  it('lists the formats it reads', () => {
    const f = supportedImageFormats();
    for (const id of ['jpeg', 'png', 'webp', 'gif', 'tiff']) assert.ok(f.includes(id), id);
    assert.ok(!f.includes('raw'));
  });
});

/** A PNG whose IHDR declares width×height RGB but whose IDAT holds one row: a few hundred bytes. */
function headerOnlyPng(width: number, height: number): Uint8Array {
  const chunk = (type: string, data: Buffer) => {
    const td = Buffer.concat([Buffer.from(type, 'latin1'), data]);
    const out = Buffer.alloc(12 + data.length);
    out.writeUInt32BE(data.length, 0);
    td.copy(out, 4);
    out.writeUInt32BE(crc32(td), 8 + data.length);
    return out;
  };
  const ihdr = Buffer.alloc(13);
  ihdr.writeUInt32BE(width, 0);
  ihdr.writeUInt32BE(height, 4);
  ihdr.set([8, 2, 0, 0, 0], 8); // 8-bit RGB
  return Buffer.concat([
    Buffer.from([0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a]),
    chunk('IHDR', ihdr),
    chunk('IDAT', deflateSync(Buffer.alloc(1 + 3 * width))),
    chunk('IEND', Buffer.alloc(0)),
  ]);
}

describe('decodeImageRGB: errors', () => {
  it('an image above maxPixels is refused from its header, naming its size and the limit', async () => {
    // wide300x20.png: 6000 pixels
    await rejectsWith(decodeImageRGB(`${DIR}wide300x20.png`, { maxPixels: 5999 }), 'ERR_IMAGE', [
      `${DIR}wide300x20.png: 300×20 pixels`,
      'larger than the limit of 5999 pixels',
      '--memory-budget',
    ]);
    assert.equal((await decodeImageRGB(`${DIR}wide300x20.png`, { maxPixels: 6000 })).width, 300);
    // a 16000×16000 header with one row of pixels: refused for its size before any decoding is tried
    const big = headerOnlyPng(16000, 16000);
    assert.ok(big.length < 1000);
    await rejectsWith(decodeImageRGB(big, { maxPixels: 100e6 }), 'ERR_IMAGE', [
      '16000×16000 pixels (about 1953 MiB to decode)',
      'limit of 100000000 pixels (763 MiB)',
    ]);
  });

  it('empty file', async () => {
    assert.ok(EXPECTED.errors['empty.png'].pil);
    await rejectsWith(decodeImageRGB(`${DIR}empty.png`), 'ERR_IMAGE', [
      `${DIR}empty.png`,
      'empty file (0 bytes)',
    ]);
    await rejectsWith(decodeImageRGB(new Uint8Array(0)), 'ERR_IMAGE', ['<buffer of 0 bytes>', 'empty']);
  });

  it('truncated PNG and JPEG (PIL: "image file is truncated")', async () => {
    for (const name of ['truncated.png', 'truncated.jpg']) {
      assert.match(EXPECTED.errors[name].pil ?? '', /truncated/);
      await rejectsWith(decodeImageRGB(`${DIR}${name}`), 'ERR_IMAGE', [
        `${DIR}${name}`,
        'corrupt or truncated image',
      ]);
    }
  });

  it('not an image: names the file, its first bytes and the supported formats', async () => {
    await rejectsWith(decodeImageRGB(`${DIR}not_an_image.txt`), 'ERR_IMAGE', [
      `${DIR}not_an_image.txt`,
      'not a recognised image format',
      '68 65 6c 6c 6f',
      "'jpeg'",
      "'png'",
    ]);
  });

  it('BMP (PIL reads it, libvips does not) says so', async () => {
    assert.equal(EXPECTED.errors['unsupported.bmp'].pil, null);
    await rejectsWith(decodeImageRGB(`${DIR}unsupported.bmp`), 'ERR_IMAGE', [
      `${DIR}unsupported.bmp`,
      'BMP images are not supported',
      'supported formats are',
    ]);
  });

  it('missing file and directory: ERR_IMAGE_READ', async () => {
    await rejectsWith(decodeImageRGB(`${DIR}no-such-file.png`), 'ERR_IMAGE_READ', [
      `${DIR}no-such-file.png`,
      'ENOENT',
    ]);
    await rejectsWith(decodeImageRGB(DIR), 'ERR_IMAGE_READ', [DIR, 'EISDIR']);
  });

  it('wrong argument type', async () => {
    await rejectsWith(decodeImageRGB(42 as unknown as string), 'ERR_ARGUMENT', ['pathOrBytes', 'number']);
  });
});
