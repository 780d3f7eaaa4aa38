/**
 * Neuron labels and ground truths from files, for the evaluation:
 *
 * - class names: one a line, line i = the ground truth of unit i, used whole (synonyms included), as the
 *   reference notebooks read `imagenet_labels.txt` (`f.read().split('\n')`); a final line end is allowed, a
 *   blank line elsewhere is an error (it would shift every later class);
 * - other methods' labels as CSV, in one of the layouts of the paper's comparison (Table 1):
 *   - NetDissect `tally.csv` (header `unit,category,label,score,…`): one file per layer, units 1-based, the
 *     `label` column as written (e.g. `scaly`, `heliport-s`, `blue-c`) — the notebook reads
 *     `pd.read_csv(...)['label']` in row order; here rows are put in unit order, unit u → neuron u − 1;
 *   - MILAN (`layer,unit,description`), CLIP-Dissect's `descriptions.csv` (`layer,unit,description,similarity`)
 *     or any CSV with at least the columns `layer`, `unit`, `description`: units 0-based, rows of the
 *     evaluated layer only, sorted by unit (as the notebook filters and sorts MILAN's file).
 *   Either way each unit 0…K−1 must appear exactly once.
 */
import { readTextInput } from '../io/regular-file.js';
import { ClipDissectError } from '../numeric/errors.js';

export type LabelsLayout = 'netdissect' | 'layer-unit-description';

export interface MethodLabels {
  /** The file. */
  source: string;
  layout: LabelsLayout;
  /** Label of unit i, i = 0…K−1. */
  labels: string[];
}

/** A CSV file that is not in an accepted layout, or whose rows do not give each unit once. */
export class LabelsFileError extends ClipDissectError {
  constructor(message: string) {
    super('ERR_LABELS_FILE', message);
  }
}

export const LABELS_LAYOUTS_HELP =
  'NetDissect tally.csv (columns unit,category,label,score,…; units 1-based) or MILAN / CLIP-Dissect / plain (columns layer,unit,description[,…]; units 0-based)';

/**
 * RFC 4180 CSV (pandas' to_csv): fields separated by commas, optionally quoted with `"` (a quote inside a quoted
 * field doubled), records ended by LF or CRLF; a UTF-8 BOM is ignored; a final line end is optional.
 */
export function parseCsv(text: string, source = 'CSV'): string[][] {
  const s = text.replace(/^\uFEFF/, '');
  const rows: string[][] = [];
  let row: string[] = [];
  let field = '';
  let quoted = false;
  let i = 0;
  let line = 1;
  let startedField = false;
  while (i < s.length) {
    const ch = s[i];
    if (quoted) {
      if (ch === '"') {
        if (s[i + 1] === '"') {
          field += '"';
          i += 2;
          continue;
        }
        quoted = false;
        i++;
        const next = s[i];
        if (next !== undefined && next !== ',' && next !== '\n' && next !== '\r')
          throw new LabelsFileError(`${source}: line ${line}: text after a closing quote`);
        continue;
      }
      if (ch === '\n') line++;
      field += ch;
      i++;
      continue;
    }
    if (ch === '"' && !startedField) {
      quoted = true;
      startedField = true;
      i++;
      continue;
    }
    if (ch === ',') {
      row.push(field);
      field = '';
      startedField = false;
      i++;
      continue;
    }
    if (ch === '\r' && s[i + 1] === '\n') i++;
    if (s[i] === '\n') {
      row.push(field);
      rows.push(row);
      row = [];
      field = '';
      startedField = false;
      line++;
      i++;
      continue;
    }
    field += ch;
    startedField = true;
    i++;
  }
  if (quoted) throw new LabelsFileError(`${source}: a quoted field is not closed before the end of the file`);
  if (startedField || row.length > 0) {
    row.push(field);
    rows.push(row);
  }
  return rows;
}

/** Class names, one a line (see the module comment). */
export function parseClassNames(text: string, source: string): string[] {
  const lines = text.replace(/^\uFEFF/, '').split('\n');
  if (lines.length > 0 && lines[lines.length - 1] === '') lines.pop();
  const out = lines.map((l) => (l.endsWith('\r') ? l.slice(0, -1) : l));
  const blank = out.findIndex((l) => l.trim() === '');
  if (out.length === 0)
    throw new LabelsFileError(`${source}: no class names (one class name a line expected)`);
  if (blank >= 0)
    throw new LabelsFileError(
      `${source}: line ${blank + 1} is blank; line i must hold the class of unit i − 1, so blank lines would shift every later class`,
    );
  return out;
}

export async function readClassNames(path: string): Promise<string[]> {
  return parseClassNames(await readTextInput(path, 'ground-truth file'), path);
}

/**
 * The labels of `layer`'s `units` neurons in a CSV of another method (or of CLIP-Dissect), in unit order.
 * Errors: LabelsFileError naming the columns found and the accepted layouts, the layers present, or the units
 * missing / repeated.
 */
export function parseMethodLabels(text: string, source: string, layer: string, units: number): MethodLabels {
  const rows = parseCsv(text, source).filter((r) => !(r.length === 1 && r[0] === ''));
  if (rows.length === 0)
    throw new LabelsFileError(`${source}: empty file; accepted layouts: ${LABELS_LAYOUTS_HELP}`);
  const header = rows[0].map((h) => h.trim());
  const col = (name: string) => header.indexOf(name);
  let layout: LabelsLayout;
  let unitCol: number;
  let labelCol: number;
  let base: number;
  let body = rows.slice(1);
  if (col('unit') >= 0 && col('label') >= 0 && col('category') >= 0 && col('layer') < 0) {
    layout = 'netdissect';
    unitCol = col('unit');
    labelCol = col('label');
    base = 1;
  } else if (col('layer') >= 0 && col('unit') >= 0 && col('description') >= 0) {
    layout = 'layer-unit-description';
    unitCol = col('unit');
    labelCol = col('description');
    base = 0;
    const layerCol = col('layer');
    const present = [...new Set(body.map((r) => r[layerCol]))];
    body = body.filter((r) => r[layerCol] === layer);
    if (body.length === 0)
      throw new LabelsFileError(
        `${source}: no rows of layer '${layer}'; its layers are ${present.map((l) => `'${l}'`).join(', ') || '(none)'}`,
      );
  } else {
    throw new LabelsFileError(
      `${source}: columns ${header.map((h) => `'${h}'`).join(', ')} are not a known layout; accepted layouts: ${LABELS_LAYOUTS_HELP}`,
    );
  }
  const labels: (string | undefined)[] = new Array(units).fill(undefined);
  for (let r = 0; r < body.length; r++) {
    const row = body[r];
    const raw = row[unitCol];
    const u = /^\s*\d+\s*$/.test(raw ?? '') ? Number(raw) - base : Number.NaN;
    if (!(Number.isInteger(u) && u >= 0 && u < units))
      throw new LabelsFileError(
        `${source}: unit ${JSON.stringify(raw)} is not a ${base === 1 ? '1-based' : '0-based'} unit of a layer of ${units} neurons (${base === 1 ? `1…${units}` : `0…${units - 1}`})`,
      );
    if (labels[u] !== undefined) throw new LabelsFileError(`${source}: unit ${raw} appears more than once`);
    labels[u] = row[labelCol] ?? '';
  }
  const missing = labels.flatMap((l, i) => (l === undefined ? [i + base] : []));
  if (missing.length > 0)
    throw new LabelsFileError(
      `${source}: ${missing.length} of the layer's ${units} units have no label (first: unit ${missing[0]}${base === 1 ? ', 1-based' : ''}); every unit needs one`,
    );
  return { source, layout, labels: labels as string[] };
}

export async function readMethodLabels(path: string, layer: string, units: number): Promise<MethodLabels> {
  return parseMethodLabels(await readTextInput(path, 'labels file'), path, layer, units);
}
