/** `clip-dissect sanity`: synthetic neurons with known labels (src/pipeline/sanity.ts). */

import { SIMILARITY_NAMES, type SimilarityName } from '../../numeric/similarity-options.js';
import { runSanity, type SanityResult } from '../../pipeline/sanity.js';
import { CliError, type CliIO, choice, optionalInt, optionalSize, parseNumber } from '../_args.js';
import { startCommand, wroteLines } from '../_command.js';
import {
  type FlagGroup,
  flag,
  helpText,
  JSON_OUTPUT,
  MEMORY_BUDGET,
  QUIET,
  RESULTS,
  RESULTS_OUT,
  RUNTIME,
  SIMILARITY,
  THREADS,
} from '../_flags.js';
import { jsonText } from '../_json.js';

export const GROUPS = [
  {
    title: 'Inputs',
    flags: {
      results: RESULTS,
      neurons: {
        type: 'string',
        arg: 'N',
        help: 'single-concept neurons, and as many OR and AND neurons each',
        default: '50',
      },
      noise: {
        type: 'string',
        arg: 'L1,L2,…',
        help: 'noise levels, noise sd / signal sd',
        default: '0,0.5,1,2',
      },
      similarity: flag(SIMILARITY, {
        multiple: true,
        help: 'a function to test, repeatable',
        default: `all: ${SIMILARITY_NAMES.join(', ')}`,
      }),
      pairs: { type: 'string', arg: 'N', help: 'concept pairs for the metric tests', default: '200' },
      seed: { type: 'string', arg: 'S', help: 'seed of the concepts, pairs and noise', default: '0' },
      out: RESULTS_OUT('sanity.json'),
    },
  },
  {
    title: 'Resources',
    flags: {
      threads: THREADS,
      runtime: RUNTIME,
      'memory-budget': MEMORY_BUDGET,
      quiet: QUIET,
      json: flag(JSON_OUTPUT, { help: 'print the result as JSON instead of the tables' }),
    },
  },
] as const satisfies readonly FlagGroup[];

export const SANITY_HELP = helpText(
  'clip-dissect sanity --results DIR [options]',
  `Synthetic neurons with known labels, built from a dissection's CLIP features, concept set and probe set:
neuron_c(image) = CLIP cosine of the image and concept c (or the larger / smaller of two concepts' cosines:
OR / AND), plus Gaussian noise of a chosen multiple of the signal's standard deviation. Each similarity
function labels them; printed per noise level: recovery at top 1 (label = c) and top 5 (c among the 5 best).
Then the missing-label and extra-label tests of each metric over random concept pairs (pass rate: how often
the correct explanation scores strictly higher). Writes sanity.json.`,
  GROUPS,
);

const pct = (x: number) => `${(100 * x).toFixed(0)}%`.padStart(5);

function formatSanity(r: SanityResult): string {
  const out: string[] = [`synthetic neurons over ${r.images} probe images and ${r.concepts} concepts`];
  const levels = [...new Set(r.recovery.map((x) => x.noise))];
  const sims = [...new Set(r.recovery.map((x) => x.similarity))];
  out.push('');
  out.push('recovery, top-1 / top-5 (single | OR | AND)');
  out.push(`  ${'noise'.padEnd(22)}${levels.map((l) => String(l).padStart(32)).join('')}`);
  for (const s of sims) {
    const cells = levels.map((l) =>
      (['single', 'or', 'and'] as const)
        .map((kind) => {
          const row = r.recovery.find((x) => x.noise === l && x.similarity === s && x.kind === kind);
          return (row ? `${pct(row.top1).trim()}/${pct(row.top5).trim()}` : '').padStart(9);
        })
        .join(' ')
        .padStart(32),
    );
    out.push(`  ${s.padEnd(22)}${cells.join('')}`);
  }
  for (const test of ['missing-label', 'extra-label'] as const) {
    out.push('');
    out.push(`${test} test, pass rate`);
    out.push(`  ${'noise'.padEnd(22)}${levels.map((l) => String(l).padStart(8)).join('')}`);
    for (const m of [...new Set(r.tests.map((x) => x.metric))]) {
      const cells = levels.map((l) => {
        const row = r.tests.find((x) => x.noise === l && x.test === test && x.metric === m);
        return row ? pct(row.passRate).padStart(8) : '';
      });
      out.push(`  ${m.padEnd(22)}${cells.join('')}`);
    }
  }
  out.push(...wroteLines(r.files));
  return `${out.join('\n')}\n`;
}

export async function sanityCommand(args: string[], io: CliIO): Promise<number> {
  const start = await startCommand(
    {
      name: 'sanity',
      help: SANITY_HELP,
      groups: GROUPS,
      required: ['results'],
      progress: true,
    },
    args,
    io,
  );
  if (!start) return 0;
  const { values, renderer, onProgress } = start;
  const noise =
    values.noise === undefined
      ? undefined
      : String(values.noise)
          .split(',')
          .map((x) => parseNumber('noise', x, { min: 0 }));
  const sims = (values.similarity as string[] | undefined)?.map(
    (s) => choice<SimilarityName>('similarity', s, SIMILARITY_NAMES) as SimilarityName,
  );
  if (sims && new Set(sims).size !== sims.length) throw new CliError('--similarity names a function twice');
  const r = await runSanity(
    {
      results: values.results as string,
      neurons: optionalInt('neurons', values.neurons),
      noise,
      similarities: sims,
      pairs: optionalInt('pairs', values.pairs),
      seed: optionalInt('seed', values.seed, 0),
      out: values.out as string | undefined,
      threads: optionalInt('threads', values.threads),
      memoryBudget: optionalSize('memory-budget', values['memory-budget']),
    },
    { onProgress, signal: io.signal },
  );
  renderer.finishLine();
  io.stdout.write(values.json ? jsonText(r) : formatSanity(r));
  return 0;
}
