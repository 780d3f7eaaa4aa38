/**
 * Reading the files of a results folder (what `dissect --out` wrote) safely: every file that its args.json
 * names is read only from inside the folder, and saved matrices must hold finite values.
 */
import { platform } from '#platform';
import { ClipDissectError } from '../numeric/errors.js';
import { checkFinite, type Matrix } from '../numeric/matrix.js';
import { fsErrorCode } from './files.js';
import { npyToMatrix, readNpy } from './npy.js';
import { fileInsideFolder } from './paths.js';

const { join } = platform.paths;

/**
 * The path of a results file that args.json (`argsPath`) names: `file` joined to the results folder `dir`, or an
 * ERR_RESULTS error when it would lead out of the folder (absolute, `..`, a link to elsewhere). What a run's
 * args.json records as results files is read only from inside its folder; its inputs (concept file, models)
 * are named by their own paths.
 */
export async function resultsFilePath(
  dir: string,
  file: unknown,
  what: string,
  argsPath: string,
): Promise<string> {
  const r = await fileInsideFolder(dir, file);
  if (r.error !== undefined)
    throw new ClipDissectError(
      'ERR_RESULTS',
      `${argsPath}: ${what} ${r.error}; the files of a results folder are read only from inside it (${dir}): was args.json edited?`,
    );
  return r.path;
}

/**
 * A saved matrix of a results folder (`file` relative to `dir`, checked with resultsFilePath): missing files,
 * and NaN or ±Infinity in it, are ERR_RESULTS / NonFiniteError errors naming the file.
 */
export async function readResultsMatrix(dir: string, file: string, what = 'results file'): Promise<Matrix> {
  const path = await resultsFilePath(dir, file, what, join(dir, 'args.json'));
  let m: Matrix;
  try {
    m = npyToMatrix(await readNpy(path), path);
  } catch (e) {
    if (fsErrorCode((e as Error).cause) === 'ENOENT')
      throw new ClipDissectError('ERR_RESULTS', `'${path}' is missing from the results folder`, { cause: e });
    throw e;
  }
  checkFinite(m, path);
  return m;
}
