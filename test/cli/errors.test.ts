import assert from 'node:assert/strict';
import { existsSync, mkdirSync, readdirSync, readFileSync, writeFileSync } from 'node:fs';
import { availableParallelism, hostname } from 'node:os';
import { join } from 'node:path';
import { describe, it } from 'node:test';
import { setTimeout as sleep } from 'node:timers/promises';
import sharp from 'sharp';
import { cliArgumentMessage, printable } from '../../src/cli/_args.js';
import { DISSECT_HELP as COMMAND_HELP } from '../../src/cli/commands/dissect.js';
import { ArgumentError } from '../../src/numeric/errors.js';
import { cli, spawnCli, tempDir } from '../helpers/cli.js';
import { NEEDS_SHARED, tinyClipForSuite } from '../models/clip-helpers.js';
import { FOLDED, PREPROCESS_JSON, probeFolder } from '../pipeline/helpers.js';

/** Each command with its required flags (dummy values: the checks under test come before they are read). */
const COMMANDS: Record<string, string[]> = {
  similarity: [
    '--image-features',
    'i.npy',
    '--text-features',
    't.npy',
    '--activations',
    'a.npy',
    '--concepts',
    'c',
  ],
  activations: ['--target', 'm.onnx', '--layers', 'conv1', '--probe', 'p'],
  dissect: ['--target', 'm.onnx', '--layers', 'conv1', '--probe', 'p', '--concepts', 'c'],
  eval: ['--results', 'r', '--layer', 'fc', '--ground-truth', 'g.txt'],
  compose: ['--results', 'r', '--layer', 'fc', '--units', '0'],
  weights: ['--results', 'r', '--from', 'a', '--to', 'b', '--ground-truth', 'g.txt'],
};
/** Commands whose --out is required. */
const OUT_REQUIRED = new Set(['similarity', 'activations', 'dissect']);

function clean(r: { code: number; stderr: string }, pattern: RegExp): void {
  assert.equal(r.code, 1, r.stderr);
  assert.doesNotMatch(r.stderr, /internal error|\n\s+at /);
  assert.match(r.stderr, pattern);
}

describe('clean errors before any work', () => {
  const dir = tempDir();
  const file = join(dir, 'a-file');
  writeFileSync(file, 'x');

  it('--out that is a file: every command, exit 1, naming the flag and the path', async () => {
    for (const [command, flags] of Object.entries(COMMANDS)) {
      const r = await cli([command, ...flags, '--out', file]);
      clean(r, new RegExp(`^clip-dissect: error: --out ${file} is a file, not a folder`, 'm'));
    }
    // a folder below a file cannot be created either
    const r = await cli(['similarity', ...COMMANDS.similarity, '--out', join(file, 'sub')]);
    clean(
      r,
      new RegExp(`--out ${join(file, 'sub')} cannot be created as the output folder: ${file} is a file`),
    );
  });

  it('--cache-dir that is a file or under /proc: every command that takes it', async () => {
    for (const [command, flags] of Object.entries(COMMANDS)) {
      const out = OUT_REQUIRED.has(command) ? ['--out', join(dir, 'out')] : [];
      clean(
        await cli([command, ...flags, ...out, '--cache-dir', file]),
        new RegExp(`--cache-dir ${file} is a file`),
      );
      clean(
        await cli([command, ...flags, ...out, '--cache-dir', '/proc/self/clip-dissect']),
        /--cache-dir \/proc\/self\/clip-dissect is under \/proc, a kernel pseudo file system/,
      );
    }
    assert.ok(!existsSync(join(dir, 'out')), 'nothing created by a failed check');
  });

  it('report DIR with DIR/report a file; dissect with --out DIR where DIR/report is a file', async () => {
    const results = join(dir, 'results');
    mkdirSync(results);
    writeFileSync(join(results, 'neurons.json'), '{"layers":[],"neurons":[]}');
    writeFileSync(join(results, 'report'), 'x');
    clean(
      await cli(['report', results]),
      new RegExp(`error: ${join(results, 'report')} is a file, not a folder`),
    );
    clean(
      await cli(['dissect', ...COMMANDS.dissect, '--out', results]),
      new RegExp(
        `${join(results, 'report')} is a file, not a folder: the report cannot go there .*; or pass --no-report$`,
        'm',
      ),
    );
  });

  it('--threads and --workers above the bounds of this machine name the flag and the bound', async () => {
    const out = ['--out', join(dir, 'o')];
    const p = availableParallelism();
    clean(
      await cli(['dissect', ...COMMANDS.dissect, ...out, '--threads', '1000']),
      new RegExp(
        `--threads must be an integer from 1 to ${4 * p} \\(4 × the ${p} cores of this machine\\) but got 1000`,
      ),
    );
    clean(
      await cli(['activations', ...COMMANDS.activations, ...out, '--workers', '200']),
      new RegExp(`--workers must be an integer from 0 to ${Math.min(64, Math.max(4, p))} .* but got 200`),
    );
  });

  it('similarity, activations and report refuse a folder that another live run holds', async () => {
    const out = join(dir, 'held');
    mkdirSync(out);
    writeFileSync(join(out, 'neurons.json'), '{"layers":[],"neurons":[]}');
    const lock = { pid: 1, host: hostname(), started: '2026-01-01T00:00:00.000Z', command: 'dissect' };
    writeFileSync(join(out, '.clip-dissect.lock'), JSON.stringify(lock));
    const busy = new RegExp(
      `^clip-dissect: error: results folder ${out} is in use by pid 1 \\(started 2026-01-01T00:00:00\\.000Z: dissect\\); wait for it or choose another --out$`,
      'm',
    );
    for (const command of ['similarity', 'activations'])
      clean(await cli([command, ...COMMANDS[command], '--out', out]), busy);
    clean(await cli(['report', out]), busy);
    assert.ok(existsSync(join(out, '.clip-dissect.lock')), "another run's lock is left alone");
  });

  it('a missing --target fails before CLIP is looked for', async () => {
    const missing = join(dir, 'no-model.onnx');
    const probe = join(dir, 'probe-t');
    mkdirSync(probe, { recursive: true });
    const r = await cli([
      'dissect',
      ...['--target', missing, '--layers', 'conv1', '--probe', probe, '--concepts', 'c'],
      ...['--clip', 'nobody/not-a-cached-clip', '--offline', '--out', join(dir, 'o2')],
    ]);
    clean(r, new RegExp(missing));
    assert.doesNotMatch(r.stderr, /not-a-cached-clip/);
  });

  it('an image larger than --memory-budget allows per worker is refused before decoding, or skipped', async () => {
    const probe = join(dir, 'probe-big');
    mkdirSync(probe);
    const px = (w: number, h: number) =>
      sharp({ create: { width: w, height: h, channels: 3, background: '#808080' } })
        .png()
        .toBuffer();
    writeFileSync(join(probe, 'a.png'), await px(64, 48));
    writeFileSync(join(probe, 'big.png'), await px(600, 400));
    // 1 MiB / (8 bytes a pixel × 1 worker) = 131072 pixels
    const base = ['activations', '--target', FOLDED, '--layers', 'conv1', '--probe', probe];
    const flags = ['--preprocess', PREPROCESS_JSON, '--memory-budget', '1M', '--threads', '1', '-q'];
    const r = await cli([...base, '--out', join(dir, 'big-out'), ...flags]);
    clean(r, /is larger than the limit/);
    assert.ok(
      r.stderr.includes(
        `${join(probe, 'big.png')}: 600×400 pixels (about 2 MiB to decode) is larger than the limit of 131072 pixels (1 MiB)`,
      ),
      r.stderr,
    );
    const skip = await cli([...base, '--out', join(dir, 'big-out2'), ...flags, '--skip-bad-images']);
    assert.equal(skip.code, 0, skip.stderr);
    assert.match(skip.stdout + skip.stderr, /big\.png/);
  });

  it("library option names in ArgumentErrors become the command's flags", () => {
    const help = COMMAND_HELP;
    const say = (message: string, option?: string) =>
      cliArgumentMessage(new ArgumentError(message, { option }), help);
    assert.equal(say("'cacheDir' /x is a file", 'cacheDir'), '--cache-dir /x is a file');
    assert.equal(
      say("soft_wpmi: 'topK' must be <= 22: lower 'topK'", 'topK'),
      'soft_wpmi: --top-k must be <= 22: lower --top-k',
    );
    assert.equal(
      say("soft_wpmi: 'minProb' must be in [0, 1)", 'minProb'),
      'soft_wpmi: --param minProb must be in [0, 1)',
    );
    // no such flag, or no option named: the message as it is
    assert.equal(
      say("'textChunkSize' must be a positive integer", 'textChunkSize'),
      "'textChunkSize' must be a positive integer",
    );
    assert.equal(say("'top' must be a positive integer"), "'top' must be a positive integer");
  });

  it('printable() escapes control characters but tabs and newlines', () => {
    assert.equal(printable('a\x1b[2Jb\x07\tc\nd\x9b\u202ee'), 'a\\u001b[2Jb\\u0007\tc\nd\\u009b\\u202ee');
    // inside a JSON string the escapes read back as the characters
    const text = 'x\x1b\x9by';
    assert.equal(JSON.parse(printable(JSON.stringify(text))), text);
  });
});

describe('dissect runs at the same time (real processes)', { skip: NEEDS_SHARED }, () => {
  const clip = tinyClipForSuite();
  const probe = probeFolder();
  const concepts = join(tempDir(), 'concepts.txt');
  // control characters in concepts: shown escaped in the tables and warnings, never sent to the terminal
  writeFileSync(concepts, ['\x1b[2Jdog', 'cat\x07', 'bird', 'car', 'tree', '\x1b[2Jdog'].join('\n'));
  const args = (cacheDir: string, out: string, extra: string[] = []) => [
    'dissect',
    ...['--target', FOLDED, '--layers', 'conv1,layer4', '--probe', probe, '--concepts', concepts],
    ...['--clip', clip.dir(), '--preprocess', PREPROCESS_JSON, '--top-k', '5', '--batch-size', '8'],
    ...['--threads', '1', '--cache-dir', cacheDir, '--out', out, '--no-report'],
    ...extra,
  ];
  const lockOf = (out: string) => join(out, '.clip-dissect.lock');
  async function waitFor(path: string): Promise<void> {
    for (let i = 0; i < 3000 && !existsSync(path); i++) await sleep(10);
    assert.ok(existsSync(path), `${path} never appeared`);
  }

  it('a second run on the same --out fails at once naming the first; the first completes', async () => {
    const cacheDir = tempDir('clip-dissect-cache-');
    const out = tempDir('clip-dissect-out-');
    const a = spawnCli(args(cacheDir, out));
    await waitFor(lockOf(out));
    a.child.kill('SIGSTOP'); // holds the lock while the second one starts
    try {
      const b = await spawnCli(args(cacheDir, out, ['--top', '3'])).done;
      assert.equal(b.code, 1, b.stderr);
      assert.match(
        b.stderr,
        new RegExp(
          `^clip-dissect: error: results folder ${out} is in use by pid ${a.child.pid} \\(started \\d{4}-.*: dissect\\); wait for it or choose another --out$`,
          'm',
        ),
      );
      assert.doesNotMatch(b.stderr, /internal error/);
    } finally {
      a.child.kill('SIGCONT');
    }
    const ra = await a.done;
    assert.equal(ra.code, 0, ra.stderr);
    assert.ok(!existsSync(lockOf(out)), 'lock removed at the end');
    assert.deepEqual(
      readdirSync(out).filter((f) => f.startsWith('.')),
      [],
    );
    // concepts with control characters: escaped on stdout and stderr (the duplicate warning)
    const shown = ra.stdout + ra.stderr;
    assert.ok(!shown.includes('\x1b') && !shown.includes('\x07'), 'no raw ESC or BEL');
    assert.match(ra.stdout, /\\u001b\[2Jdog|cat\\u0007/);
    assert.match(ra.stderr, /warning: .*\\u001b\[2Jdog/);
  });

  it('Ctrl-C removes the lock', async () => {
    const cacheDir = tempDir('clip-dissect-cache-');
    const out = tempDir('clip-dissect-out-');
    const a = spawnCli(args(cacheDir, out));
    await waitFor(lockOf(out));
    a.child.kill('SIGINT');
    const r = await a.done;
    assert.equal(r.code, 130, r.stderr);
    assert.match(r.stderr, /interrupted \(SIGINT\)/);
    assert.ok(!existsSync(lockOf(out)));
    // the next run starts without any warning about a stale lock
    const again = await cli(args(cacheDir, out, ['--quiet']));
    assert.equal(again.code, 0, again.stderr);
    assert.doesNotMatch(again.stderr, /lock/);
  });

  it('two runs sharing only the cache both succeed with the same results', async () => {
    const cacheDir = tempDir('clip-dissect-cache-');
    const outs = [tempDir('clip-dissect-out-'), tempDir('clip-dissect-out-')];
    const runs = await Promise.all(outs.map((o) => spawnCli(args(cacheDir, o, ['--quiet'])).done));
    for (const r of runs) assert.equal(r.code, 0, r.stderr);
    const csv = outs.map((o) => readFileSync(join(o, 'descriptions.csv'), 'utf8'));
    assert.equal(csv[0], csv[1]);
    assert.ok(csv[0].split('\n').length > 8);
  });

  it("a preprocessing that does not fit the target names --preprocess, not the model's 'imageSize'", async () => {
    const cacheDir = tempDir('clip-dissect-cache-');
    const noPre = args(cacheDir, tempDir('clip-dissect-out-')).filter(
      (a, i, all) => a !== '--preprocess' && all[i - 1] !== '--preprocess',
    );
    const r = await cli(noPre);
    clean(r, /takes 64×64 images but the default preprocessing .* crops to 224×224; .*--preprocess FILE/);
    assert.doesNotMatch(r.stderr, /'imageSize'/);
    assert.ok(!existsSync(join(cacheDir, 'features')), 'no feature computed');
  });

  it('--top-k above the probe set names the flag, before any feature is computed', async () => {
    const cacheDir = tempDir('clip-dissect-cache-');
    const r = await cli(args(cacheDir, tempDir('clip-dissect-out-'), ['--top-k', '23']));
    clean(
      r,
      /--top-k must be <= nImages \(22\) but got 23: the probe set has only 22 usable images \(lower --top-k, e\.g\. to 11\)/,
    );
    assert.ok(!existsSync(join(cacheDir, 'features')), 'no feature computed');
  });
});
