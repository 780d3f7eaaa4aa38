/**
 * Typed errors of clip-dissect. Every error names the argument or input, the value received and what
 * was expected, so that a user can fix the call without reading the source.
 */

/** Base class of every error that clip-dissect throws on purpose. `code` is stable and machine-readable. */
export class ClipDissectError extends Error {
  readonly code: string;
  constructor(code: string, message: string, options?: { cause?: unknown }) {
    super(message, options);
    this.name = new.target.name;
    this.code = code;
  }
}

/**
 * An option or argument outside its valid range or set (`'topK' must be <= nImages (600) but got 1000`).
 * `option`, when set, is the name of the option at fault exactly as quoted in the message (`'topK'`), so that
 * a front end can say which of its own flags to change (the CLI writes `--top-k`).
 */
export class ArgumentError extends ClipDissectError {
  readonly option?: string;
  constructor(message: string, options?: { cause?: unknown; option?: string }) {
    super('ERR_ARGUMENT', message, options);
    if (options?.option !== undefined) this.option = options.option;
  }
}

/** Matrices whose shapes do not fit together. */
export class ShapeError extends ClipDissectError {
  constructor(message: string, options?: { cause?: unknown }) {
    super('ERR_SHAPE', message, options);
  }
}

/**
 * A matrix (features or activations) holding NaN or ±Infinity (code 'ERR_NON_FINITE'). `count`, `firstRow`
 * and `firstCol` (0-based) say where.
 */
export class NonFiniteError extends ClipDissectError {
  readonly count: number;
  readonly firstRow: number;
  readonly firstCol: number;
  constructor(message: string, where: { count: number; firstRow: number; firstCol: number }) {
    super('ERR_NON_FINITE', message);
    this.count = where.count;
    this.firstRow = where.firstRow;
    this.firstCol = where.firstCol;
  }
}

/** Formats a list of valid choices for an error message: `'a', 'b' or 'c'`. */
export function formatChoices(choices: readonly string[]): string {
  const quoted = choices.map((c) => `'${c}'`);
  if (quoted.length <= 1) return quoted.join('');
  return `${quoted.slice(0, -1).join(', ')} or ${quoted[quoted.length - 1]}`;
}
