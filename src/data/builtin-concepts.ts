/**
 * The paper's concept sets, fetched from their public source on first use, checked against a SHA-256
 * and cached under `<cacheDir>/concepts/<sha256>-<file>` (its modification time: the last use). Nothing is
 * downloaded when `offline` is set.
 */

import { platform } from '#platform';
import { defaultCacheDir } from '../io/cache-dir.js';
import { markUsed } from '../io/cache-files.js';
import { downloadFile } from '../io/download.js';
import { fsErrorCode } from '../io/files.js';
import { NotRegularFileError, readRegularFile } from '../io/regular-file.js';
import { sha256Hex } from '../io/sha256.js';
import { formatChoices } from '../numeric/errors.js';
import type { ProgressCallback, RunHooks } from '../progress.js';
import { type ConceptSet, ConceptSetError, parseConcepts } from './concepts.js';

/** Kept here too for callers that imported it from this module. */
export { defaultCacheDir };

const OFFICIAL = 'https://raw.githubusercontent.com/Trustworthy-ML-Lab/CLIP-dissect/main/data/';

export interface BuiltinConceptSet {
  file: string;
  url: string;
  sha256: string;
  /** Concepts after dropping blank lines and duplicates. */
  description: string;
}

export const BUILTIN_CONCEPT_SETS: Readonly<Record<string, BuiltinConceptSet>> = {
  '20k': {
    file: '20k.txt',
    url: `${OFFICIAL}20k.txt`,
    sha256: '4ed6e5336d7760d281f7e72df31827da880c861363e820d8c65666b0f10d9ac0',
    description: '20,000 most common English words (google-10000-english, 20k list)',
  },
  '10k': {
    file: '10k.txt',
    url: `${OFFICIAL}10k.txt`,
    sha256: 'd6b3e04f1ac30be6525d41474166c0bff28486ecd8c48dcb0ab9c7c9cc05ed86',
    description: '9,894 common English words',
  },
  '3k': {
    file: '3k.txt',
    url: `${OFFICIAL}3k.txt`,
    sha256: '425845cf228cf91200e25cbf0361cc078502ce1cc2f9d4558b29abe78096afe1',
    description: '3,000 most common English words',
  },
  broden: {
    file: 'broden_labels_clean.txt',
    url: `${OFFICIAL}broden_labels_clean.txt`,
    sha256: '603036d4b138c66455e1285bd915f6cdcdf4728df7a5563843d1f89c9babe64b',
    description: 'Broden labels, cleaned (1,197 lines, 44 duplicates)',
  },
  imagenet: {
    file: 'imagenet_labels.txt',
    url: `${OFFICIAL}imagenet_labels.txt`,
    sha256: '8b243a5b56f530010b42d64d8ef33c2660224447aded823f4d9de2cb1902a70e',
    description: 'the 1,000 ImageNet class names with synonyms ("tench, Tinca tinca")',
  },
};

export const BUILTIN_CONCEPT_NAMES = Object.keys(BUILTIN_CONCEPT_SETS);

export interface LoadConceptsOptions {
  /** Default: defaultCacheDir(). */
  cacheDir?: string;
  /** Never touch the network; a built-in set must already be cached. */
  offline?: boolean;
  /** Replaces the official URL prefix (a mirror, or a local server in tests). */
  baseUrl?: string;
  /** The fetch implementation (default: global fetch). */
  fetch?: typeof fetch;
  /** @deprecated since 0.x: pass `onProgress` in the second argument ({@link RunHooks}); still honoured. */
  onProgress?: ProgressCallback;
}

async function tryRead(path: string): Promise<Uint8Array | undefined> {
  try {
    return await readRegularFile(path);
  } catch (e) {
    if (fsErrorCode(e) === 'ENOENT') return undefined;
    throw e;
  }
}

/**
 * Loads a concept set: a text file (one concept a line), or a built-in name
 * ('20k', '10k', '3k', 'broden', 'imagenet'), downloaded and cached on first use.
 */
export async function loadConceptSet(
  spec: string,
  options: LoadConceptsOptions = {},
  hooks: RunHooks = {},
): Promise<ConceptSet> {
  const asFile = await tryRead(spec).catch((e: Error & { code?: string }) => {
    if (e instanceof NotRegularFileError) throw new ConceptSetError(`concept file ${e.message}`);
    throw new ConceptSetError(`${spec}: cannot read the concept file (${e.code ?? e.message})`);
  });
  if (asFile) return parseConcepts(new TextDecoder('utf-8').decode(asFile), spec);
  const builtin = BUILTIN_CONCEPT_SETS[spec];
  if (!builtin) {
    throw new ConceptSetError(
      `concept set '${spec}' is neither a file nor a built-in set; give a text file with one concept a line or one of ${formatChoices(BUILTIN_CONCEPT_NAMES)}`,
    );
  }
  const cached = platform.paths.join(
    options.cacheDir ?? defaultCacheDir(),
    'concepts',
    `${builtin.sha256}-${builtin.file}`,
  );
  const have = await tryRead(cached);
  if (have && sha256Hex(have) === builtin.sha256) {
    await markUsed(cached);
    return parseConcepts(new TextDecoder().decode(have), spec);
  }
  if (have) await platform.files.rm(cached, { force: true }); // corrupted: fetch again
  const url = options.baseUrl ? `${options.baseUrl.replace(/\/?$/, '/')}${builtin.file}` : builtin.url;
  if (options.offline) {
    throw new ConceptSetError(
      `built-in concept set '${spec}' is not in the cache (${cached}) and offline mode forbids downloading it; run once without --offline, or download ${url} yourself and pass the file`,
    );
  }
  await downloadFile(
    {
      url,
      path: cached,
      label: `built-in concept set '${spec}'`,
      stage: `download ${builtin.file}`,
      fetch: options.fetch,
      checks: [
        { algorithm: 'sha256', value: builtin.sha256, from: 'the SHA-256 clip-dissect knows for this set' },
      ],
      advice: 'download it yourself and pass the file',
      error: (message) => new ConceptSetError(message),
    },
    { onProgress: hooks.onProgress ?? options.onProgress, signal: hooks.signal },
  );
  return parseConcepts(new TextDecoder().decode(await readRegularFile(cached)), spec);
}
