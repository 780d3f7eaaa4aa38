/**
 * The core runs on another platform: with `#platform` resolved to an in-memory platform
 * (test/helpers/memory-platform.ts: files in a Map, a fixed host) the `similarity` job reads its .npy inputs
 * and concept file, takes the results folder's lock, writes and reads back its results through the results
 * contract, all in memory, and labels exactly as on the Node adapter. Nothing of the job touches the real
 * disk: its paths (/mem/...) do not exist there.
 */
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { existsSync, readFileSync } from 'node:fs';
import { writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { describe, test } from 'node:test';
import { fileURLToPath } from 'node:url';
import { encodeNpy, matrixToNpy } from '../../src/io/npy.js';
import { runSimilarityFiles } from '../../src/pipeline/similarity-files.js';
import { tempDir } from '../helpers/cli.js';
import { plantedData } from '../helpers/data.js';

const DIST = new URL('../../', import.meta.url);
const at = (p: string) => JSON.stringify(new URL(p, DIST).href);
const N = 200;
const M = 12;
const K = 8;

const JOB = `
import { platform } from '#platform';
import { memoryPaths } from ${at('test/helpers/memory-platform.js')};
import { encodeNpy, matrixToNpy } from ${at('src/io/npy.js')};
import { plantedData } from ${at('test/helpers/data.js')};
import { runSimilarityFiles } from ${at('src/pipeline/similarity-files.js')};
import { readArgsJson, readNeuronsJson } from ${at('src/results/index.js')};
const { files } = platform;
const d = plantedData(${N}, ${M}, 16, ${K}, 3);
await files.mkdir('/mem/work/in', { recursive: true });
await files.writeFile('/mem/work/in/I.npy', encodeNpy(matrixToNpy(d.imageFeatures)));
await files.writeFile('/mem/work/in/T.npy', encodeNpy(matrixToNpy(d.textFeatures)));
await files.writeFile('/mem/work/in/A.npy', encodeNpy(matrixToNpy(d.activations)));
await files.writeFile('/mem/work/in/concepts.txt', Array.from({ length: ${M} }, (_, i) => 'concept ' + i).join('\\n') + '\\n');
const r = await runSimilarityFiles({
  imageFeatures: 'in/I.npy', textFeatures: 'in/T.npy', activations: 'in/A.npy',
  concepts: 'in/concepts.txt', out: 'out', layer: 'planted', saveMatrix: true, threads: 1,
});
const args = await readArgsJson('/mem/work/out');
const neurons = await readNeuronsJson('/mem/work/out');
process.stdout.write(JSON.stringify({
  name: platform.name,
  files: r.files,
  paths: memoryPaths(),
  csv: await files.readText('/mem/work/out/descriptions.csv'),
  labels: neurons.neurons.map((n) => n.label),
  host: args.memory,
}));
`;

describe('the core on an in-memory platform', () => {
  test('the similarity job reads, locks, writes and reads back in memory and labels as on Node', async () => {
    const register = fileURLToPath(new URL('test/helpers/memory-platform-register.js', DIST));
    const r = spawnSync(process.execPath, ['--import', register, '--input-type=module', '-e', JOB], {
      encoding: 'utf8',
      cwd: tempDir('clip-dissect-memory-cwd-'),
    });
    assert.equal(r.status, 0, r.stderr);
    const got = JSON.parse(r.stdout) as {
      name: string;
      files: string[];
      paths: string[];
      csv: string;
      labels: string[];
      host: string;
    };
    assert.equal(got.name, 'memory');
    // relative paths resolved against the memory host's working folder; the host's versions in args.json
    const written = ['args.json', 'descriptions.csv', 'neurons.json', 'similarity.npy'];
    assert.deepEqual(
      got.files.sort(),
      written.map((f) => `out/${f}`),
    );
    assert.equal(got.host, '1');
    // the lock and the temporary files are gone, in memory too
    assert.deepEqual(
      got.paths.filter((p) => p.startsWith('/mem/work/out/')),
      written.map((f) => `/mem/work/out/${f}`),
    );
    assert.ok(!existsSync('/mem'), 'nothing was written to the real disk');
    // the planted data: neuron k is concept k
    assert.deepEqual(
      got.labels,
      Array.from({ length: K }, (_, k) => `concept ${k}`),
    );

    // the same job on the Node adapter, on real files: the same descriptions.csv
    const dir = tempDir('clip-dissect-memory-node-');
    const d = plantedData(N, M, 16, K, 3);
    await writeFile(join(dir, 'I.npy'), encodeNpy(matrixToNpy(d.imageFeatures)));
    await writeFile(join(dir, 'T.npy'), encodeNpy(matrixToNpy(d.textFeatures)));
    await writeFile(join(dir, 'A.npy'), encodeNpy(matrixToNpy(d.activations)));
    await writeFile(
      join(dir, 'concepts.txt'),
      `${Array.from({ length: M }, (_, i) => `concept ${i}`).join('\n')}\n`,
    );
    await runSimilarityFiles({
      imageFeatures: join(dir, 'I.npy'),
      textFeatures: join(dir, 'T.npy'),
      activations: join(dir, 'A.npy'),
      concepts: join(dir, 'concepts.txt'),
      out: join(dir, 'out'),
      layer: 'planted',
      saveMatrix: true,
      threads: 1,
    });
    assert.equal(got.csv, readFileSync(join(dir, 'out', 'descriptions.csv'), 'utf8'));
  });
});
