import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { existsSync, readFileSync, statSync, utimesSync, writeFileSync } from 'node:fs';
import { createServer } from 'node:http';
import type { AddressInfo } from 'node:net';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { BUILTIN_CONCEPT_SETS, loadConceptSet } from '../../src/data/builtin-concepts.js';
import { duplicateWarnings, parseConcepts } from '../../src/data/concepts.js';
import type { ProgressEvent } from '../../src/progress.js';
import { tempDir } from '../helpers/cli.js';
import { makeFifo } from '../helpers/data.js';

const SHARED = new URL('../../../../shared/data/concepts/', import.meta.url);

describe('parseConcepts', () => {
  it('drops blank lines before indexing (CRLF, BOM and whitespace-only lines too)', () => {
    const s = parseConcepts('\uFEFFdog\r\n\r\ncat\n   \nbird\n', 'x.txt');
    assert.deepEqual(s.concepts, ['dog', 'cat', 'bird']);
    assert.deepEqual(s.lines, [1, 3, 5]);
  });
  it('keeps the first index of a duplicate and reports it', () => {
    const s = parseConcepts('a\nb\na\nc\nb', 'x.txt');
    assert.deepEqual(s.concepts, ['a', 'b', 'c']);
    assert.equal(s.nonBlankLines, 5);
    assert.deepEqual(Array.from(s.lineToConcept), [0, 1, 0, 2, 1]);
    assert.deepEqual(s.duplicates, [
      { concept: 'a', line: 3, firstLine: 1 },
      { concept: 'b', line: 5, firstLine: 2 },
    ]);
    assert.deepEqual(duplicateWarnings(s), [
      "x.txt: 2 duplicate concepts dropped, each keeps its first index: 'a' (line 3, first at line 1), 'b' (line 5, first at line 2)",
    ]);
  });
  it('keeps commas and inner spaces (ImageNet labels are whole lines)', () => {
    assert.deepEqual(parseConcepts('tench, Tinca tinca\ngreat white shark', 'i').concepts, [
      'tench, Tinca tinca',
      'great white shark',
    ]);
  });
  it('rejects an empty set naming the source', () => {
    assert.throws(
      () => parseConcepts('\n \n', 'empty.txt'),
      /empty.txt: the concept set is empty \(no non-blank lines\)/,
    );
  });
  it('refuses a FIFO or a device as the concept file, never opening it', { timeout: 10_000 }, async () => {
    const fifo = makeFifo(join(tempDir(), 'concepts.txt'));
    await assert.rejects(loadConceptSet(fifo), (e: Error & { code?: string }) => {
      assert.equal(e.code, 'ERR_CONCEPTS');
      assert.match(e.message, /concept file .*concepts\.txt is a FIFO \(named pipe\), not a regular file/);
      return true;
    });
    await assert.rejects(
      loadConceptSet('/dev/zero'),
      /\/dev\/zero is a character device, not a regular file/,
    );
  });
  it('matches the counts of the paper concept sets', {
    skip: !existsSync(SHARED) && 'needs ../shared/data/concepts',
  }, () => {
    const count = (f: string) => parseConcepts(readFileSync(new URL(f, SHARED), 'utf8'), f);
    assert.equal(count('20k.txt').concepts.length, 20000);
    assert.equal(count('3k.txt').concepts.length, 3000);
    const broden = count('broden_labels_clean.txt');
    assert.equal(broden.nonBlankLines, 1197);
    assert.equal(broden.duplicates.length, 44);
    assert.equal(broden.concepts.length, 1153);
    assert.equal(count('imagenet_labels.txt').concepts[0], 'tench, Tinca tinca');
  });
});

describe('built-in concept sets', { skip: !existsSync(SHARED) && 'needs ../shared/data/concepts' }, () => {
  // a loopback server stands in for the public source
  let base = '';
  let requests = 0;
  let corrupt = false;
  const server = createServer((req, res) => {
    requests++;
    const name = (req.url ?? '').split('/').pop() ?? '';
    const path = new URL(name, SHARED);
    if (!existsSync(path)) {
      res.writeHead(404).end();
      return;
    }
    const body = readFileSync(path);
    res.writeHead(200).end(corrupt ? Buffer.concat([body, Buffer.from('x')]) : body);
  });
  before(async () => {
    await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
    base = `http://127.0.0.1:${(server.address() as AddressInfo).port}/data/`;
  });
  after(() => server.close());

  it('downloads once, checks the SHA-256, then serves from the cache', async () => {
    const cacheDir = tempDir();
    requests = 0;
    const a = await loadConceptSet('3k', { cacheDir, baseUrl: base });
    assert.equal(a.concepts.length, 3000);
    assert.equal(requests, 1);
    const b = await loadConceptSet('3k', { cacheDir, baseUrl: base, offline: true });
    assert.deepEqual(b.concepts, a.concepts);
    assert.equal(requests, 1);
    const cached = join(cacheDir, 'concepts', `${BUILTIN_CONCEPT_SETS['3k'].sha256}-3k.txt`);
    assert.equal(
      createHash('sha256').update(readFileSync(cached)).digest('hex'),
      BUILTIN_CONCEPT_SETS['3k'].sha256,
    );
    // a cache hit records the last use (clip-dissect cache list / clean --older-than)
    const old = new Date(Date.now() - 40 * 86400e3);
    utimesSync(cached, old, old);
    await loadConceptSet('3k', { cacheDir, offline: true });
    assert.ok(Date.now() - statSync(cached).mtimeMs < 60e3);
  });
  it('reports the download in bytes through the hooks; an aborted signal leaves nothing in the cache', async () => {
    const cacheDir = tempDir();
    const events: ProgressEvent[] = [];
    await assert.rejects(
      loadConceptSet('3k', { cacheDir, baseUrl: base }, { signal: AbortSignal.abort(new Error('stop now')) }),
      /stop now/,
    );
    assert.equal(existsSync(join(cacheDir, 'concepts')), false);
    await loadConceptSet('3k', { cacheDir, baseUrl: base }, { onProgress: (e) => events.push(e) });
    const size = readFileSync(new URL('3k.txt', SHARED)).length;
    assert.deepEqual(events.at(-1), { stage: 'download 3k.txt', done: size, total: size, unit: 'bytes' });
  });
  it('refetches a corrupted cache entry', async () => {
    const cacheDir = tempDir();
    await loadConceptSet('broden', { cacheDir, baseUrl: base });
    const cached = join(
      cacheDir,
      'concepts',
      `${BUILTIN_CONCEPT_SETS.broden.sha256}-broden_labels_clean.txt`,
    );
    writeFileSync(cached, 'garbage\n');
    requests = 0;
    const s = await loadConceptSet('broden', { cacheDir, baseUrl: base });
    assert.equal(s.concepts.length, 1153);
    assert.equal(requests, 1);
  });
  it('rejects a download whose SHA-256 does not match', async () => {
    corrupt = true;
    try {
      await assert.rejects(
        loadConceptSet('10k', { cacheDir: tempDir(), baseUrl: base }),
        /cannot download built-in concept set '10k' from .*10k.txt: its SHA-256 is [0-9a-f]{64} but d6b3e04f1ac30be6525d41474166c0bff28486ecd8c48dcb0ab9c7c9cc05ed86 was expected/,
      );
    } finally {
      corrupt = false;
    }
  });
  it('offline without a cached copy says what is missing and how to get it', async () => {
    await assert.rejects(
      loadConceptSet('20k', { cacheDir: tempDir(), offline: true }),
      /built-in concept set '20k' is not in the cache \(.*\) and offline mode forbids downloading it; .*download https:\/\/raw.githubusercontent.com\/Trustworthy-ML-Lab\/CLIP-dissect\/main\/data\/20k.txt yourself/,
    );
  });
  it('an unknown name lists the built-in sets', async () => {
    await assert.rejects(
      loadConceptSet('30k', { cacheDir: tempDir(), offline: true }),
      /concept set '30k' is neither a file nor a built-in set; .* one of '20k', '10k', '3k', 'broden' or 'imagenet'/,
    );
  });
});
