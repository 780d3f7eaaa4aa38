/** Preload: `#platform` is the in-memory platform in this process (see memory-platform-hooks.ts). */
import { register } from 'node:module';

register('./memory-platform-hooks.js', import.meta.url);
