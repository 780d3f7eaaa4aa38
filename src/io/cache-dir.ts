/** The cache root that everything cached (hub models, concept sets, probe datasets, features) lives under. */
import { platform } from '#platform';

/**
 * `$XDG_CACHE_HOME/clip-dissect`, else `~/.cache/clip-dissect`. `env`: the variables to read instead of the
 * process environment.
 */
export function defaultCacheDir(env?: Readonly<Record<string, string | undefined>>): string {
  const { join } = platform.paths;
  const xdg = env ? env['XDG_CACHE_HOME'] : platform.host.env('XDG_CACHE_HOME');
  return join(xdg || join(platform.host.homedir(), '.cache'), 'clip-dissect');
}
