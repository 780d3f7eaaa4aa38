/** `clip-dissect report`: (re)builds the HTML report of a dissect results folder (see src/report/html-report.ts). */

import { stat } from 'node:fs/promises';
import { join, resolve } from 'node:path';
import { isFile } from '../../io/files.js';
import { buildReport, type ReportResult } from '../../report/html-report.js';
import { CliError, type CliIO, optionalInt, parseNumber, UsageError } from '../_args.js';
import { startCommand } from '../_command.js';
import { type FlagGroup, flag, helpText, JSON_OUTPUT, QUIET, RESULTS } from '../_flags.js';
import { jsonText } from '../_json.js';

export const GROUPS = [
  {
    title: 'Inputs',
    flags: { results: flag(RESULTS, { help: `${RESULTS.help}; or give DIR as the operand` }) },
  },
  {
    title: 'Options',
    flags: {
      'top-images': {
        type: 'string',
        arg: 'N',
        help: 'most activating images shown per neuron',
        default: '5',
      },
      'thumb-size': {
        type: 'string',
        arg: 'PX',
        help: 'thumbnail edge in pixels; thumbnails of an earlier build with the same size are reused',
        default: '128',
      },
      'strip-size': {
        type: 'string',
        arg: 'N',
        help: 'images in each random top-0.1%/1%/5% strip',
        default: '5',
      },
      seed: { type: 'string', arg: 'S', help: 'seed of the random strips', default: '0' },
      quiet: QUIET,
      json: flag(JSON_OUTPUT, { help: 'print what was built as JSON instead of the summary line' }),
    },
  },
] as const satisfies readonly FlagGroup[];

export const REPORT_HELP = helpText(
  'clip-dissect report --results DIR [options]\n       clip-dissect report DIR [options]',
  `Builds DIR/report/index.html from the results folder DIR of clip-dissect dissect: per layer a sortable
table of every neuron (label, score, top concepts), per neuron its most activating images with their
activations and random images from the top 0.1% / 1% / 5% of its activations, a search across layers,
score histograms and dead-neuron flags. The page works offline from the file system (open it in a browser;
links like index.html#layer4/12 open a neuron). clip-dissect dissect writes it unless --no-report.`,
  GROUPS,
);

/** What `report` and `dissect` print about a built report. */
export function reportSummary(r: ReportResult): string {
  const mb = (r.bytes / 1e6).toFixed(r.bytes < 1e7 ? 2 : 1);
  const t = r.thumbnails;
  const thumbs = `${t.total} thumbnail${t.total === 1 ? '' : 's'} (${t.written} written, ${t.reused} reused${t.failed ? `, ${t.failed} unreadable` : ''})`;
  return `report: ${r.layers} layer${r.layers === 1 ? '' : 's'}, ${r.neurons} neurons, ${thumbs}, ${mb} MB in ${r.seconds.toFixed(1)}s → ${r.index}`;
}

export async function reportCommand(args: string[], io: CliIO): Promise<number> {
  const start = await startCommand(
    {
      name: 'report',
      help: REPORT_HELP,
      groups: GROUPS,
      positionals: true,
      progress: true,
    },
    args,
    io,
  );
  if (!start) return 0;
  const { values, positionals, renderer, onProgress } = start;
  const folders = [...(values.results === undefined ? [] : [values.results as string]), ...positionals];
  if (folders.length !== 1)
    throw new UsageError(
      folders.length === 0
        ? 'report: missing DIR, the results folder of clip-dissect dissect: --results DIR (see clip-dissect help report)'
        : `report: expected one results folder but got ${folders.length}: ${folders.join(' ')}`,
    );
  const topImages = optionalInt('top-images', values['top-images']);
  const thumbSize = optionalInt('thumb-size', values['thumb-size'], 16);
  const stripSize = optionalInt('strip-size', values['strip-size']);
  const seed =
    values.seed === undefined ? undefined : parseNumber('seed', values.seed as string, { integer: true });
  if (topImages !== undefined && topImages > 1000)
    throw new CliError(`--top-images must be <= 1000 but got ${topImages}`);
  if (thumbSize !== undefined && thumbSize > 2048)
    throw new CliError(`--thumb-size must be <= 2048 but got ${thumbSize}`);
  if (stripSize !== undefined && stripSize > 100)
    throw new CliError(`--strip-size must be <= 100 but got ${stripSize}`);

  const dir = resolve(folders[0]);
  if (!(await stat(dir).catch(() => null))?.isDirectory())
    throw new CliError(`report: ${dir}: no such folder (expected the --out folder of clip-dissect dissect)`);
  if (!(await isFile(join(dir, 'neurons.json'))))
    throw new CliError(
      `report: ${join(dir, 'neurons.json')} not found: ${dir} is not a clip-dissect dissect results folder`,
    );
  const r = await buildReport(
    {
      dir,
      topImages,
      thumbSize,
      stripSize,
      seed,
    },
    { onProgress, onWarning: renderer.warning, signal: io.signal },
  );
  renderer.finishLine();
  io.stdout.write(values.json ? jsonText(r) : `${reportSummary(r)}\n`);
  return 0;
}
