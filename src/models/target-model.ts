/**
 * The network being dissected ("target model"): its layers, named like the PyTorch modules they come from
 * (`layer4`, `layer4.1`, `fc`, `features.43`, `encoder.layers.encoder_layer_11`), and their pooled activations,
 * one row per image and one column per neuron. Runtime types (onnxruntime sessions, protobuf messages) stay
 * inside src/models; everything here is plain data.
 */
import { ArgumentError, formatChoices } from '../numeric/errors.js';
import type { Matrix } from '../numeric/matrix.js';
import { closestNames } from '../numeric/strings.js';

/** How a 4-D (image-shaped) activation map becomes one number per channel: mean or max over H×W. */
export type PoolMode = 'avg' | 'max';
export const POOL_MODES: readonly PoolMode[] = ['avg', 'max'];

/** How a 3-D token sequence becomes one number per hidden unit: token 0 (the class token) or the token mean. */
export type TokenMode = 'cls' | 'mean';
export const TOKEN_MODES: readonly TokenMode[] = ['cls', 'mean'];

/**
 * What a layer's output looks like, per image:
 * - `spatial`: C×H×W (H×W×C with `channelsLast`), neurons = channels, pooled with PoolMode;
 * - `tokens`: T×C (a transformer's sequence, batch-first or sequence-first), neurons = hidden size, reduced with
 *   TokenMode;
 * - `vector`: C (a linear layer or the logits), neurons = features, used as is;
 * - `unsupported`: anything else (other ranks, integer tensors, a batch axis folded into another axis); see
 *   `LayerInfo.reason`. It cannot be dissected.
 */
export type LayerKind = 'spatial' | 'tokens' | 'vector' | 'unsupported';

/** One dissectable layer of a target model. */
export interface LayerInfo {
  /** The PyTorch module path (`layer4.1`), or the raw tensor name when a tensor was asked for by name. */
  readonly name: string;
  /** The model tensor that holds the layer's output. */
  readonly tensor: string;
  /** The output's shape; the batch axis is the string 'batch' (e.g. ['batch', 512, 7, 7]). */
  readonly shape: readonly (number | string)[];
  /** Neurons (columns of the activation matrix): channels, hidden size or features. 0 when unsupported. */
  readonly neurons: number;
  readonly kind: LayerKind;
  /** For `tokens`: whether the sequence axis comes before the batch axis ([T, B, C]). */
  readonly sequenceFirst?: boolean;
  /** Why the layer is `unsupported`. */
  readonly reason?: string;
  /** For modules called more than once (a shared ReLU): which call this is (0-based); later calls get `_1`, `_2`. */
  readonly call?: number;
  /** Things to know before trusting this layer's activations (e.g. a BatchNorm folded into this Conv). */
  readonly warnings: readonly string[];
}

/** A network whose layers can be dissected. Holds native memory: call `release()` (or use `await using`). */
export interface TargetModel {
  /** Per image: [channels, height, width]; `activations` takes NCHW batches of this shape. */
  readonly inputShape: readonly [number, number, number];
  /** Model-wide findings (folded BatchNorms, missing module scopes), for the user to read. */
  readonly warnings: readonly string[];
  /** Every module whose output was found in the model, in graph order. */
  layers(): LayerInfo[];
  /** Layer information for module names or raw tensor names (these are looked up on demand). */
  describe(layers: LayerSelection): Promise<LayerInfo[]>;
  /**
   * Pooled activations of the given layers for a batch of images: `batch` is NCHW float32 of
   * batchSize×C×H×W; the result maps each requested layer name to a batchSize×K matrix (K = neurons).
   */
  activations(
    batch: Float32Array,
    batchSize: number,
    layers: readonly string[],
    pool: PoolMode,
  ): Promise<Map<string, Matrix>>;
  /**
   * Builds what activations() needs for these layers and pooling (an onnxruntime session) without running it,
   * so that the caller can do it while images are being prepared. Optional to call.
   */
  prepare(layers: readonly string[], pool: PoolMode): Promise<void>;
  release(): Promise<void>;
  [Symbol.asyncDispose](): Promise<void>;
}

/** A layer selection: a comma-separated string, a list of names, or a predicate over the available names. */
export type LayerSelection = string | readonly string[] | ((name: string) => boolean);

export interface ResolveLayersOptions {
  /** Names that are valid although not listed in `available` (e.g. raw tensor names of the model). */
  isAlsoValid?: (name: string) => boolean;
  /** How names are called in messages; default 'layer'. */
  what?: string;
  /** Appended to the unknown-name message of a given name (e.g. why that layer is missing from the export). */
  hint?: (name: string) => string | undefined;
}

/**
 * Normalises a layer selection into a list of distinct names, in the order given (for a predicate: in the order
 * of `available`). An unknown name is an ArgumentError listing the available names, closest first.
 */
export function resolveLayers(
  selection: LayerSelection,
  available: readonly string[],
  options: ResolveLayersOptions = {},
): string[] {
  const what = options.what ?? 'layer';
  let names: string[];
  if (typeof selection === 'function') {
    names = available.filter((n) => selection(n));
    if (names.length === 0)
      throw new ArgumentError(
        `the ${what} predicate selects none of the ${available.length} available ${what}s ${listNames(available)}`,
      );
    return names;
  }
  if (typeof selection === 'string') names = selection.split(',');
  else if (Array.isArray(selection)) names = [...selection];
  else
    throw new ArgumentError(
      `'layers' must be a comma-separated string, an array of names or a predicate but got ${typeof selection}`,
    );
  names = names.map((n) => {
    if (typeof n !== 'string') throw new ArgumentError(`${what} names must be strings but got ${typeof n}`);
    return n.trim();
  });
  names = names.filter((n) => n.length > 0);
  if (names.length === 0)
    throw new ArgumentError(
      `no ${what} selected (got ${JSON.stringify(selection)}); choose from ${listNames(available)}`,
    );
  const known = new Set(available);
  const out: string[] = [];
  const seen = new Set<string>();
  for (const n of names) {
    if (seen.has(n)) continue;
    if (!known.has(n) && !options.isAlsoValid?.(n)) {
      const hint = options.hint?.(n);
      throw new ArgumentError(
        `unknown ${what} '${n}'${hint ? ` (${hint})` : ''}; ${
          available.length === 0
            ? `this model has no named ${what}s`
            : `closest ${what}s first: ${listNames(closestNames(n, available))}`
        }`,
      );
    }
    seen.add(n);
    out.push(n);
  }
  return out;
}

const MAX_LISTED = 30;

function listNames(names: readonly string[]): string {
  if (names.length <= MAX_LISTED) return formatChoices(names);
  return `${formatChoices(names.slice(0, MAX_LISTED))} … and ${names.length - MAX_LISTED} more`;
}

/**
 * The network's top-level blocks, the layers a dissection looks at when none are chosen (`layers` as listed by
 * TargetModel.layers(), in graph order): from the root, descend into the module holding more than half of all
 * modules (a backbone such as Hugging Face's `resnet` or `resnet.encoder`), then take the largest run of
 * sibling containers named alike up to a trailing number (`layer1`…`layer4`, `resnet.encoder.stages.0`…`3`,
 * `vit.encoder.layer.0`…`11`), preceded by the first sibling when it is a leaf with a spatial output (the stem
 * conv, torchvision's `conv1`, as in the paper's ResNet layers conv1, layer1…layer4). Without such a run: the
 * containers at that level, else every module there.
 */
export function topLevelBlocks(layers: readonly Pick<LayerInfo, 'name' | 'kind'>[]): string[] {
  const usable = layers.filter((l) => l.kind !== 'unsupported');
  const names = usable.map((l) => l.name);
  const kind = new Map(usable.map((l) => [l.name, l.kind]));
  const listed = new Set(names);
  /** The nearest listed ancestor ('' for the root). */
  const parent = (n: string): string => {
    const parts = n.split('.');
    for (let i = parts.length - 1; i > 0; i--) {
      const p = parts.slice(0, i).join('.');
      if (listed.has(p)) return p;
    }
    return '';
  };
  const size = (n: string) => (n === '' ? names.length : names.filter((m) => m.startsWith(`${n}.`)).length);
  let node = '';
  for (;;) {
    const kids = names.filter((n) => parent(n) === node);
    if (kids.length === 0) return [];
    const total = size(node);
    const big = kids.find((k) => size(k) > total / 2);
    if (big !== undefined) {
      node = big;
      continue;
    }
    const containers = kids.filter((k) => size(k) > 0);
    const groups = new Map<string, string[]>();
    for (const k of containers) {
      if (!/\d$/.test(k)) continue;
      const stem = k.replace(/\d+$/, '');
      groups.set(stem, [...(groups.get(stem) ?? []), k]);
    }
    let best: string[] = [];
    for (const g of groups.values()) if (g.length > best.length) best = g;
    if (best.length < 2) return containers.length > 0 ? containers : kids;
    const first = kids[0];
    if (!best.includes(first) && size(first) === 0 && kind.get(first) === 'spatial') return [first, ...best];
    return best;
  }
}
