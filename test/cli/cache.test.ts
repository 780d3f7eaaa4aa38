import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { existsSync, mkdirSync, readFileSync, utimesSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, it } from 'node:test';
import { cacheKey, FeatureCache } from '../../src/pipeline/cache.js';
import { cli, tempDir } from '../helpers/cli.js';

/** Two text feature entries (one unused for 40 days), one activations entry, a concept set. */
async function makeCache(): Promise<{ dir: string; oldKey: string; actsKey: string }> {
  const dir = tempDir('clip-dissect-cache-cli-');
  const fc = new FeatureCache(dir, { fsync: false });
  const m = { rows: 2, cols: 3, data: new Float32Array(6).fill(0.5) };
  const oldKey = cacheKey({ what: 'clip-text-features', chunk: 0 });
  const actsKey = cacheKey({ what: 'activations', chunk: 0 });
  await fc.put(oldKey, 'text', m, { chunk: 0 });
  await fc.put(cacheKey({ what: 'clip-text-features', chunk: 1 }), 'text', m, { chunk: 1 });
  await fc.put(actsKey, 'activations', m, { chunk: 0 });
  const old = new Date(Date.now() - 40 * 86400e3);
  for (const ext of ['npy', 'json']) utimesSync(fc.path(oldKey, 'text').replace(/npy$/, ext), old, old);
  const words = Buffer.from('dog\ncat\n');
  mkdirSync(join(dir, 'concepts'));
  writeFileSync(join(dir, 'concepts', `${createHash('sha256').update(words).digest('hex')}-mini.txt`), words);
  return { dir, oldKey, actsKey };
}

describe('clip-dissect cache', () => {
  it('is listed in the main help and has its own', async () => {
    assert.match((await cli(['--help'])).stdout, /^ {2}cache {8}list, clean/m);
    const help = await cli(['help', 'cache']);
    assert.equal(help.code, 0);
    assert.match(help.stdout, /--older-than AGE/);
  });

  it('list: kinds, entries, sizes and last use; --json', async () => {
    const { dir } = await makeCache();
    const r = await cli(['cache', 'list', '--cache-dir', dir]);
    assert.equal(r.code, 0, r.stderr);
    const lines = r.stdout.trimEnd().split('\n');
    assert.match(lines[0], new RegExp(`^${dir}: 4 entries, 0\\.00 MB$`));
    assert.match(lines[1], /^models +none$/);
    assert.match(lines[2], /^concept sets +1 entry +0\.00 MB {2}last used \d{4}-\d\d-\d\d \d\d:\d\d UTC$/);
    assert.match(lines[3], /^ {2}mini\.txt +1 file +0\.00 MB/);
    assert.match(lines[4], /^probe sets +none$/);
    assert.match(lines[5], /^features +3 entries/);
    assert.match(lines[6], /^ {2}activations +1 entry/);
    assert.match(lines[7], /^ {2}text +2 entries/);
    assert.match(lines[8], /^partial files +none$/);
    const j = JSON.parse((await cli(['cache', 'list', '--json', '--cache-dir', dir])).stdout);
    assert.equal(j.cacheDir, dir);
    assert.deepEqual(j.entries.map((e: { kind: string }) => e.kind).sort(), [
      'concepts',
      'features',
      'features',
      'features',
    ]);
  });

  it('clean --older-than / --all print what they removed; --dry-run removes nothing', async () => {
    const { dir, oldKey } = await makeCache();
    const fc = new FeatureCache(dir);
    const dryJson = await cli([
      'cache',
      'clean',
      '--older-than',
      '30d',
      '--dry-run',
      '--json',
      '--cache-dir',
      dir,
    ]);
    assert.equal(dryJson.code, 0, dryJson.stderr);
    const dj = JSON.parse(dryJson.stdout);
    assert.equal(dj.dryRun, true);
    assert.deepEqual(
      dj.removed.map((e: { kind: string }) => e.kind),
      ['features'],
    );
    const dry = await cli(['cache', 'clean', '--older-than', '30d', '--dry-run', '--cache-dir', dir]);
    assert.equal(dry.code, 0, dry.stderr);
    assert.match(dry.stdout, /would remove 1 entry, 0\.00 MB\n {2}features: 1 entry, 0\.00 MB \(text 1\)\n$/);
    assert.ok(existsSync(fc.path(oldKey, 'text')));
    const r = await cli(['cache', 'clean', '--older-than', '30d', '--cache-dir', dir]);
    assert.match(r.stdout, /: removed 1 entry/);
    assert.ok(!existsSync(fc.path(oldKey, 'text')));
    const again = await cli(['cache', 'clean', '--older-than', '30d', '--cache-dir', dir]);
    assert.match(again.stdout, /nothing to remove \(no entry unused for 30d\)/);
    const all = await cli(['cache', 'clean', '--all', '--cache-dir', dir]);
    assert.match(
      all.stdout,
      /removed 3 entries.*\n {2}concept sets: mini\.txt \(0\.00 MB\)\n {2}features: 2 entries/,
    );
    assert.match((await cli(['cache', 'list', '--cache-dir', dir])).stdout, /: 0 entries, 0\.00 MB/);
  });

  it('verify: exit 1 naming a corrupt entry; --delete removes it', async () => {
    const { dir, actsKey } = await makeCache();
    assert.match(
      (await cli(['cache', 'verify', '-q', '--cache-dir', dir])).stdout,
      /4 ok, 0 unverified, 0 corrupt/,
    );
    const npy = new FeatureCache(dir).path(actsKey, 'activations');
    const b = readFileSync(npy);
    b[b.length - 1] ^= 0xff;
    writeFileSync(npy, b);
    const r = await cli(['cache', 'verify', '-q', '--cache-dir', dir]);
    assert.equal(r.code, 1);
    assert.match(
      r.stdout,
      /3 ok, 0 unverified, 1 corrupt\ncorrupt features activations\/[0-9a-f]{12}…: SHA-256/,
    );
    assert.match(r.stdout, /clip-dissect cache verify --delete/);
    const d = await cli(['cache', 'verify', '-q', '--delete', '--cache-dir', dir]);
    assert.equal(d.code, 0);
    assert.match(d.stdout, /\(deleted\)/);
    assert.ok(!existsSync(npy));
  });

  it('usage errors exit 2, bad values 1, with the reason', async () => {
    const cases: [string[], RegExp, number][] = [
      [['cache'], /cache: expected one of 'list', 'clean' or 'verify' but got nothing/, 2],
      [['cache', 'purge'], /but got 'purge'/, 2],
      [['cache', 'lsit'], /but got 'lsit' \(did you mean list\?\)/, 2],
      [['cache', 'clean'], /give exactly one of --all, --older-than AGE, --model ID/, 2],
      [['cache', 'clean', '--all', '--older-than', '3d'], /\(got --all, --older-than\)/, 2],
      [
        ['cache', 'clean', '--older-than', '30 days'],
        /--older-than must be a duration such as 30d.* but got '30 days'/,
        1,
      ],
      [['cache', 'list', '--all'], /cache list: --all applies to cache clean only/, 2],
      [
        ['cache', 'clean', '--model', 'nobody/nothing', '--cache-dir', tempDir()],
        /model 'nobody\/nothing' is neither/,
        1,
      ],
    ];
    for (const [argv, want, code] of cases) {
      const r = await cli(argv);
      assert.equal(r.code, code, argv.join(' '));
      assert.match(r.stderr, want, argv.join(' '));
    }
  });
});
