/**
 * Path containment, on real paths (symbolic links resolved): whether a folder lies inside another, and whether
 * a file named by a results folder's args.json stays inside that folder.
 */
import { platform } from '#platform';

const { basename, dirname, isAbsolute, join, relative, resolve } = platform.paths;

/**
 * The real path of `path` (symbolic links resolved) even when it does not exist yet: the real path of its
 * deepest existing ancestor, joined with the rest.
 */
async function realPathOf(path: string): Promise<string> {
  const abs = resolve(path);
  try {
    return await platform.files.realpath(abs);
  } catch {
    const parent = dirname(abs);
    if (parent === abs) return abs;
    return join(await realPathOf(parent), basename(abs));
  }
}

/** Whether `child` is `parent` or lies under it (lexically: both absolute, normalised). */
function under(parent: string, child: string): boolean {
  const rel = relative(parent, child);
  return rel === '' || (!rel.startsWith('..') && !isAbsolute(rel));
}

/** Whether `child` is the folder `parent` or lies inside it, comparing real paths (links resolved). */
export async function isInsideFolder(parent: string, child: string): Promise<boolean> {
  return under(await realPathOf(parent), await realPathOf(child));
}

/**
 * `file` (a path relative to the folder `dir`, as a results folder's args.json names its files) joined to
 * `dir`, or an error message when it leaves the folder: an absolute path, `..` out of it, or a symbolic link
 * whose target is outside it.
 */
export async function fileInsideFolder(
  dir: string,
  file: unknown,
): Promise<{ path: string; error?: undefined } | { path?: undefined; error: string }> {
  if (typeof file !== 'string' || file === '' || file.includes('\0'))
    return { error: `${JSON.stringify(file)} is not a file name` };
  if (isAbsolute(file)) return { error: `'${file}' is an absolute path` };
  const path = join(dir, file);
  if (!under(resolve(dir), resolve(path))) return { error: `'${file}' leads out of the folder` };
  if (!(await isInsideFolder(dir, path)))
    return { error: `'${file}' is a link to ${await realPathOf(path)}, outside the folder` };
  return { path };
}
