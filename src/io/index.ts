/** `clip-dissect/io`: NumPy `.npy` files (read, write, to and from a Matrix) and atomic file writes. */

export { type WriteFileAtomicOptions, writeFileAtomic } from './atomic.js';
export {
  encodeNpy,
  matrixToNpy,
  type NpyArray,
  type NpyDType,
  NpyFormatError,
  npyToMatrix,
  parseNpy,
  readNpy,
  writeNpy,
} from './npy.js';
