import assert from 'node:assert/strict';
import { existsSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, it } from 'node:test';
import { matrixToNpy, npyToMatrix, readNpy, writeNpy } from '../../src/io/npy.js';
import { cli, tempDir } from '../helpers/cli.js';
import { makeFifo } from '../helpers/data.js';
import { GOLDEN_DIR } from '../helpers/golden.js';

const planted = (f: string) => join(GOLDEN_DIR, 'planted', f);

function conceptFile(dir: string, lines: string[]): string {
  const p = join(dir, 'concepts.txt');
  writeFileSync(p, lines.join('\n'));
  return p;
}

const names = Array.from({ length: 30 }, (_, i) => `concept ${i}`);

async function run(extra: string[], concepts = names) {
  const dir = tempDir();
  const out = join(dir, 'out');
  const args = [
    'similarity',
    '--image-features',
    planted('I.npy'),
    '--text-features',
    planted('T.npy'),
    '--activations',
    planted('A.npy'),
    '--concepts',
    conceptFile(dir, concepts),
    '--out',
    out,
    ...extra,
  ];
  return { ...(await cli(args)), out, dir };
}

/** The planted inputs with the one of `flag` replaced by `path`; concepts written into `dir`. */
function runWithInput(flag: string, path: string, dir: string, out: string) {
  const inputs: Record<string, string> = {
    '--image-features': planted('I.npy'),
    '--text-features': planted('T.npy'),
    '--activations': planted('A.npy'),
    [flag]: path,
  };
  return cli([
    'similarity',
    ...Object.entries(inputs).flat(),
    ...['--concepts', conceptFile(dir, names), '--out', out],
  ]);
}

describe('clip-dissect similarity', () => {
  it('--json prints every neuron as JSON, as descriptions.csv has it', async () => {
    const r = await run(['--layer-name', 'layer4', '--quiet', '--json']);
    assert.equal(r.code, 0, r.stderr);
    const j = JSON.parse(r.stdout);
    assert.equal(j.layer, 'layer4');
    assert.equal(j.similarity, 'soft_wpmi');
    assert.equal(j.neurons.length, 30);
    assert.deepEqual(j.neurons[7], { ...j.neurons[7], unit: 7, label: 'concept 7', dead: false });
    const csv = readFileSync(join(r.out, 'descriptions.csv'), 'utf8').trim().split('\n');
    assert.equal(j.neurons[7].score, Math.fround(Number(csv[8].split(',')[3])));
    assert.ok(j.files.some((f: string) => f.endsWith('descriptions.csv')));
  });
  it('--layer, the old spelling of --layer-name, warns and works; both at once is a usage error', async () => {
    const r = await run(['--layer', 'layer4', '--quiet']);
    assert.equal(r.code, 0, r.stderr);
    assert.equal(r.stderr, 'warning: similarity --layer is deprecated; use --layer-name\n');
    assert.match(readFileSync(join(r.out, 'descriptions.csv'), 'utf8'), /^layer4,0,/m);
    const both = await run(['--layer', 'a', '--layer-name', 'b']);
    assert.equal(both.code, 2);
    assert.match(both.stderr, /--layer and --layer-name are the same flag; give --layer-name only/);
  });
  it('labels the planted neurons and writes descriptions.csv, neurons.json, args.json', async () => {
    const r = await run(['--layer-name', 'layer4', '--quiet']);
    assert.equal(r.code, 0, r.stderr);
    assert.equal(r.stderr, '');
    assert.match(r.stdout, /soft_wpmi: 30 neurons × 30 concepts over 200 images/);
    const csv = readFileSync(join(r.out, 'descriptions.csv'), 'utf8').trim().split('\n');
    assert.equal(csv[0], 'layer,unit,description,similarity');
    assert.equal(csv.length, 31);
    for (let k = 0; k < 30; k++) {
      const [layer, unit, desc, sim] = csv[k + 1].split(',');
      assert.equal(layer, 'layer4');
      assert.equal(unit, String(k));
      assert.equal(desc, `concept ${k}`);
      assert.ok(Number.isFinite(Number(sim)));
    }
    const neurons = JSON.parse(readFileSync(join(r.out, 'neurons.json'), 'utf8'));
    assert.equal(neurons.neurons.length, 30);
    const n7 = neurons.neurons[7];
    assert.equal(n7.label, 'concept 7');
    assert.equal(n7.top.length, 5);
    assert.equal(n7.top[0].concept, 'concept 7');
    assert.ok(n7.top[0].score >= n7.top[1].score);
    assert.equal(n7.topImages.length, 10);
    assert.equal(n7.dead, false);
    const args = JSON.parse(readFileSync(join(r.out, 'args.json'), 'utf8'));
    assert.equal(args.similarity, 'soft_wpmi');
    assert.equal(args.options.topK, 100);
    assert.equal(args.inputs.activations.shape.join('x'), '200x30');
    assert.match(args.inputs.imageFeatures.sha256, /^[0-9a-f]{64}$/);
  });

  it('takes any function and its hyperparameters, and saves the matrix for numpy', async () => {
    const r = await run([
      '--similarity',
      'wpmi',
      '--top-k',
      '10',
      '--param',
      'lam=0.5',
      '--save-matrix',
      '--top',
      '3',
      '-q',
    ]);
    assert.equal(r.code, 0, r.stderr);
    const args = JSON.parse(readFileSync(join(r.out, 'args.json'), 'utf8'));
    assert.deepEqual(args.options, { topK: 10, a: 2, lambda: 0.5, minProb: 1e-7 });
    const m = npyToMatrix(await readNpy(join(r.out, 'similarity.npy')), 'similarity.npy');
    assert.equal(m.rows, 30);
    assert.equal(m.cols, 30);
    for (let k = 0; k < 30; k++) {
      let best = 0;
      for (let c = 1; c < 30; c++) if (m.data[k * 30 + c] > m.data[k * 30 + best]) best = c;
      assert.equal(best, k);
    }
    assert.equal(JSON.parse(readFileSync(join(r.out, 'neurons.json'), 'utf8')).neurons[0].top.length, 3);
  });

  it('accepts text features computed with duplicate concepts kept (the reference) and warns', async () => {
    const dup = [...names.slice(0, 5), 'concept 2', ...names.slice(5)];
    // 31 rows: insert a copy of row 2 after row 4
    const T = npyToMatrix(await readNpy(planted('T.npy')), 'T');
    const d = T.cols;
    const rows = [0, 1, 2, 3, 4, 2, ...Array.from({ length: 25 }, (_, i) => i + 5)];
    const data = new Float32Array(rows.length * d);
    rows.forEach((r, i) => {
      data.set(T.data.subarray(r * d, (r + 1) * d), i * d);
    });
    const dir = tempDir();
    const t31 = join(dir, 'T31.npy');
    await writeNpy(t31, matrixToNpy({ rows: rows.length, cols: d, data }));
    const out = join(dir, 'out');
    const r = await cli([
      'similarity',
      '--image-features',
      planted('I.npy'),
      '--text-features',
      t31,
      '--activations',
      planted('A.npy'),
      '--concepts',
      conceptFile(dir, dup),
      '--out',
      out,
      '--quiet',
    ]);
    assert.equal(r.code, 0, r.stderr);
    assert.match(
      r.stderr,
      /warning: .*concepts.txt: 1 duplicate concept dropped, each keeps its first index: 'concept 2' \(line 6, first at line 3\)/,
    );
    const csv = readFileSync(join(out, 'descriptions.csv'), 'utf8').trim().split('\n');
    assert.equal(csv[13], `layer,12,concept 12,${csv[13].split(',')[3]}`);
  });

  it('reports progress on stderr unless --quiet', async () => {
    const r = await run([]);
    assert.equal(r.code, 0);
    assert.match(r.stderr, /similarity \(soft_wpmi\): \d+\/\d+ blocks done in \d/);
  });
});

describe('clip-dissect similarity: errors name the input, the value and what was expected (exit 1)', () => {
  it('feature dimensions that differ', async () => {
    const r = await cli([
      'similarity',
      '--image-features',
      planted('I.npy'),
      '--text-features',
      join(GOLDEN_DIR, 'random', 'T.npy'),
      '--activations',
      planted('A.npy'),
      '--concepts',
      conceptFile(tempDir(), names.slice(0, 40).concat(Array.from({ length: 10 }, (_, i) => `x${i}`))),
      '--out',
      tempDir(),
    ]);
    assert.equal(r.code, 1);
    assert.match(
      r.stderr,
      /image features .*planted\/I.npy \(200×32\) and text features .*random\/T.npy \(40×16\) have different feature dimensions \(32 vs 16\)/,
    );
  });
  it('row counts of I and A that differ', async () => {
    const r = await cli([
      'similarity',
      '--image-features',
      planted('I.npy'),
      '--text-features',
      planted('T.npy'),
      '--activations',
      join(GOLDEN_DIR, 'random', 'A.npy'),
      '--concepts',
      conceptFile(tempDir(), names),
      '--out',
      tempDir(),
    ]);
    assert.equal(r.code, 1);
    assert.match(
      r.stderr,
      /image features .*I.npy have 200 rows \(200×32\) but activations .*random\/A.npy have 64 \(64×12\)/,
    );
  });
  it('text rows that are not the concept count', async () => {
    const r = await run([], names.slice(0, 29));
    assert.equal(r.code, 1);
    assert.match(
      r.stderr,
      /text features .*T.npy have 30 rows \(30×32\) but concept set .*concepts.txt has 29 concepts; they need one row per concept/,
    );
  });
  it('top_k larger than the probe set', async () => {
    const r = await run(['--top-k', '500']);
    assert.equal(r.code, 1);
    assert.match(
      r.stderr,
      /soft_wpmi: 'topK' must be <= nImages \(200\) but got 500: the probe set in .*A.npy has only 200 images/,
    );
  });
  it('an unreadable or malformed npy file', async () => {
    const dir = tempDir();
    const bad = join(dir, 'bad.npy');
    writeFileSync(bad, 'not numpy');
    const r1 = await cli([
      'similarity',
      '--image-features',
      bad,
      '--text-features',
      planted('T.npy'),
      '--activations',
      planted('A.npy'),
      '--concepts',
      conceptFile(dir, names),
      '--out',
      dir,
    ]);
    assert.equal(r1.code, 1);
    assert.match(r1.stderr, /bad.npy: not a .npy file/);
    const r2 = await cli([
      'similarity',
      '--image-features',
      join(dir, 'missing.npy'),
      '--text-features',
      planted('T.npy'),
      '--activations',
      planted('A.npy'),
      '--concepts',
      conceptFile(dir, names),
      '--out',
      dir,
    ]);
    assert.equal(r2.code, 1);
    assert.match(r2.stderr, /image features '.*missing.npy' cannot be read \(ENOENT\)/);
  });
  it('a FIFO or /dev/zero given as an .npy input is refused without being read', {
    timeout: 20_000,
  }, async () => {
    const dir = tempDir();
    const fifo = makeFifo(join(dir, 'A.npy'));
    for (const [flag, path, re] of [
      ['--activations', fifo, /activations: .*A\.npy is a FIFO \(named pipe\), not a regular file/],
      ['--activations', '/dev/zero', /activations: \/dev\/zero is a character device, not a regular file/],
      ['--image-features', '/dev/zero', /image features: \/dev\/zero is a character device/],
    ] as const) {
      const r = await runWithInput(flag, path, dir, join(dir, 'out'));
      assert.equal(r.code, 1, r.stderr);
      assert.match(r.stderr, re);
    }
    assert.ok(!existsSync(join(dir, 'out')), 'nothing written');
  });
  it('NaN or ±Infinity in any input .npy: exit 1 naming the file, the first bad row and column and the count', async () => {
    const dir = tempDir();
    for (const [flag, file, role] of [
      ['--image-features', 'I.npy', 'image features'],
      ['--text-features', 'T.npy', 'text features'],
      ['--activations', 'A.npy', 'activations'],
    ] as const) {
      const m = npyToMatrix(await readNpy(planted(file)), file);
      const data = m.data.slice();
      data[3 * m.cols + 5] = Number.NaN;
      data[7 * m.cols + 1] = Number.POSITIVE_INFINITY;
      data[9 * m.cols] = Number.NEGATIVE_INFINITY;
      const bad = join(dir, `bad-${file}`);
      await writeNpy(bad, matrixToNpy({ ...m, data }));
      const out = join(dir, `out-${file}`);
      const r = await runWithInput(flag, bad, dir, out);
      assert.equal(r.code, 1, r.stderr);
      assert.match(
        r.stderr,
        new RegExp(
          `${role} .*bad-${file.replace('.', '\\.')}: 3 of ${m.rows}×${m.cols} values are not finite \\(NaN or ±Infinity\\); the first, NaN, is at row 3, column 5 \\(0-based\\)`,
        ),
      );
      assert.ok(!existsSync(out), 'nothing written');
    }
  });
  it('hyperparameters that make the method degenerate, naming the --param flag and the valid range', async () => {
    for (const [param, re] of [
      ['a=0', /soft_wpmi: --param a must be a positive number \(the softmax temperature\) but got 0$/m],
      ['lam=-1', /--param lambda must be >= 0 .* but got -1$/m],
      ['p_end=0.999', /'pEnd' must be <= 'pStart' \(0\.998\) but got 0\.999/],
      ['pStart=0', /--param pStart must be a probability in \(0, 1\] but got 0/],
      ['topK=0', /--top-k must be a positive integer but got 0/],
    ] as const) {
      const r = await run(['--param', param]);
      assert.equal(r.code, 1, param);
      assert.match(r.stderr, re);
      assert.ok(!existsSync(r.out), 'nothing written');
    }
    const r = await run(['--similarity', 'rank_reorder', '--param', 'topFraction=0']);
    assert.equal(r.code, 1);
    assert.match(r.stderr, /--param topFraction must be in \(0, 1\] but got 0$/m);
  });
  it('an empty concept set', async () => {
    const r = await run([], ['', '  ']);
    assert.equal(r.code, 1);
    assert.match(r.stderr, /concepts.txt: the concept set is empty/);
  });
  it('an unknown function, flag or hyperparameter, and missing inputs', async () => {
    let r: { code: number; stderr: string } = await run(['--similarity', 'cosine']);
    assert.equal(r.code, 1);
    assert.match(
      r.stderr,
      /--similarity must be 'soft_wpmi', 'wpmi', 'rank_reorder', 'cos_similarity' or 'cos_similarity_cubed' but got 'cosine'/,
    );
    r = await run(['--topk', '5']);
    assert.equal(r.code, 2);
    assert.match(r.stderr, /similarity: Unknown option '--topk' \(did you mean --top-k\?\)/);
    r = await run(['--param', 'temperature=3']);
    assert.equal(r.code, 1);
    assert.match(
      r.stderr,
      /soft_wpmi: unknown option 'temperature'; valid options are 'topK', 'a', 'lambda', 'minProb', 'pStart' or 'pEnd'/,
    );
    r = await cli(['similarity', '--out', tempDir()]);
    assert.equal(r.code, 2);
    assert.match(
      r.stderr,
      /similarity: missing --image-features, --text-features, --activations, --concepts/,
    );
    r = await cli(['dissekt']);
    assert.equal(r.code, 2);
    assert.match(
      r.stderr,
      /unknown command 'dissekt' \(did you mean dissect\?\); commands are 'activations', ('[a-z]+', )*'dissect', ('[a-z]+', )*'similarity', ('[a-z]+', )*'help' or 'version'/,
    );
  });
});
