/**
 * dissect's trust stage: which labels to trust (src/pipeline/trust.ts), and whether the probe set is big enough
 * for the trust figures (a fit and a held-out half).
 */

import { ArgumentError } from '../../numeric/errors.js';
import type { Matrix } from '../../numeric/matrix.js';
import type { SimilarityName } from '../../numeric/similarity-options.js';
import type { LayerResult } from '../../results/descriptions.js';
import { addLayerTrust, type DissectTrustOptions, TRUST_MIN_IMAGES } from '../trust.js';
import type { StageContext } from './options.js';

/**
 * Whether to compute the trust figures over `images` probe images: too few is an error when trust was asked
 * for (`trust` given), else a warning and no trust figures.
 */
export function trustWanted(
  trust: boolean | DissectTrustOptions | undefined,
  images: number,
  ctx: Pick<StageContext, 'warn'>,
): boolean {
  if (trust === false) return false;
  if (images >= TRUST_MIN_IMAGES) return true;
  const msg = `the trust figures need at least ${TRUST_MIN_IMAGES} probe images (a fit and a held-out half) but the probe set has ${images}`;
  if (trust !== undefined) throw new ArgumentError(msg, { option: 'trust' });
  ctx.warn(`${msg}: trust figures skipped (trust: false / --no-trust silences this)`);
  return false;
}

export interface TrustInput {
  layers: LayerResult[];
  features: { imageFeatures: Matrix; textFeatures: Matrix; activations: ReadonlyMap<string, Matrix> };
  similarity: SimilarityName;
  trust: true | DissectTrustOptions | undefined;
  memoryBudget?: number;
  threads?: number;
}

/** Adds the trust figures to every layer of `i.layers` (in place). */
export async function layerTrust(i: TrustInput, ctx: StageContext): Promise<void> {
  const t = performance.now();
  await addLayerTrust(
    i.layers,
    i.features,
    i.similarity,
    {
      ...(i.trust === true || i.trust === undefined ? {} : i.trust),
      memoryBudget: i.memoryBudget,
      threads: i.threads,
    },
    { onProgress: ctx.progress, signal: ctx.signal },
  );
  ctx.time('trust', performance.now() - t);
}
