/**
 * What a similarity function is to the rest of the code: one SimilarityDefinition per function (one file in this
 * folder), listed once in ./index.ts. Its name, options, checks, reference math, the fast engine's kernel for it
 * and its help line all live in that file. Internal: the public names are re-exported by similarity-options.ts.
 */
import { ArgumentError } from '../errors.js';
import type { Matrix } from '../matrix.js';

export interface SimilarityInputs {
  /** CLIP image features, N×d (rows need not be normalised). */
  imageFeatures: Matrix;
  /** CLIP text features, M×d. */
  textFeatures: Matrix;
  /** Target activations of one layer, N×K. */
  activations: Matrix;
}

/**
 * The fast engine's kernel (src/compute/similarity/) that computes a function, with that kernel's parameters:
 * a new function that fits an existing kernel needs no engine code.
 * - pmi: S[k,m] = Σ_r log(c_r + p_r·Q[i_r,m]) over each neuron's topK images, Q = softmax(a·P), minus λ·prior.
 * - rank_reorder: the order of each neuron's top images by CLIP similarity against their order by activation.
 * - cos: cosine of the activation column and the CLIP similarity column.
 * - cos_cubed: the same after centring and cubing both columns, norms clipped below at minNorm.
 */
export type SimilarityKernel =
  | { kind: 'pmi'; topK: number; a: number; lambda: number; p: Float64Array; c: Float64Array }
  | { kind: 'rank_reorder'; topFraction: number; p: number; scaleP: number; seed: number }
  | { kind: 'cos' }
  | { kind: 'cos_cubed'; minNorm: number };

export interface SimilarityDefinition<O extends object> {
  /** One line for the CLI's help and the docs. */
  description: string;
  /** The defaults (paper Appendix A.1); their keys are the only options the function takes. */
  defaults: Readonly<O>;
  /** Checks options with the defaults filled in, for `nImages` probe images (ArgumentError naming the option). */
  check(o: O, nImages: number, name: string): void;
  /** The full K×M score matrix, computed plainly from the formulas (float64 where it matters). */
  reference(inputs: SimilarityInputs, o: O): Matrix;
  /** The fast engine's kernel for these options. */
  kernel(o: O): SimilarityKernel;
  /**
   * The options for a run on `rows` of the `nImages` probe images they were chosen for (the trust figures'
   * bootstrap and half-set reruns): options that count images are scaled so that the run means the same.
   * Absent: the options as they are.
   */
  forRows?(o: O, rows: number, nImages: number): O;
  /**
   * The options for a probe set of only `nImages` images (sanity's synthetic neurons), when the defaults do not
   * suit so few: e.g. pmi's topK at most half the images. Absent: the options as they are.
   */
  forSmallProbe?(o: O, nImages: number): O;
}

/** The options type of a definition. */
export type OptionsOf<D> = D extends SimilarityDefinition<infer O> ? O : never;

/** Where a CLI user sets the option: every hyperparameter is a `--param KEY=VALUE` flag. */
export const cliHint = (key: string) => ` (CLI: --param ${key}=…)`;

/** Throws unless `v` is a finite number for which `ok` holds; `what` says what was expected. */
export function checkNumber(
  fn: string,
  key: string,
  v: unknown,
  ok: (x: number) => boolean,
  what: string,
): void {
  if (typeof v !== 'number' || !Number.isFinite(v) || !ok(v)) {
    throw new ArgumentError(`${fn}: '${key}' must be ${what} but got ${String(v)}${cliHint(key)}`, {
      option: key,
    });
  }
}
