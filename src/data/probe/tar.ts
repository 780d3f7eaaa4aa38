/** A reader of uncompressed tar archives (the built-in CIFAR-100 archive). */
import { ProbeDatasetError } from './types.js';

/** A member of a tar archive. */
export interface TarMember {
  name: string;
  type: 'file' | 'directory' | 'other';
  data: Uint8Array;
}

/**
 * Reads the members of an uncompressed tar archive (POSIX ustar, GNU and old v7 headers; GNU long names and
 * pax `path` records are honoured). Header checksums are verified. `source` names the archive in errors.
 */
export function readTar(tar: Uint8Array, source: string): TarMember[] {
  const members: TarMember[] = [];
  const utf8 = new TextDecoder();
  const text = (a: number, b: number) => {
    let end = a;
    while (end < b && tar[end] !== 0) end++;
    return utf8.decode(tar.subarray(a, end));
  };
  const number = (a: number, len: number): number => {
    if (tar[a] & 0x80) {
      // GNU base-256
      let v = 0;
      for (let i = a + 1; i < a + len; i++) v = v * 256 + tar[i];
      return v;
    }
    const s = text(a, a + len).trim();
    return s === '' ? 0 : Number.parseInt(s, 8);
  };
  let longName: string | undefined;
  let paxPath: string | undefined;
  let off = 0;
  while (off + 512 <= tar.length) {
    const h = off;
    const header = tar.subarray(h, h + 512);
    if (header.every((b) => b === 0)) break; // end of archive
    let sum = 0;
    for (let i = 0; i < 512; i++) sum += i >= 148 && i < 156 ? 32 : header[i];
    if (number(h + 148, 8) !== sum) {
      throw new ProbeDatasetError(`${source}: corrupt tar archive (bad header checksum at byte ${h})`);
    }
    const size = number(h + 124, 12);
    const typeflag = String.fromCharCode(tar[h + 156] || 0x30);
    const dataStart = h + 512;
    if (!Number.isFinite(size) || dataStart + size > tar.length) {
      throw new ProbeDatasetError(
        `${source}: truncated tar archive (a member of ${size} bytes at byte ${h})`,
      );
    }
    const data = tar.subarray(dataStart, dataStart + size);
    off = dataStart + Math.ceil(size / 512) * 512;
    if (typeflag === 'L') {
      longName = text(dataStart, dataStart + size);
      continue;
    }
    if (typeflag === 'x') {
      paxPath = /(?:^|\n)\d+ path=([^\n]*)\n/.exec(utf8.decode(data))?.[1];
      continue;
    }
    if (typeflag === 'g') continue;
    let name = text(h, h + 100);
    if (text(h + 257, h + 263) === 'ustar' && tar[h + 262] === 0) {
      // POSIX ustar (magic "ustar\0"); old GNU headers ("ustar  ") keep other fields there
      const prefix = text(h + 345, h + 500);
      if (prefix) name = `${prefix}/${name}`;
    }
    name = paxPath ?? longName ?? name;
    longName = undefined;
    paxPath = undefined;
    const type = typeflag === '0' || typeflag === '7' ? 'file' : typeflag === '5' ? 'directory' : 'other';
    members.push({ name, type, data });
  }
  return members;
}
