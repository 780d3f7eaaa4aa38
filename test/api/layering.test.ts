/**
 * The layering rule of issue 13, as `npm run lint` enforces it: outside the Node adapter (src/platform/node/)
 * and the CLI nothing imports node:*, sharp or worker_threads; outside the runtime gateway (src/runtime/)
 * nothing imports onnxruntime. Runs the real Biome with this repository's biome.json on probe files laid out
 * like src/ in a temporary folder.
 */
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { copyFile, mkdir, mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
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
