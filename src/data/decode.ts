/**
 * Image decoding that gives the pixels PIL gives for `Image.open(path).convert('RGB')`, the loader of
 * torchvision's `ImageFolder` (and so of CLIP-Dissect's probe datasets). Decoding is done by the platform's
 * image port (in Node: sharp, i.e. libvips, see src/platform/node/images.ts); every place where libvips would otherwise differ from PIL is undone here:
 *
 * - EXIF orientation is not applied (PIL's `open` does not rotate; sharp only rotates when asked).
 * - Embedded ICC profiles are ignored (PIL's `convert('RGB')` never colour-manages; sharp converts to sRGB
 *   unless `ignoreIcc` is set).
 * - Alpha is dropped, not composited (PIL's RGBA/LA -> RGB keeps the colour channels as stored).
 * - Palette images are expanded through the palette; their tRNS transparency is ignored.
 * - Grayscale (1-bit, 8-bit) is replicated into R, G and B.
 * - 16-bit grayscale PNG (PIL mode `I;16`) is clipped to 255 (`min(v, 255)`, PIL's I;16 -> RGB), not scaled;
 *   16-bit RGB / RGBA / gray+alpha PNG keep the high byte (`v >> 8`), as PIL's `;16B` raw modes do.
 * - CMYK (e.g. Adobe CMYK JPEG) is converted with PIL's naive formula `(255 - K) - round(C (255 - K) / 255)`
 *   instead of libvips' ICC transform.
 *
 * JPEG: PIL and sharp both run libjpeg-turbo's code (sharp ships mozjpeg, a libjpeg-turbo fork) with the
 * default ISLOW DCT and fancy upsampling, and decode to identical pixels on every JPEG we measured (4:4:4,
 * 4:2:2, 4:2:0, odd sizes, grayscale, CMYK; see test/data/decode.test.ts).
 *
 * Not like PIL: BMP, ICO, PPM and the other formats that PIL reads and libvips does not (an `ERR_IMAGE` error
 * that says so); GIF / WebP frames with transparency (libvips composites frames to RGBA, PIL keeps the palette
 * colour of transparent pixels); 16-bit grayscale PNG with a tRNS chunk (treated as gray+alpha: high byte).
 */
import { platform } from '#platform';
import { describeFsError } from '../io/files.js';
import { readRegularFile } from '../io/regular-file.js';
import { ArgumentError, ClipDissectError, formatChoices } from '../numeric/errors.js';
import type { ImageHeader } from '../platform/types.js';

/** An 8-bit RGB image: `data[(y * width + x) * 3 + c]` (HWC, row-major). */
export interface RGBImage {
  width: number;
  height: number;
  data: Uint8Array;
}

/* The image port decodes as PIL does here: it fails on truncated or broken data (PIL raises on both) but not
 * on libjpeg warnings (PIL ignores them), and never colour-manages. */
const LITTLE_ENDIAN_HOST = new Uint8Array(new Uint16Array([1]).buffer)[0] === 1;

/**
 * Bytes one pixel may take while it is decoded: libvips' output (up to 4 channels) and the RGB copy returned
 * (3), rounded up. An image of W×H pixels needs about W·H·IMAGE_BYTES_PER_PIXEL bytes at its peak.
 */
export const IMAGE_BYTES_PER_PIXEL = 8;

/** Options of {@link decodeImageRGB}. */
export interface DecodeOptions {
  /**
   * Refuse images of more pixels than this (width × height, read from the header before anything is decoded):
   * a ClipDissectError 'ERR_IMAGE' naming the image, its size and the limit. Default: no limit but libvips'
   * own (268 megapixels).
   */
  maxPixels?: number;
}

/**
 * Decodes an image file (or its bytes) to 8-bit RGB exactly as PIL's `Image.open(p).convert('RGB')` does.
 *
 * Errors: an unreadable file throws a ClipDissectError with code 'ERR_IMAGE_READ'; an empty, truncated,
 * corrupt or unsupported file, or one larger than `maxPixels`, throws code 'ERR_IMAGE'. Messages start with the
 * file path (or `<buffer of N bytes>`).
 */
export async function decodeImageRGB(
  pathOrBytes: string | Uint8Array,
  options: DecodeOptions = {},
): Promise<RGBImage> {
  let bytes: Uint8Array;
  let source: string;
  if (typeof pathOrBytes === 'string') {
    source = pathOrBytes;
    try {
      bytes = await readRegularFile(pathOrBytes);
    } catch (err) {
      throw new ClipDissectError(
        'ERR_IMAGE_READ',
        `${source}: cannot read image file: ${describeFsError(err)}`,
        {
          cause: err,
        },
      );
    }
  } else if (pathOrBytes instanceof Uint8Array) {
    bytes = pathOrBytes;
    source = `<buffer of ${bytes.length} bytes>`;
  } else {
    throw new ArgumentError(
      `decodeImageRGB: 'pathOrBytes' must be a file path (string) or the file's bytes (Uint8Array) but got ${describeValue(pathOrBytes)}`,
    );
  }
  if (bytes.length === 0)
    throw new ClipDissectError('ERR_IMAGE', `${source}: empty file (0 bytes), not an image`);

  let meta: ImageHeader;
  try {
    meta = await platform.images.header(bytes);
  } catch (err) {
    throw imageError(source, bytes, err);
  }
  const max = options.maxPixels;
  if (
    max !== undefined &&
    meta.width !== undefined &&
    meta.height !== undefined &&
    meta.width * meta.height > max
  ) {
    const mb = (px: number) => `${Math.round((px * IMAGE_BYTES_PER_PIXEL) / 2 ** 20)} MiB`;
    throw new ClipDissectError(
      'ERR_IMAGE',
      `${source}: ${meta.width}×${meta.height} pixels (about ${mb(meta.width * meta.height)} to decode) is larger than the limit of ${max} pixels (${mb(max)}) that the memory budget allows per image (raise 'memoryBudget' / --memory-budget, use fewer workers, or shrink the image)`,
    );
  }
  try {
    if (meta.space === 'cmyk') return await decodeCMYK(bytes);
    if (meta.space === 'grey16' && !meta.hasAlpha) return await decodeGray16(bytes);
    return await decode8(bytes, source);
  } catch (err) {
    if (err instanceof ClipDissectError) throw err;
    throw imageError(source, bytes, err);
  }
}

/** Everything but CMYK and 16-bit gray: libvips' 8-bit sRGB(A) / B-W output, alpha dropped. libvips turns
 * 16-bit samples into 8-bit by keeping the high byte, as PIL does for 16-bit RGB(A) and LA PNGs. */
async function decode8(bytes: Uint8Array, source: string): Promise<RGBImage> {
  const { data, width, height, channels } = await platform.images.decodeRaw(bytes, 'native8');
  const n = width * height;
  if (data.length !== n * channels || channels < 1 || channels > 4) {
    throw new ClipDissectError(
      'ERR_IMAGE',
      `${source}: unsupported pixel layout: ${channels} channel(s) of ${data.length / (n * channels)}-byte samples (expected 1 to 4 channels of 8-bit samples)`,
    );
  }
  if (channels === 3) return { width, height, data: new Uint8Array(data.buffer, data.byteOffset, n * 3) };
  const out = new Uint8Array(n * 3);
  if (channels >= 3) {
    for (let i = 0, j = 0; i < n; i++, j += channels) {
      out[i * 3] = data[j];
      out[i * 3 + 1] = data[j + 1];
      out[i * 3 + 2] = data[j + 2];
    }
  } else {
    for (let i = 0, j = 0; i < n; i++, j += channels) {
      const v = data[j];
      out[i * 3] = v;
      out[i * 3 + 1] = v;
      out[i * 3 + 2] = v;
    }
  }
  return { width, height, data: out };
}

/** 16-bit grayscale: PIL opens it as mode I;16 and converts to RGB by clipping each sample to 255. */
async function decodeGray16(bytes: Uint8Array): Promise<RGBImage> {
  const { data, width, height, channels } = await platform.images.decodeRaw(bytes, 'grey16');
  const n = width * height;
  const out = new Uint8Array(n * 3);
  // libvips writes the samples in the host's byte order.
  const view = new DataView(data.buffer, data.byteOffset, data.byteLength);
  for (let i = 0; i < n; i++) {
    const v16 = view.getUint16(i * channels * 2, LITTLE_ENDIAN_HOST);
    const v = Math.min(v16, 255);
    out[i * 3] = v;
    out[i * 3 + 1] = v;
    out[i * 3 + 2] = v;
  }
  return { width, height, data: out };
}

/** CMYK: the raw C, M, Y, K samples (Adobe-inverted CMYK JPEGs are un-inverted by libjpeg / libvips just as
 * PIL's 'CMYK;I' raw mode does), then PIL's cmyk -> rgb: `(255 - K) - round(C * (255 - K) / 255)`. */
async function decodeCMYK(bytes: Uint8Array): Promise<RGBImage> {
  const { data, width, height, channels } = await platform.images.decodeRaw(bytes, 'cmyk');
  const n = width * height;
  const out = new Uint8Array(n * 3);
  for (let i = 0, j = 0; i < n; i++, j += channels) {
    const nk = 255 - data[j + 3];
    out[i * 3] = nk - mulDiv255(data[j], nk);
    out[i * 3 + 1] = nk - mulDiv255(data[j + 1], nk);
    out[i * 3 + 2] = nk - mulDiv255(data[j + 2], nk);
  }
  return { width, height, data: out };
}

/** round(a * b / 255) for 0 <= a, b <= 255, computed the way PIL does (exact for that range). */
function mulDiv255(a: number, b: number): number {
  const t = a * b + 128;
  return ((t >> 8) + t) >> 8;
}

/** The input formats the platform's decoder reads ('jpeg', 'png', 'webp', ...). */
export function supportedImageFormats(): string[] {
  return platform.images.inputFormats();
}

/** Formats PIL reads that libvips (and so clip-dissect) does not, recognised by their magic bytes. */
const UNSUPPORTED_MAGIC: readonly { name: string; test: (b: Uint8Array) => boolean }[] = [
  { name: 'BMP', test: (b) => b[0] === 0x42 && b[1] === 0x4d },
  { name: 'ICO', test: (b) => b[0] === 0 && b[1] === 0 && b[2] === 1 && b[3] === 0 },
  { name: 'PPM/PGM/PBM', test: (b) => b[0] === 0x50 && b[1] >= 0x31 && b[1] <= 0x36 },
  {
    name: 'JPEG 2000',
    test: (b) => b[0] === 0 && b[1] === 0 && b[2] === 0 && b[3] === 0x0c && b[4] === 0x6a,
  },
];

function imageError(source: string, bytes: Uint8Array, err: unknown): ClipDissectError {
  const msg = err instanceof Error ? err.message : String(err);
  if (/unsupported image format/i.test(msg)) {
    const known = UNSUPPORTED_MAGIC.find((m) => bytes.length >= 5 && m.test(bytes));
    const head = Array.from(bytes.subarray(0, 8), (b) => b.toString(16).padStart(2, '0')).join(' ');
    const what = known
      ? `${known.name} images are not supported (convert the file to PNG)`
      : `not a recognised image format (first bytes: ${head})`;
    return new ClipDissectError(
      'ERR_IMAGE',
      `${source}: ${what}; supported formats are ${formatChoices(supportedImageFormats())}`,
      { cause: err },
    );
  }
  // libvips keeps one error buffer per thread: a message may begin with the errors of images decoded before
  // on the same libuv thread; the last line is this image's
  const own = msg.trim().split('\n').pop()?.trim() || msg.trim();
  return new ClipDissectError('ERR_IMAGE', `${source}: corrupt or truncated image (${own})`, {
    cause: err,
  });
}

function describeValue(v: unknown): string {
  if (v === null) return 'null';
  if (typeof v === 'object') return (v as object).constructor?.name ?? 'object';
  return typeof v;
}
