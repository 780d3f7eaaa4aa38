/** `clip-dissect compose`: two-concept explanations of chosen neurons (paper Sec. 4.6). */

import { composeConcepts } from '../../pipeline/compose.js';
import { CliError, type CliIO, optionalInt, optionalSize, parseNumber } from '../_args.js';
import { startCommand, wroteLines } from '../_command.js';
import {
  CACHE_DIR,
  type FlagGroup,
  flag,
  helpText,
  JSON_OUTPUT,
  LAYER,
  MEMORY_BUDGET,
  QUIET,
  RESULTS,
  RESULTS_OUT,
  RUN_CONCEPTS,
  RUNTIME,
  THREADS,
} from '../_flags.js';
import { jsonText } from '../_json.js';

export const GROUPS = [
  {
    title: 'Inputs',
    flags: {
      results: RESULTS,
      layer: LAYER,
      units: { type: 'string', arg: 'U1,U2,…', help: 'the neurons to explain, e.g. 386,1617' },
    },
  },
  {
    title: 'Options',
    flags: {
      'pool-size': {
        type: 'string',
        arg: 'N',
        help: 'single concepts combined per unit (as in the paper)',
        default: '100',
      },
      show: { type: 'string', arg: 'N', help: 'candidates shown per unit', default: '10', alias: 'top' },
      out: RESULTS_OUT('compose.json'),
      concepts: RUN_CONCEPTS,
      'cache-dir': flag(CACHE_DIR, { help: 'where a built-in concept set is cached', default: "the run's" }),
      'memory-budget': MEMORY_BUDGET,
      threads: THREADS,
      runtime: RUNTIME,
      quiet: QUIET,
      json: flag(JSON_OUTPUT, { help: 'print the result as JSON instead of the tables' }),
    },
  },
] as const satisfies readonly FlagGroup[];

export const COMPOSE_HELP = helpText(
  'clip-dissect compose --results DIR --layer LAYER --units U1,U2,… [options]',
  `Explains neurons with two-concept compositions: for each unit, its --pool-size best single concepts are
combined into every ordered pair "w1 w2" (plus the singles: 10,000 candidates for 100), embedded with the
run's CLIP and template, and scored with the run's similarity function over the whole layer.`,
  GROUPS,
);

export async function composeCommand(args: string[], io: CliIO): Promise<number> {
  const start = await startCommand(
    {
      name: 'compose',
      help: COMPOSE_HELP,
      groups: GROUPS,
      required: ['results', 'layer', 'units'],
      progress: true,
    },
    args,
    io,
  );
  if (!start) return 0;
  const { values, renderer, onProgress } = start;
  const unitList = (values.units as string).split(',').filter((s) => s.trim() !== '');
  if (unitList.length === 0)
    throw new CliError(`--units must list neurons, e.g. 386,1617, but got '${values.units}'`);
  const units = unitList.map((u) => parseNumber('units', u, { integer: true, min: 0 }));
  const poolSize = optionalInt('pool-size', values['pool-size'], 2);
  const t0 = performance.now();
  const r = await composeConcepts(
    {
      results: values.results as string,
      layer: values.layer as string,
      units,
      poolSize,
      top: optionalInt('show', values.show),
      out: values.out as string | undefined,
      concepts: values.concepts as string | undefined,
      cacheDir: values['cache-dir'] as string | undefined,
      memoryBudget: optionalSize('memory-budget', values['memory-budget']),
      threads: optionalInt('threads', values.threads),
    },
    { onProgress, signal: io.signal },
  );
  renderer.finishLine();
  if (values.json) {
    io.stdout.write(jsonText(r));
    return 0;
  }
  const secs = ((performance.now() - t0) / 1000).toFixed(1);
  const out: string[] = [];
  out.push(
    `${r.similarity} over layer ${r.layer}: ${r.units.length} unit${r.units.length === 1 ? '' : 's'}, ${r.poolSize} single concepts each (${r.units[0]?.candidates ?? 0} candidates) in ${secs}s`,
  );
  for (const u of r.units) {
    out.push(
      `${r.layer} unit ${u.unit}: best singles ${u.original.map((c) => `${c.concept} (${c.score.toFixed(4)})`).join(', ')}`,
    );
    out.push('  rank  candidate                                 score');
    u.top.forEach((c, i) => {
      out.push(
        `  ${String(i + 1).padStart(4)}  ${(c.concept + (c.kind === 'single' ? '  [single]' : '')).slice(0, 40).padEnd(40)}  ${c.score.toFixed(4)}`,
      );
    });
  }
  if (r.files.length) {
    out.push(...wroteLines(r.files));
  }
  io.stdout.write(`${out.join('\n')}\n`);
  return 0;
}
