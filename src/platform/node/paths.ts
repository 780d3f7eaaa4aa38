/** The paths port on Node's `path`. */
import * as path from 'node:path';
import { fileURLToPath } from 'node:url';
import type { Paths } from '../types.js';

export const nodePaths: Paths = {
  sep: path.sep,
  join: (...parts) => path.join(...parts),
  resolve: (...parts) => path.resolve(...parts),
  relative: (from, to) => path.relative(from, to),
  dirname: (p) => path.dirname(p),
  basename: (p, suffix) => path.basename(p, suffix),
  extname: (p) => path.extname(p),
  isAbsolute: (p) => path.isAbsolute(p),
  normalize: (p) => path.normalize(p),
  fromFileUrl: (url) => fileURLToPath(url),
};
