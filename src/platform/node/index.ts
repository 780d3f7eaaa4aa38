/**
 * The Node adapter: the one place (besides the CLI) that imports node:*, sharp and worker_threads. The core
 * reaches it as `import { platform } from '#platform'` and sees only the interfaces of ../types.ts.
 */
import type { Platform } from '../types.js';
import { nodeFiles } from './files.js';
import { nodeHashing } from './hashing.js';
import { nodeHost } from './host.js';
import { nodeImages } from './images.js';
import { nodePaths } from './paths.js';
import { nodeWorkers } from './workers.js';

export const platform: Platform = {
  name: 'node',
  files: nodeFiles,
  paths: nodePaths,
  images: nodeImages,
  hashing: nodeHashing,
  workers: nodeWorkers,
  host: nodeHost,
};
