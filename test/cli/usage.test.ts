import assert from 'node:assert/strict';
import { existsSync, readdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, it } from 'node:test';
import { setTimeout as sleep } from 'node:timers/promises';
import { didYouMean } from '../../src/cli/_args.js';
import { DEFAULT_MEMORY_BUDGET_TEXT, type FlagGroup } from '../../src/cli/_flags.js';
import { isTempName } from '../../src/io/atomic.js';
import { SIMILARITY_DESCRIPTIONS, SIMILARITY_NAMES } from '../../src/numeric/similarity-options.js';
import { cli, spawnCli, tempDir } from '../helpers/cli.js';
import { NEEDS_SHARED, tinyClipForSuite } from '../models/clip-helpers.js';
import { FOLDED, PREPROCESS_JSON, probeFolder } from '../pipeline/helpers.js';

describe('exit codes and did-you-mean', () => {
  it('usage errors exit 2, bad input 1 (the real command)', async () => {
    const cases: [string[], number, RegExp][] = [
      [['dissekt'], 2, /unknown command 'dissekt' \(did you mean dissect\?\)/],
      [['help', 'scroe'], 2, /help: unknown command 'scroe' \(did you mean score\?\)/],
      [['similarity', '--topk', '5'], 2, /Unknown option '--topk' \(did you mean --top-k\?\)/],
      // a deprecated spelling is never suggested
      [['compose', '--shwo', '5'], 2, /Unknown option '--shwo' \(did you mean --show\?\)/],
      [['compose', '--tpo', '5'], 2, /Unknown option '--tpo' \(see clip-dissect help compose\)/],
      [
        ['similarity', '--bogus-flag'],
        2,
        /Unknown option '--bogus-flag' \(see clip-dissect help similarity\)/,
      ],
      [['similarity', '--out'], 2, /Option '--out <value>' argument missing/],
      [['layers', 'm.onnx', '--offline=yes'], 2, /Option '--offline' does not take an argument/],
      [['eval', '--layer', 'fc'], 2, /eval: missing --results/],
      [['report'], 2, /report: missing DIR/],
      [
        ['sanity', '--results', 'r', '--neurons', 'many'],
        1,
        /--neurons must be an integer >= 1 but got 'many'/,
      ],
      [['report', join(tempDir(), 'none')], 1, /no such folder/],
    ];
    for (const [argv, code, re] of cases) {
      const r = await spawnCli(argv).done;
      assert.equal(r.code, code, `${argv.join(' ')}: ${r.stderr}`);
      assert.match(r.stderr, re, argv.join(' '));
      assert.doesNotMatch(r.stderr, /internal error|\n\s+at /);
    }
  });

  it('no command: the help on stderr, exit 2; --help and help: stdout, exit 0', async () => {
    const none = await cli([]);
    assert.equal(none.code, 2);
    assert.equal(none.stdout, '');
    assert.match(none.stderr, /^clip-dissect .*\nUsage: clip-dissect <command>/s);
    for (const argv of [['--help'], ['help'], ['-h']]) {
      const r = await cli(argv);
      assert.equal(r.code, 0, argv.join(' '));
      assert.match(r.stdout, /Usage: clip-dissect <command>/);
      assert.match(r.stdout, /Exit status: 0 done, 1 bad input, 2 usage error/);
    }
  });

  it('didYouMean suggests only close names', () => {
    assert.equal(didYouMean('topk', ['top', 'top-k', 'token'], '--'), ' (did you mean --top-k?)');
    assert.equal(didYouMean('lyaers', ['layer', 'layers']), ' (did you mean layers?)');
    assert.equal(didYouMean('frobnicate', ['top', 'layers']), '');
    assert.equal(didYouMean('x', ['y', 'z']), ' (did you mean y?)');
    assert.equal(didYouMean('', ['out']), '');
  });
});

const COMMAND_NAMES = [
  'activations',
  'cache',
  'compose',
  'dissect',
  'eval',
  'layers',
  'report',
  'sanity',
  'score',
  'similarity',
  'weights',
];

describe('help generated from the flag definitions', () => {
  it('help <cmd> and <cmd> --help print every flag with its placeholder and default', async () => {
    for (const name of COMMAND_NAMES) {
      const { GROUPS } = (await import(`../../src/cli/commands/${name}.js`)) as { GROUPS: FlagGroup[] };
      const h = await cli(['help', name]);
      assert.equal(h.code, 0, name);
      assert.equal((await cli([name, '--help'])).stdout, h.stdout, name);
      const flat = h.stdout.replace(/\s+/g, ' ');
      for (const g of GROUPS) {
        assert.ok(h.stdout.includes(`\n${g.title}:\n`), `${name}: group ${g.title}`);
        for (const [flag, d] of Object.entries(g.flags)) {
          const shown = `--${flag}${d.arg ? ` ${d.arg}` : ''}`;
          assert.ok(h.stdout.includes(shown), `${name}: ${shown}`);
          if (d.default !== undefined)
            assert.ok(
              flat.includes(`(default ${d.default.replace(/\s+/g, ' ')})`),
              `${name} --${flag} default`,
            );
          if (d.alias) assert.ok(h.stdout.includes(`--${d.alias}`), `${name}: alias --${d.alias}`);
        }
      }
      for (const line of h.stdout.split('\n').filter((l) => l.startsWith('  -')))
        assert.ok(line.length <= 108, `${name}: ${line}`);
    }
  });

  it('the defaults come from the definitions, never typed into a help text', async () => {
    const budget = [];
    for (const name of COMMAND_NAMES) {
      const h = (await cli(['help', name])).stdout;
      const m = /--memory-budget SIZE[\s\S]*?\(default ([^)]+)\)/.exec(h);
      if (m) budget.push(m[1]);
    }
    assert.ok(budget.length >= 6);
    assert.deepEqual(new Set(budget), new Set([DEFAULT_MEMORY_BUDGET_TEXT]));
  });

  it('--similarity and --top-k come from the similarity registry', async () => {
    for (const name of ['dissect', 'similarity']) {
      const h = (await cli(['help', name])).stdout.replace(/\s+/g, ' ');
      assert.match(h, /--similarity NAME the similarity function \(default soft_wpmi\)/, name);
      for (const f of SIMILARITY_NAMES)
        assert.ok(h.includes(`${f}: ${SIMILARITY_DESCRIPTIONS[f]}`), `${name}: ${f}`);
      assert.match(
        h,
        /--top-k N images per neuron for soft_wpmi \(default 100\) \/ wpmi \(default 28\)/,
        name,
      );
    }
    const files = ['--image-features', 'i.npy', '--text-features', 't.npy', '--activations', 'a.npy'];
    const cases: [string, RegExp][] = [
      [
        'rank_reorder',
        /--top-k applies to soft_wpmi and wpmi, not rank_reorder \(use --param topFraction=… for rank_reorder\)/,
      ],
      ['cos_similarity', /--top-k applies to soft_wpmi and wpmi, not cos_similarity$/m],
    ];
    for (const [f, re] of cases) {
      const argv = [
        'similarity',
        ...files,
        '--concepts',
        'c.txt',
        '--out',
        tempDir(),
        '--similarity',
        f,
        '--top-k',
        '3',
      ];
      const r = await cli(argv);
      assert.equal(r.code, 1, r.stderr);
      assert.match(r.stderr, re);
    }
  });

  it('each flag name has one type and placeholder in every command', async () => {
    const seen = new Map<string, string>();
    for (const name of COMMAND_NAMES) {
      const { GROUPS } = (await import(`../../src/cli/commands/${name}.js`)) as { GROUPS: FlagGroup[] };
      for (const g of GROUPS)
        for (const [flag, d] of Object.entries(g.flags)) {
          const sig = `${d.type} ${d.arg ?? ''}`;
          assert.equal(seen.get(flag) ?? sig, sig, `--${flag} in ${name}`);
          seen.set(flag, sig);
        }
    }
  });
});

describe('Ctrl-C during dissect (real process)', { skip: NEEDS_SHARED }, () => {
  const clip = tinyClipForSuite();
  const probe = probeFolder();
  const concepts = join(tempDir(), 'concepts.txt');
  writeFileSync(concepts, ['dog', 'cat', 'bird', 'car', 'tree'].join('\n'));
  const args = (cacheDir: string, out: string, extra: string[] = []) => [
    'dissect',
    ...['--target', FOLDED, '--layers', 'conv1,layer4', '--probe', probe, '--concepts', concepts],
    ...['--clip', clip.dir(), '--preprocess', PREPROCESS_JSON, '--top-k', '5', '--batch-size', '2'],
    ...['--chunk-size', '2', '--threads', '1', '--cache-dir', cacheDir, '--out', out, '--no-report'],
    ...extra,
  ];
  const temps = (dir: string): string[] =>
    existsSync(dir) ? readdirSync(dir, { recursive: true, encoding: 'utf8' }).filter(isTempName) : [];

  it('stops at the next check: exit 130, no temporary files, the cache verifies and a rerun resumes', async () => {
    const cacheDir = tempDir('clip-dissect-cache-');
    const out = tempDir('clip-dissect-out-');
    const run = spawnCli(args(cacheDir, out));
    // the first feature chunk is in the cache: the run is under way, between two checks of the signal
    const features = join(cacheDir, 'features');
    const chunks = () =>
      existsSync(features)
        ? readdirSync(features, { recursive: true, encoding: 'utf8' }).filter(
            (f) => f.endsWith('.npy') && !isTempName(f),
          )
        : [];
    for (let i = 0; i < 3000 && chunks().length === 0; i++) await sleep(10);
    assert.ok(chunks().length > 0, 'a feature chunk was cached');
    run.child.kill('SIGINT');
    const r = await run.done;
    assert.equal(r.code, 130, r.stderr);
    assert.match(r.stderr, /clip-dissect: interrupted \(SIGINT\)\n$/);
    assert.doesNotMatch(r.stderr, /stopped at once|internal error|\n\s+at /);
    assert.deepEqual(temps(out), []);
    assert.deepEqual(temps(cacheDir), []);
    assert.ok(!existsSync(join(out, '.clip-dissect.lock')));
    const verify = await cli(['cache', 'verify', '-q', '--cache-dir', cacheDir]);
    assert.equal(verify.code, 0, verify.stdout + verify.stderr);
    const again = await cli(args(cacheDir, out, ['--quiet', '--json']));
    assert.equal(again.code, 0, again.stderr);
    const p = JSON.parse(again.stdout);
    assert.deepEqual(
      p.layers.map((l: { layer: string }) => l.layer),
      ['conv1', 'layer4'],
    );
    assert.ok(p.layers[1].neurons.every((n: { label: string }) => typeof n.label === 'string'));
    const { text, images } = p.chunks;
    assert.ok(
      text.computed + images.computed < text.total + images.total,
      `resumed from the cache: ${JSON.stringify(p.chunks)}; interrupted run: ${r.stderr}`,
    );

    // score, a command that writes only at its end, stops at the library's next check: no score.json
    const t0 = performance.now();
    const score = spawnCli(['score', '--results', out, '--bootstraps', '300', '--permutations', '300']);
    let said = '';
    score.child.stderr?.on('data', (b: Buffer) => {
      said += b.toString();
    });
    // its first finished stage is printed: it runs, with the handlers in place
    for (let i = 0; i < 2000 && said === ''; i++) await sleep(10);
    score.child.kill('SIGINT');
    const s = await score.done;
    assert.equal(s.code, 130, s.stderr);
    assert.match(s.stderr, /clip-dissect: interrupted \(SIGINT\)\n$/);
    assert.doesNotMatch(s.stderr, /stopped at once/);
    assert.ok(!existsSync(join(out, 'score.json')), 'no score.json');
    assert.deepEqual(temps(out), []);
    assert.ok(performance.now() - t0 < 30000, `${performance.now() - t0} ms: ${said}`);
  });
});
