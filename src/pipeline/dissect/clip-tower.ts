/**
 * CLIP opens one tower at a time: the text stage opens the text tower for the concepts and releases it before the
 * image stage opens the vision tower (its session then reuses the freed memory instead of faulting in fresh
 * pages).
 */
import type { ClipEncoder } from '../../models/clip-encoder.js';
import {
  type ClipDtype,
  type ClipPreprocess,
  createOnnxClipEncoder,
} from '../../models/onnx-clip-encoder.js';
import type { StageContext } from './options.js';

/** How dissect opens CLIP (its files are already resolved into `dir`). */
export interface ClipTowerOptions {
  dir: string;
  dtype: ClipDtype;
  device: 'cpu' | 'cuda';
  threads?: number;
  runBatchSize?: number;
  cacheDir: string;
  clipPreprocess: ClipPreprocess;
}

/** Opens one of CLIP's towers; the time goes to 'openClipText' or 'openClipVision'. */
export async function openClipTower(
  o: ClipTowerOptions,
  towers: 'text' | 'vision',
  ctx: Pick<StageContext, 'time'>,
): Promise<ClipEncoder> {
  const t = performance.now();
  const clip = await createOnnxClipEncoder(o.dir, {
    dtype: o.dtype,
    device: o.device,
    threads: o.threads,
    runBatchSize: o.runBatchSize,
    cacheDir: o.cacheDir,
    offline: true,
    towers,
    clipPreprocess: o.clipPreprocess,
  });
  ctx.time(towers === 'text' ? 'openClipText' : 'openClipVision', performance.now() - t);
  return clip;
}
