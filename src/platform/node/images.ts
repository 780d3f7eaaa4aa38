/** The image port on sharp (libvips). */
import { createRequire } from 'node:module';
import type sharpLib from 'sharp';
import type { Sharp } from 'sharp';
import type { ImageCodec, RawDecodeMode, RawPixels } from '../types.js';

let loaded: typeof sharpLib | undefined;

/**
 * sharp, loaded on first use: every thread that imports '#platform' (the similarity engine's kernel workers too)
 * would otherwise start libvips, which costs each new worker several times its own start-up.
 */
function sharp(...args: Parameters<typeof sharpLib>): Sharp {
  return lib()(...args);
}

function lib(): typeof sharpLib {
  loaded ??= createRequire(import.meta.url)('sharp') as typeof sharpLib;
  return loaded;
}

/** Fail on truncated or broken data but not on libjpeg warnings; never colour-manage. */
const OPTIONS = { failOn: 'error', ignoreIcc: true } as const;

function pipeline(bytes: Uint8Array, mode: RawDecodeMode): Sharp {
  const s = sharp(bytes, OPTIONS);
  if (mode === 'grey16') return s.toColourspace('grey16').raw({ depth: 'ushort' });
  if (mode === 'cmyk') return s.pipelineColourspace('cmyk').toColourspace('cmyk').raw();
  return s.raw();
}

export const nodeImages: ImageCodec = {
  versions: () => ({ sharp: lib().versions.sharp, libvips: lib().versions.vips }),
  inputFormats: () =>
    Object.values(lib().format)
      .filter((f) => f.input.buffer && f.id !== 'raw')
      .map((f) => f.id),
  header: async (bytes) => {
    const m = await sharp(bytes, OPTIONS).metadata();
    return {
      format: m.format,
      width: m.width,
      height: m.height,
      space: m.space,
      channels: m.channels,
      hasAlpha: m.hasAlpha ?? false,
      depth: m.depth,
      isPalette: m.isPalette ?? false,
      bitsPerSample: m.bitsPerSample,
    };
  },
  decodeRaw: async (bytes, mode): Promise<RawPixels> => {
    const { data, info } = await pipeline(bytes, mode).toBuffer({ resolveWithObject: true });
    return {
      data: new Uint8Array(data.buffer, data.byteOffset, data.byteLength),
      width: info.width,
      height: info.height,
      channels: info.channels,
    };
  },
  thumbnailWebp: async (source, size, quality) => {
    const input =
      source instanceof Uint8Array
        ? sharp(source, OPTIONS)
        : sharp(source.data, { raw: { width: source.width, height: source.height, channels: 3 } });
    const out = await input.resize({ width: size, height: size, fit: 'cover' }).webp({ quality }).toBuffer();
    return new Uint8Array(out.buffer, out.byteOffset, out.byteLength);
  },
};
