/** `clip-dissect cache list | clean | verify`: what the cache folder holds, removing and checking it. */

import { defaultCacheDir } from '../../io/cache-dir.js';
import { formatChoices } from '../../numeric/errors.js';
import {
  type CacheEntry,
  type CacheKind,
  cleanCache,
  featureKind,
  scanCache,
  verifyCache,
} from '../../pipeline/cache-admin.js';
import { CliError, type CliIO, didYouMean, parseDuration, UsageError } from '../_args.js';
import { startCommand } from '../_command.js';
import { CACHE_DIR, type FlagGroup, flag, helpText, JSON_OUTPUT, QUIET } from '../_flags.js';
import { jsonText } from '../_json.js';

export const GROUPS = [
  {
    title: 'clean: exactly one of',
    flags: {
      all: { type: 'boolean', help: 'everything listed' },
      'older-than': { type: 'string', arg: 'AGE', help: 'entries not used for AGE: 30d, 12h, 2w, 90m' },
      model: {
        type: 'string',
        arg: 'ID|PATH',
        help: 'a cached hub model (e.g. Xenova/clip-vit-base-patch16) and the features computed with it; or only the features of a local model file or folder',
      },
    },
  },
  {
    title: 'Options',
    flags: {
      'cache-dir': flag(CACHE_DIR, {
        help: 'the cache folder',
        default: `${CACHE_DIR.default}, or $XDG_CACHE_HOME/clip-dissect`,
      }),
      'dry-run': { type: 'boolean', help: 'clean: print what would be removed, remove nothing' },
      delete: {
        type: 'boolean',
        help: 'verify: delete corrupt entries (a model only its bad files), to be fetched or computed again on next use',
      },
      json: flag(JSON_OUTPUT, { help: 'machine-readable output' }),
      quiet: QUIET,
    },
  },
] as const satisfies readonly FlagGroup[];

export const CACHE_HELP = helpText(
  'clip-dissect cache list|clean|verify [options]',
  `The cache folder holds models downloaded from the Hugging Face hub, the built-in concept sets and probe sets,
and the CLIP features and activations of earlier runs (content-addressed; a killed run resumes from them).

  list     its entries by kind, with sizes and last use: models, concept sets, probe sets, features (by kind:
           text, image, activations, kept), and partial files that interrupted downloads or writes left
  clean    remove entries (exactly one of --all, --older-than, --model), then print what it removed
  verify   check every entry: features against their recorded SHA-256 and shape, downloaded model files
           against the size and SHA-256 recorded at download, concept and probe sets against their SHA-256;
           exit status 1 when an entry is corrupt`,
  GROUPS,
);

const SUBCOMMANDS = ['list', 'clean', 'verify'] as const;

const KIND_NAMES: Record<CacheKind, string> = {
  models: 'models',
  concepts: 'concept sets',
  probes: 'probe sets',
  features: 'features',
  partial: 'partial files',
};

function mb(bytes: number): string {
  return bytes >= 1e9 ? `${(bytes / 1e9).toFixed(2)} GB` : `${(bytes / 1e6).toFixed(2)} MB`;
}

function when(d: Date): string {
  return d.getTime() > 0 ? `${d.toISOString().slice(0, 16).replace('T', ' ')} UTC` : '-';
}

function count(n: number, what = 'entry'): string {
  return `${n} ${n === 1 ? what : what === 'entry' ? 'entries' : `${what}s`}`;
}

interface Group {
  name: string;
  entries: CacheEntry[];
  bytes: number;
  lastUsed: Date;
}

function group(name: string, entries: CacheEntry[]): Group {
  return {
    name,
    entries,
    bytes: entries.reduce((s, e) => s + e.bytes, 0),
    lastUsed: new Date(Math.max(0, ...entries.map((e) => e.lastUsed.getTime()))),
  };
}

/** Entries of one kind; features in one group per feature kind. */
function groups(entries: CacheEntry[], kind: CacheKind): Group[] {
  const of = entries.filter((e) => e.kind === kind);
  if (kind !== 'features') return of.map((e) => group(e.id, [e]));
  const names = [...new Set(of.map(featureKind))].sort();
  return names.map((n) =>
    group(
      n,
      of.filter((e) => featureKind(e) === n),
    ),
  );
}

function listText(dir: string, entries: CacheEntry[]): string {
  const total = entries.reduce((s, e) => s + e.bytes, 0);
  const out = [`${dir}: ${count(entries.length)}, ${mb(total)}`];
  const rows: string[][] = [];
  for (const kind of Object.keys(KIND_NAMES) as CacheKind[]) {
    const of = entries.filter((e) => e.kind === kind);
    if (of.length === 0) {
      rows.push([KIND_NAMES[kind], 'none', '', '']);
      continue;
    }
    const g = group(KIND_NAMES[kind], of);
    rows.push([g.name, count(of.length), mb(g.bytes), `last used ${when(g.lastUsed)}`]);
    const sub = groups(entries, kind);
    for (const s of sub.slice(0, 20)) {
      const what = kind === 'features' ? count(s.entries.length) : count(s.entries[0].files, 'file');
      rows.push([`  ${s.name}`, what, mb(s.bytes), `last used ${when(s.lastUsed)}`]);
    }
    if (sub.length > 20) rows.push([`  … and ${sub.length - 20} more (--json lists all)`, '', '', '']);
  }
  const full = rows.filter((r) => r[2] !== '');
  const w = [0, 1, 2].map((i) => Math.max(0, ...full.map((r) => r[i].length)));
  for (const r of rows) {
    if (r[1] === 'none') out.push(`${r[0].padEnd(w[0])}  ${'none'.padStart(w[1])}`);
    else if (r[2] === '') out.push(r[0]);
    else out.push(`${r[0].padEnd(w[0])}  ${r[1].padStart(w[1])}  ${r[2].padStart(w[2])}  ${r[3]}`);
  }
  return `${out.join('\n')}\n`;
}

function entryJson(e: CacheEntry) {
  return { kind: e.kind, id: e.id, bytes: e.bytes, files: e.files, lastUsed: e.lastUsed.toISOString() };
}

export async function cacheCommand(args: string[], io: CliIO): Promise<number> {
  const start = await startCommand(
    {
      name: 'cache',
      help: CACHE_HELP,
      groups: GROUPS,
      positionals: true,
      progress: true,
      // list and verify read a cache that may be read-only; clean reports what it cannot delete
      writesFolders: false,
    },
    args,
    io,
  );
  if (!start) return 0;
  const { values, positionals, onProgress } = start;
  const sub = positionals[0];
  if (positionals.length !== 1 || !(SUBCOMMANDS as readonly string[]).includes(sub)) {
    throw new UsageError(
      `cache: expected one of ${formatChoices(SUBCOMMANDS)} but got ${positionals.length ? `'${positionals.join(' ')}'${positionals.length === 1 ? didYouMean(positionals[0], SUBCOMMANDS) : ''}` : 'nothing'} (see clip-dissect help cache)`,
    );
  }
  const only: Partial<Record<keyof typeof values, string[]>> = {
    all: ['clean'],
    'older-than': ['clean'],
    model: ['clean'],
    'dry-run': ['clean'],
    delete: ['verify'],
    json: ['list', 'clean', 'verify'],
  };
  for (const [flag, subs] of Object.entries(only) as [keyof typeof values, string[]][]) {
    if (values[flag] !== undefined && !subs.includes(sub))
      throw new UsageError(`cache ${sub}: --${flag} applies to cache ${subs.join(' and cache ')} only`);
  }
  const dir = (values['cache-dir'] as string | undefined) ?? defaultCacheDir();
  if (dir === '') throw new CliError(`--cache-dir must be a folder but got ''`);

  if (sub === 'list') {
    const entries = await scanCache(dir);
    io.stdout.write(
      values.json ? jsonText({ cacheDir: dir, entries: entries.map(entryJson) }) : listText(dir, entries),
    );
    return 0;
  }

  if (sub === 'clean') {
    const picked = (['all', 'older-than', 'model'] as const).filter((f) => values[f] !== undefined);
    if (picked.length !== 1) {
      throw new UsageError(
        `cache clean: give exactly one of --all, --older-than AGE, --model ID${picked.length ? ` (got ${picked.map((f) => `--${f}`).join(', ')})` : ''}`,
      );
    }
    const olderThan = values['older-than'] as string | undefined;
    const r = await cleanCache(
      dir,
      {
        all: values.all === true ? true : undefined,
        olderThanMs: olderThan === undefined ? undefined : parseDuration('older-than', olderThan),
        model: values.model as string | undefined,
      },
      { dryRun: values['dry-run'] === true },
      { onProgress, signal: io.signal },
    );
    if (values.json) {
      io.stdout.write(
        jsonText({
          cacheDir: dir,
          dryRun: values['dry-run'] === true,
          bytes: r.bytes,
          removed: r.removed.map(entryJson),
        }),
      );
      return 0;
    }
    const verb = values['dry-run'] ? 'would remove' : 'removed';
    if (r.removed.length === 0) {
      const why = olderThan ? ` unused for ${olderThan}` : values.model ? ` of model ${values.model}` : '';
      io.stdout.write(`${dir}: nothing to remove (no entry${why})\n`);
      return 0;
    }
    const out = [`${dir}: ${verb} ${count(r.removed.length)}, ${mb(r.bytes)}`];
    for (const kind of Object.keys(KIND_NAMES) as CacheKind[]) {
      const of = r.removed.filter((e) => e.kind === kind);
      if (of.length === 0) continue;
      const bytes = mb(of.reduce((s, e) => s + e.bytes, 0));
      if (kind === 'features') {
        const by = groups(r.removed, kind).map((g) => `${g.name} ${g.entries.length}`);
        out.push(`  features: ${count(of.length)}, ${bytes} (${by.join(', ')})`);
      } else if (kind === 'partial') out.push(`  partial files: ${of.length}, ${bytes}`);
      else out.push(`  ${KIND_NAMES[kind]}: ${of.map((e) => `${e.id} (${mb(e.bytes)})`).join(', ')}`);
    }
    io.stdout.write(`${out.join('\n')}\n`);
    return 0;
  }

  const results = await verifyCache(
    dir,
    { remove: values.delete === true },
    { onProgress, signal: io.signal },
  );
  const n = (s: string) => results.filter((r) => r.status === s).length;
  const leftCorrupt = results.filter((r) => r.status === 'corrupt' && !r.removed).length;
  if (values.json) {
    io.stdout.write(
      jsonText({
        cacheDir: dir,
        results: results.map((r) => ({
          ...entryJson(r.entry),
          status: r.status,
          detail: r.detail,
          removed: r.removed,
        })),
      }),
    );
    return leftCorrupt > 0 ? 1 : 0;
  }
  const bytes = results.reduce((s, r) => s + r.entry.bytes, 0);
  const out = [
    `${dir}: verified ${count(results.length)}, ${mb(bytes)}: ${n('ok')} ok, ${n('unverified')} unverified, ${n('corrupt')} corrupt`,
  ];
  for (const r of results) {
    if (r.status === 'ok') continue;
    const id =
      r.entry.kind === 'features' ? `${r.entry.id.slice(0, r.entry.id.indexOf('/') + 13)}…` : r.entry.id;
    out.push(`${r.status} ${KIND_NAMES[r.entry.kind]} ${id}: ${r.detail}${r.removed ? ' (deleted)' : ''}`);
  }
  if (leftCorrupt > 0) out.push(`delete corrupt entries with: clip-dissect cache verify --delete`);
  io.stdout.write(`${out.join('\n')}\n`);
  return leftCorrupt > 0 ? 1 : 0;
}
