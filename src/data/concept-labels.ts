/**
 * Ground-truth concept presence for the trust metrics (`--concept-labels FILE`): a binary images × concepts
 * table, rows in probe order (the rows of the dissection's features).
 *
 * - CSV: a header row naming the concepts (each a column), then one row of 0/1 per probe image.
 * - .npy: an N×M array of 0/1 (any numeric dtype) whose columns are the run's concept set, in order.
 *
 * Read into a map concept name → presence vector; concepts the file lacks fall back to CLIP pseudo-labels.
 */
import { platform } from '#platform';
import { readNpy } from '../io/npy.js';
import { readTextInput } from '../io/regular-file.js';
import { ShapeError } from '../numeric/errors.js';
import { float16ToFloat32 } from '../numeric/float16.js';
import { LabelsFileError, parseCsv } from './labels-files.js';

export type ConceptPresence = Map<string, Uint8Array>;

function binary(v: number, source: string, where: string): number {
  if (v === 0 || v === 1) return v;
  throw new LabelsFileError(`${source}: ${where} is ${v} but concept labels must be 0 or 1`);
}

/** Parses a concept-labels CSV (header of concept names, rows of 0/1) of `images` rows. */
export function parseConceptLabelsCsv(text: string, source: string, images: number): ConceptPresence {
  const rows = parseCsv(text, source).filter((r) => !(r.length === 1 && r[0].trim() === ''));
  if (rows.length === 0)
    throw new LabelsFileError(`${source}: empty file; expected a header row of concept names`);
  const header = rows[0].map((h) => h.trim());
  if (header.every((h) => h === '0' || h === '1'))
    throw new LabelsFileError(
      `${source}: the first row must name the concepts (one column each) but it holds only 0/1 values`,
    );
  const body = rows.slice(1);
  if (body.length !== images)
    throw new ShapeError(
      `${source}: ${body.length} rows of labels but the probe set has ${images} images; one row per image, in probe order`,
    );
  const cols = header.map(() => new Uint8Array(images));
  body.forEach((r, i) => {
    if (r.length !== header.length)
      throw new LabelsFileError(
        `${source}: row ${i + 2} has ${r.length} fields but the header ${header.length}`,
      );
    r.forEach((f, j) => {
      cols[j][i] = binary(
        Number(f.trim() === '' ? Number.NaN : f),
        source,
        `row ${i + 2}, column '${header[j]}'`,
      );
    });
  });
  return new Map(header.map((h, j) => [h, cols[j]]));
}

/**
 * Reads a concept-labels file (CSV or .npy, see the module comment) for a probe set of `images` rows and the
 * concept set `concepts` (the .npy columns).
 */
export async function readConceptLabels(
  path: string,
  images: number,
  concepts: readonly string[],
): Promise<ConceptPresence> {
  if (platform.paths.extname(path).toLowerCase() !== '.npy')
    return parseConceptLabelsCsv(await readTextInput(path, 'concept labels file'), path, images);
  const arr = await readNpy(path);
  const [rows, cols] = arr.shape;
  if (arr.shape.length !== 2 || rows !== images || cols !== concepts.length)
    throw new ShapeError(
      `${path}: concept labels of shape (${arr.shape.join(', ')}) but expected (${images}, ${concepts.length}): one row per probe image, one column per concept of the run`,
    );
  const data = arr.dtype === 'float16' ? float16ToFloat32(arr.data as Uint16Array) : arr.data;
  const out: ConceptPresence = new Map();
  concepts.forEach((c, j) => {
    const v = new Uint8Array(rows);
    for (let i = 0; i < rows; i++) v[i] = binary(Number(data[i * cols + j]), path, `[${i}, ${j}]`);
    out.set(c, v);
  });
  return out;
}
