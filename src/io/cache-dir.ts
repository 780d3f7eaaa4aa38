/** The cache root that everything cached (hub models, concept sets, probe datasets, features) lives under. */
import { homedir } from 'node:os';
import { join } from 'node:path';

/** `$XDG_CACHE_HOME/clip-dissect`, else `~/.cache/clip-dissect`. */
export function defaultCacheDir(env: Record<string, string | undefined> = process.env): string {
  return join(env['XDG_CACHE_HOME'] || join(homedir(), '.cache'), 'clip-dissect');
}
