/**
 * The layering rule of issue 13, as `npm run lint` enforces it: outside the Node adapter (src/platform/node/)
 * and the CLI nothing imports node:*, sharp or worker_threads; outside the runtime gateway (src/runtime/)
 * nothing imports onnxruntime. Runs the real Biome with this repository's biome.json on probe files laid out
 * like src/ in a temporary folder.
 */
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { readdirSync, readFileSync } from 'node:fs';
import { copyFile, mkdir, mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { dirname, join, relative, resolve } from 'node:path';
import { after, before, describe, test } from 'node:test';
import { fileURLToPath } from 'node:url';

const ROOT = fileURLToPath(new URL('../../../', import.meta.url));
const BIOME = join(ROOT, 'node_modules', '.bin', 'biome');

const CASES: { file: string; source: string; allowed: boolean }[] = [
  { file: 'src/numeric/a.ts', source: "import { join } from 'node:path';", allowed: false },
  { file: 'src/pipeline/b.ts', source: "import sharp from 'sharp';", allowed: false },
  { file: 'src/compute/c.ts', source: "import { Worker } from 'worker_threads';", allowed: false },
  { file: 'src/data/d.ts', source: "import { readFile } from 'fs/promises';", allowed: false },
  { file: 'src/models/e.ts', source: "import * as ort from 'onnxruntime-node';", allowed: false },
  { file: 'src/runtime/f.ts', source: "import { readFile } from 'node:fs/promises';", allowed: false },
  { file: 'src/runtime/g.ts', source: "import * as ort from 'onnxruntime-node';", allowed: true },
  { file: 'src/platform/node/h.ts', source: "import { readFile } from 'node:fs/promises';", allowed: true },
  { file: 'src/cli/i.ts', source: "import { stdout } from 'node:process';", allowed: true },
  { file: 'src/platform/node/j.ts', source: "import * as ort from 'onnxruntime-node';", allowed: false },
  { file: 'src/io/k.ts', source: "import { platform } from '#platform';", allowed: true },
];

describe('layering (biome.json noRestrictedImports)', { skip: false }, () => {
  let dir = '';
  before(async () => {
    dir = await mkdtemp(join(tmpdir(), 'cd-layering-'));
    await copyFile(join(ROOT, 'biome.json'), join(dir, 'biome.json'));
    for (const c of CASES) {
      const p = join(dir, c.file);
      await mkdir(dirname(p), { recursive: true });
      await writeFile(
        p,
        `${c.source}\n\nexport const used = [${c.source.match(/import \{? ?\*? ?(?:as )?(\w+)/)?.[1]}];\n`,
      );
    }
  });
  after(async () => {
    await rm(dir, { recursive: true, force: true });
  });

  for (const c of CASES) {
    test(`${c.file}: ${c.source} is ${c.allowed ? 'allowed' : 'refused'}`, () => {
      const r = spawnSync(BIOME, ['lint', '--vcs-enabled=false', c.file], { cwd: dir, encoding: 'utf8' });
      const out = `${r.stdout}${r.stderr}`;
      if (c.allowed) assert.equal(r.status, 0, out);
      else {
        assert.notEqual(r.status, 0, out);
        assert.match(out, /noRestrictedImports/);
      }
    });
  }
});

/**
 * The rooms of src/ and the rooms each may import (README "Layout"), lowest first. A file of src/ directly
 * (index.ts, progress.ts, version.ts) is its own room.
 */
const ROOMS: Record<string, readonly string[]> = {
  'platform/types': [],
  numeric: [],
  'version.ts': ['platform/types'],
  'progress.ts': [],
  io: ['numeric', 'platform/types', 'progress.ts'],
  runtime: ['numeric', 'platform/types'],
  data: ['io', 'numeric', 'platform/types', 'progress.ts'],
  compute: ['runtime', 'numeric', 'platform/types', 'progress.ts'],
  models: ['data', 'compute', 'runtime', 'io', 'numeric', 'platform/types', 'progress.ts'],
  results: ['models', 'data', 'compute', 'runtime', 'io', 'numeric', 'platform/types', 'version.ts'],
  pipeline: [
    'results',
    'models',
    'data',
    'compute',
    'runtime',
    'io',
    'numeric',
    'platform/types',
    'progress.ts',
    'version.ts',
  ],
  report: ['results', 'data', 'io', 'numeric', 'platform/types', 'progress.ts', 'version.ts'],
  'platform/node': ['platform/types'],
};

function roomOf(file: string): string {
  const rel = relative(join(ROOT, 'src'), file).split(/[\\/]/);
  if (rel.length === 1) return rel[0].replace(/\.js$/, '.ts');
  if (rel[0] === 'platform') return rel[1] === 'node' ? 'platform/node' : 'platform/types';
  return rel[0];
}

function* sourceFiles(dir: string): Generator<string> {
  for (const e of readdirSync(dir, { withFileTypes: true })) {
    const p = join(dir, e.name);
    if (e.isDirectory()) yield* sourceFiles(p);
    else if (e.name.endsWith('.ts')) yield p;
  }
}

describe('layering (rooms of src/)', () => {
  test('each room imports only the rooms below it', () => {
    const wrong: string[] = [];
    let edges = 0;
    for (const file of sourceFiles(join(ROOT, 'src'))) {
      const from = roomOf(file);
      const allowed = ROOMS[from];
      if (allowed === undefined) continue; // cli and index.ts may import every room
      const text = readFileSync(file, 'utf8');
      for (const m of text.matchAll(/^(?:import|export)[^;]*?from '(\.[^']+)'/gms)) {
        const to = roomOf(resolve(dirname(file), m[1]));
        if (to === from) continue;
        edges++;
        if (!allowed.includes(to)) wrong.push(`${relative(ROOT, file)} (${from}) imports ${m[1]} (${to})`);
      }
    }
    assert.ok(edges > 100, `only ${edges} imports between rooms found: is the scan broken?`);
    assert.deepEqual(wrong, []);
  });
});
