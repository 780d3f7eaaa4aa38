/** `clip-dissect sanity`: synthetic neurons with known labels (src/pipeline/sanity.ts). */

import { SIMILARITY_NAMES, type SimilarityName } from '../../numeric/similarity-options.js';
import { runSanity, type SanityResult } from '../../pipeline/sanity.js';
import { CliError, type CliIO, choice, optionalInt, optionalSize, parseNumber } from '../_args.js';
import { startCommand } from '../_command.js';

export const SANITY_HELP = `Usage: clip-dissect sanity --results DIR [options]

Synthetic neurons with known labels, built from a dissection's CLIP features, concept set and probe set:
neuron_c(image) = CLIP cosine of the image and concept c (or the larger / smaller of two concepts' cosines:
OR / AND), plus Gaussian noise of a chosen multiple of the signal's standard deviation. Each similarity
function labels them; printed per noise level: recovery at top 1 (label = c) and top 5 (c among the 5 best).
Then the missing-label and extra-label tests of each metric over random concept pairs (pass rate: how often
the correct explanation scores strictly higher). Writes sanity.json.

Inputs:
  --results DIR           the output folder of clip-dissect dissect
  --neurons N             single-concept neurons, and as many OR and AND neurons each (default 50)
  --noise L1,L2,…         noise levels, noise sd / signal sd (default 0,0.5,1,2)
  --similarity NAME       a function to test, repeatable (default all: ${SIMILARITY_NAMES.join(', ')})
  --pairs N               concept pairs for the metric tests (default 200)
  --seed S                seed of the concepts, pairs and noise (default 0)
  --out DIR               where to write sanity.json (default: the results folder)

Resources:
  --threads N             onnxruntime threads (default: all cores)
  --memory-budget SIZE    bound on the similarity engine's buffers, e.g. 2G (default 768M)
  -q, --quiet             no progress on stderr
`;

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
  out.push('wrote:');
  for (const f of r.files) out.push(`  ${f}`);
  return `${out.join('\n')}\n`;
}

export async function sanityCommand(args: string[], io: CliIO): Promise<number> {
  const start = await startCommand(
    {
      name: 'sanity',
      help: SANITY_HELP,
      options: {
        results: { type: 'string' },
        neurons: { type: 'string' },
        noise: { type: 'string' },
        similarity: { type: 'string', multiple: true },
        pairs: { type: 'string' },
        seed: { type: 'string' },
        out: { type: 'string' },
        threads: { type: 'string' },
        'memory-budget': { type: 'string' },
      },
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
    { onProgress },
  );
  renderer.finishLine();
  io.stdout.write(formatSanity(r));
  return 0;
}
