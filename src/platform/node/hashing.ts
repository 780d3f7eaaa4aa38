/** The hashing port on Node's `crypto`. */
import { createHash } from 'node:crypto';
import type { Hashing, Sha256 } from '../types.js';

export const nodeHashing: Hashing = {
  sha256: (): Sha256 => {
    const h = createHash('sha256');
    const self: Sha256 = {
      update: (bytes) => {
        h.update(bytes);
        return self;
      },
      digestHex: () => h.digest('hex'),
    };
    return self;
  },
};
