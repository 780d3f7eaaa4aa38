/**
 * Concept sets: one concept a line. Blank lines are dropped BEFORE indexing (the reference indexes the
 * raw lines when it writes labels, which shifts every label after a blank line); a duplicate keeps its
 * first index, is dropped and reported.
 */
import { ClipDissectError } from '../numeric/errors.js';

export interface ConceptSet {
  /** The concepts, unique, in file order; concept i is row i of the text features. */
  concepts: string[];
  /** Where it came from (a path or a built-in name). */
  source: string;
  /** 1-based line of each concept in the source text. */
  lines: number[];
  /** Concepts that occurred again (each later occurrence): dropped, the first one kept. */
  duplicates: { concept: string; line: number; firstLine: number }[];
  /** Number of non-blank lines, duplicates included (the row count of reference-computed text features). */
  nonBlankLines: number;
  /** For each non-blank line in order, the index of its concept in `concepts`. */
  lineToConcept: Int32Array;
}

export class ConceptSetError extends ClipDissectError {
  constructor(message: string) {
    super('ERR_CONCEPTS', message);
  }
}

/** Parses concept text (LF or CRLF line ends; a UTF-8 BOM is ignored). */
export function parseConcepts(text: string, source: string): ConceptSet {
  const raw = text.replace(/^\uFEFF/, '').split('\n');
  const concepts: string[] = [];
  const lines: number[] = [];
  const duplicates: ConceptSet['duplicates'] = [];
  const first = new Map<string, number>();
  const lineToConcept: number[] = [];
  for (let i = 0; i < raw.length; i++) {
    const line = raw[i].endsWith('\r') ? raw[i].slice(0, -1) : raw[i];
    if (line.trim() === '') continue;
    const seen = first.get(line);
    if (seen !== undefined) {
      duplicates.push({ concept: line, line: i + 1, firstLine: lines[seen] });
      lineToConcept.push(seen);
      continue;
    }
    first.set(line, concepts.length);
    lineToConcept.push(concepts.length);
    concepts.push(line);
    lines.push(i + 1);
  }
  if (concepts.length === 0) {
    throw new ConceptSetError(
      `${source}: the concept set is empty (no non-blank lines); expected one concept per line`,
    );
  }
  return {
    concepts,
    source,
    lines,
    duplicates,
    nonBlankLines: lineToConcept.length,
    lineToConcept: Int32Array.from(lineToConcept),
  };
}

/** One warning line per duplicate (capped), for the CLI to print. */
export function duplicateWarnings(set: ConceptSet, max = 5): string[] {
  const n = set.duplicates.length;
  if (n === 0) return [];
  const shown = set.duplicates
    .slice(0, max)
    .map((d) => `'${d.concept}' (line ${d.line}, first at line ${d.firstLine})`)
    .join(', ');
  return [
    `${set.source}: ${n} duplicate concept${n === 1 ? '' : 's'} dropped, each keeps its first index: ${shown}${n > max ? `, and ${n - max} more` : ''}`,
  ];
}
