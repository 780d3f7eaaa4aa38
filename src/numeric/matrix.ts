import { ArgumentError, NonFiniteError, ShapeError } from './errors.js';

/**
 * A dense row-major float32 matrix: element (i, j) is `data[i * cols + j]`, `data.length === rows * cols`.
 * Every matrix in clip-dissect uses this layout; shapes are documented where a matrix is declared,
 * e.g. `activations: Matrix // N×K (images × neurons)`.
 */
export interface Matrix {
  readonly rows: number;
  readonly cols: number;
  readonly data: Float32Array;
}

/** Creates a matrix, zero-filled unless `data` is given (which is used, not copied). */
export function createMatrix(rows: number, cols: number, data?: Float32Array): Matrix {
  if (!Number.isInteger(rows) || rows < 0)
    throw new ArgumentError(`'rows' must be a non-negative integer but got ${rows}`);
  if (!Number.isInteger(cols) || cols < 0)
    throw new ArgumentError(`'cols' must be a non-negative integer but got ${cols}`);
  if (data === undefined) return { rows, cols, data: new Float32Array(rows * cols) };
  if (data.length !== rows * cols) {
    throw new ShapeError(
      `data of length ${data.length} cannot be a ${rows}×${cols} matrix (needs ${rows * cols})`,
    );
  }
  return { rows, cols, data };
}

/** The transpose, as a new matrix (cols×rows). Blocked for cache friendliness. */
export function transpose(m: Matrix): Matrix {
  const { rows, cols, data } = m;
  const out = new Float32Array(rows * cols);
  const B = 32;
  for (let i0 = 0; i0 < rows; i0 += B) {
    const i1 = Math.min(rows, i0 + B);
    for (let j0 = 0; j0 < cols; j0 += B) {
      const j1 = Math.min(cols, j0 + B);
      for (let i = i0; i < i1; i++) {
        const row = i * cols;
        for (let j = j0; j < j1; j++) out[j * rows + i] = data[row + j];
      }
    }
  }
  return { rows: cols, cols: rows, data: out };
}

/** Rows `rows` of `m` (any order, repeats allowed), stacked, as a new matrix. */
export function gatherRows(m: Matrix, rows: ArrayLike<number>): Matrix {
  const out = new Float32Array(rows.length * m.cols);
  for (let i = 0; i < rows.length; i++)
    out.set(m.data.subarray(rows[i] * m.cols, (rows[i] + 1) * m.cols), i * m.cols);
  return { rows: rows.length, cols: m.cols, data: out };
}

/** Where a matrix holds NaN or ±Infinity: how many such values, and the first in row-major order. */
export interface NonFiniteSummary {
  count: number;
  firstRow: number;
  firstCol: number;
  /** The first non-finite value (NaN, Infinity or -Infinity). */
  first: number;
}

/** The NaN / ±Infinity values of `m`, or null when every value is finite. */
export function findNonFinite(m: Matrix): NonFiniteSummary | null {
  const { cols, data } = m;
  let count = 0;
  let first = -1;
  for (let i = 0; i < data.length; i++) {
    // v - v is 0 for a finite v and NaN for NaN and ±Infinity
    const v = data[i];
    if (v - v !== 0) {
      if (count === 0) first = i;
      count++;
    }
  }
  if (count === 0) return null;
  return { count, firstRow: Math.floor(first / cols), firstCol: first % cols, first: data[first] };
}

/**
 * Throws a NonFiniteError unless every value of `m` is finite. `what` names the matrix (a file path, or its
 * role and origin) and starts the message; `rowName` names a row (e.g. its probe image) when the caller knows.
 */
export function checkFinite(m: Matrix, what: string, rowName?: (row: number) => string): void {
  const bad = findNonFinite(m);
  if (bad === null) return;
  const row = rowName ? `row ${bad.firstRow} (${rowName(bad.firstRow)})` : `row ${bad.firstRow}`;
  throw new NonFiniteError(
    `${what}: ${bad.count} of ${m.rows}×${m.cols} values are not finite (NaN or ±Infinity); the first, ${bad.first}, is at ${row}, column ${bad.firstCol} (0-based); labels computed from them would be meaningless`,
    bad,
  );
}
