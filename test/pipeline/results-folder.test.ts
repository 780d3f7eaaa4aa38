import assert from 'node:assert/strict';
import { cpSync, mkdirSync, readFileSync, symlinkSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { matrixToNpy, npyToMatrix, readNpy, writeNpy } from '../../src/io/npy.js';
import { fileInsideFolder, isInsideFolder } from '../../src/io/paths.js';
import { readResultsMatrix, resultsFilePath } from '../../src/io/results-folder.js';
import { NonFiniteError } from '../../src/numeric/errors.js';
import { buildReport } from '../../src/report/html-report.js';
import { cli, tempDir } from '../helpers/cli.js';
import { writeSyntheticResults } from '../helpers/report-fixture.js';
import { NEEDS_SHARED } from '../models/clip-helpers.js';
import { RESULTS_CONCEPTS, runTinyDissection } from './helpers.js';

/** The parts of args.json that the tests edit. */
interface Args {
  layers: { file: string }[];
  files: { imageFeatures: { file: string } };
}

/** Rewrites `dir`/args.json with `edit`. */
function editArgs(dir: string, edit: (a: Args) => void): void {
  const p = join(dir, 'args.json');
  const a = JSON.parse(readFileSync(p, 'utf8'));
  edit(a);
  writeFileSync(p, JSON.stringify(a));
}

/** Puts NaN at (row, col) and +Infinity at the last element of the .npy matrix `path`. */
async function poison(path: string, row: number, col: number): Promise<void> {
  const m = npyToMatrix(await readNpy(path), path);
  const data = m.data.slice();
  data[row * m.cols + col] = Number.NaN;
  data[data.length - 1] = Number.POSITIVE_INFINITY;
  await writeNpy(path, matrixToNpy({ ...m, data }));
}

describe('path containment', () => {
  it('isInsideFolder compares real paths, also of folders that do not exist yet', async () => {
    const d = tempDir();
    mkdirSync(join(d, 'probe', 'a'), { recursive: true });
    symlinkSync(join(d, 'probe', 'a'), join(d, 'link'));
    assert.equal(await isInsideFolder(join(d, 'probe'), join(d, 'probe', 'out', 'new')), true);
    assert.equal(await isInsideFolder(join(d, 'probe'), join(d, 'link', 'out')), true);
    assert.equal(await isInsideFolder(join(d, 'probe'), join(d, 'probe')), true);
    assert.equal(await isInsideFolder(join(d, 'probe'), join(d, 'probe-out')), false);
    assert.equal(await isInsideFolder(join(d, 'probe'), d), false);
  });
  it('fileInsideFolder refuses absolute paths, .. out of the folder and links to elsewhere', async () => {
    const d = tempDir();
    mkdirSync(join(d, 'run', 'sub'), { recursive: true });
    writeFileSync(join(d, 'secret.npy'), 'x');
    symlinkSync(join(d, 'secret.npy'), join(d, 'run', 'link.npy'));
    const run = join(d, 'run');
    assert.equal((await fileInsideFolder(run, 'sub/layer4.npy')).path, join(run, 'sub', 'layer4.npy'));
    assert.equal((await fileInsideFolder(run, 'sub/../layer4.npy')).path, join(run, 'layer4.npy'));
    assert.match(
      (await fileInsideFolder(run, '/etc/passwd')).error ?? '',
      /'\/etc\/passwd' is an absolute path/,
    );
    assert.match((await fileInsideFolder(run, '../../etc/passwd')).error ?? '', /leads out of the folder/);
    assert.match(
      (await fileInsideFolder(run, 'link.npy')).error ?? '',
      /is a link to .*secret\.npy, outside/,
    );
    assert.match((await fileInsideFolder(run, 42)).error ?? '', /42 is not a file name/);
    await assert.rejects(
      resultsFilePath(run, '../x.npy', "the activations file of layer 'fc'", join(run, 'args.json')),
      (e: Error & { code?: string }) => {
        assert.equal(e.code, 'ERR_RESULTS');
        assert.match(
          e.message,
          /args\.json: the activations file of layer 'fc' '\.\.\/x\.npy' leads out of the folder; the files of a results folder are read only from inside it/,
        );
        return true;
      },
    );
  });
  it('readResultsMatrix refuses NaN / ±Infinity naming the file, the first row and column and the count', async () => {
    const d = tempDir();
    await writeNpy(join(d, 'fc.npy'), matrixToNpy({ rows: 3, cols: 4, data: new Float32Array(12).fill(1) }));
    assert.equal((await readResultsMatrix(d, 'fc.npy')).rows, 3);
    await poison(join(d, 'fc.npy'), 1, 2);
    await assert.rejects(readResultsMatrix(d, 'fc.npy'), (e: unknown) => {
      assert.ok(e instanceof NonFiniteError);
      assert.match(
        e.message,
        /fc\.npy: 2 of 3×4 values are not finite .* the first, NaN, is at row 1, column 2/,
      );
      return true;
    });
    await assert.rejects(
      readResultsMatrix(d, 'gone.npy'),
      /'.*gone\.npy' is missing from the results folder/,
    );
  });
});

describe('report: args.json paths and non-finite activations', () => {
  it('refuses a layer file outside the results folder, and NaN activations', async () => {
    const d = tempDir();
    await writeSyntheticResults(d, [{ name: 'fc', neurons: 6 }], 8, { concepts: 20 });
    for (const file of ['../../etc/passwd', '/etc/passwd']) {
      editArgs(d, (a) => {
        a.layers[0].file = file;
      });
      await assert.rejects(buildReport({ dir: d }), (e: Error) => {
        assert.match(
          e.message,
          /args\.json: the activations file of layer 'fc' .* the files of a results folder are read only from inside it/,
        );
        return true;
      });
    }
    editArgs(d, (a) => {
      a.layers[0].file = 'fc.npy';
    });
    await poison(join(d, 'fc.npy'), 2, 3);
    const r = await cli(['report', d]);
    assert.equal(r.code, 1);
    assert.match(
      r.stderr,
      /fc\.npy: 2 of 8×6 values are not finite \(NaN or ±Infinity\); the first, NaN, is at row 2, column 3/,
    );
  });
});

describe('compose and eval on an edited results folder', { skip: NEEDS_SHARED }, () => {
  let cleanup: () => Promise<void> = async () => undefined;
  const run = tempDir('clip-dissect-run-');
  before(async () => {
    cleanup = (await runTinyDissection(run, RESULTS_CONCEPTS)).cleanup;
  });
  after(() => cleanup());
  const copy = () => {
    const d = tempDir('clip-dissect-edited-');
    cpSync(run, d, { recursive: true });
    return d;
  };
  const compose = (d: string) =>
    cli(['compose', '--results', d, '--layer', 'layer4', '--units', '1', '--pool-size', '3', '--quiet']);

  it('a layer or feature file outside the folder is refused, never read', async () => {
    for (const [edit, re] of [
      [
        (a: Args) => (a.layers[0].file = '../../etc/passwd'),
        /the activations file of layer 'layer4' '\.\.\/\.\.\/etc\/passwd' leads out of the folder/,
      ],
      [(a: Args) => (a.layers[0].file = '/etc/passwd'), /'\/etc\/passwd' is an absolute path/],
      [
        (a: Args) => (a.files.imageFeatures.file = '../I.npy'),
        /the image features file '\.\.\/I\.npy' leads out/,
      ],
    ] as const) {
      const d = copy();
      editArgs(d, edit);
      const r = await compose(d);
      assert.equal(r.code, 1);
      assert.match(r.stderr, re);
      assert.match(r.stderr, /read only from inside it/);
      if (edit.toString().includes('layers')) {
        const e = await cli([
          'eval',
          '--results',
          d,
          '--layer',
          'layer4',
          '--ground-truth',
          join(d, 'none.txt'),
        ]);
        assert.equal(e.code, 1);
        assert.match(e.stderr, re);
      }
    }
  });
  it('NaN in the saved image features, text features or activations: compose and score exit 1 naming the file', async () => {
    for (const file of ['image_features.npy', 'text_features.npy', 'layer4.npy']) {
      const d = copy();
      await poison(join(d, file), 1, 0);
      const re = new RegExp(
        `${file.replace('.', '\\.')}: 2 of \\d+×\\d+ values are not finite .* the first, NaN, is at row 1, column 0`,
      );
      const r = await compose(d);
      assert.equal(r.code, 1);
      assert.match(r.stderr, re);
      const s = await cli(['score', '--results', d, '--layer', 'layer4', '--quiet']);
      assert.equal(s.code, 1, s.stderr);
      assert.match(s.stderr, re);
    }
  });
});
