/** The hashing port on Node's `crypto`. */
import { createHash } from 'node:crypto';
import type { Hashing, Sha256 } from '../types.js';

function incremental(algorithm: 'sha256' | 'md5'): Sha256 {
  const h = createHash(algorithm);
  const self: Sha256 = {
    update: (bytes) => {
      h.update(bytes);
      return self;
    },
    digestHex: () => h.digest('hex'),
  };
  return self;
}

export const nodeHashing: Hashing = {
  sha256: () => incremental('sha256'),
  md5: () => incremental('md5'),
};
