/**
 * The command-line interface: argument parsing, help, progress rendering and error reporting over the
 * library. `runMain(argv, io)` returns the exit code; bin/clip-dissect.js is the only place that exits.
 */
import { ArgumentError, ClipDissectError, formatChoices } from '../numeric/errors.js';
import { VERSION } from '../version.js';
import {
  CliError,
  type CliIO,
  cliArgumentMessage,
  didYouMean,
  EXIT_INTERNAL,
  EXIT_USAGE,
  interruptedExitCode,
  printable,
  UsageError,
} from './_args.js';
import { ACTIVATIONS_HELP, activationsCommand } from './commands/activations.js';
import { CACHE_HELP, cacheCommand } from './commands/cache.js';
import { COMPOSE_HELP, composeCommand } from './commands/compose.js';
import { DISSECT_HELP, dissectCommand } from './commands/dissect.js';
import { EVAL_HELP, evalCommand } from './commands/eval.js';
import { LAYERS_HELP, layersCommand } from './commands/layers.js';
import { REPORT_HELP, reportCommand } from './commands/report.js';
import { SANITY_HELP, sanityCommand } from './commands/sanity.js';
import { SCORE_HELP, scoreCommand } from './commands/score.js';
import { SIMILARITY_HELP, similarityCommand } from './commands/similarity.js';
import { WEIGHTS_HELP, weightsCommand } from './commands/weights.js';

export { CliError, type CliIO, interruptedExitCode, UsageError } from './_args.js';

const defaultIO: CliIO = { stdout: process.stdout, stderr: process.stderr };

interface Command {
  help: string;
  run: (args: string[], io: CliIO) => Promise<number>;
}

const COMMANDS: Record<string, Command> = {
  activations: { help: ACTIVATIONS_HELP, run: activationsCommand },
  cache: { help: CACHE_HELP, run: cacheCommand },
  compose: { help: COMPOSE_HELP, run: composeCommand },
  dissect: { help: DISSECT_HELP, run: dissectCommand },
  eval: { help: EVAL_HELP, run: evalCommand },
  layers: { help: LAYERS_HELP, run: layersCommand },
  report: { help: REPORT_HELP, run: reportCommand },
  sanity: { help: SANITY_HELP, run: sanityCommand },
  score: { help: SCORE_HELP, run: scoreCommand },
  similarity: { help: SIMILARITY_HELP, run: similarityCommand },
  weights: { help: WEIGHTS_HELP, run: weightsCommand },
};

const COMMAND_NAMES = [...Object.keys(COMMANDS), 'help', 'version'];

const MAIN_HELP = `clip-dissect ${VERSION} — label every neuron of a vision network with a concept (CLIP-Dissect)

Usage: clip-dissect <command> [options]

Commands:
  activations  run a network over probe images and save each layer's pooled activations (.npy)
  cache        list, clean (--all, --older-than 30d, --model ID) or verify the cache of models and features
  compose      explain chosen neurons with two-concept compositions "w1 w2" (paper Sec. 4.6)
  dissect      label every neuron of chosen layers: CLIP features, activations and similarity in one run
  eval         score a layer's labels against class names (CLIP / mpnet cosine, top-k accuracy, AUC)
  layers       list the dissectable layers of an ONNX model, named as in PyTorch
  report       build the interactive HTML report of a dissect results folder
  sanity       synthetic neurons with known labels: recovery per noise level, metric sanity tests
  score        which labels to trust: stability, significance, simulation and sanity-checked metrics
  similarity   label one layer's neurons from saved CLIP features and activations (.npy)
  weights      weights between two layers vs the similarity of their neurons' concepts (paper Sec. 5)
  help         show help for a command: clip-dissect help similarity
  version      print the version

Options:
  -h, --help      show help
  -V, --version   print the version

Exit status: 0 done, 1 bad input, 2 usage error (unknown command or flag, missing value), 130 interrupted.
`;

/**
 * Commands that pass `io.signal` to the library and stop at its next check (layers, which only opens a model,
 * is stopped by the signal itself).
 */
export const INTERRUPTIBLE_COMMANDS: ReadonlySet<string> = new Set(
  Object.keys(COMMANDS).filter((c) => c !== 'layers'),
);

/**
 * Runs the CLI on `argv` (without node and the script) and returns the exit code: 0, 1 for bad input, 2 for a
 * usage error (unknown command or flag, a flag without its value, a missing flag), 128 + the signal's number
 * after `io.signal` stopped the command (130 for SIGINT), 70 for an internal error. Never exits.
 */
export async function runMain(argv: string[], io: CliIO = defaultIO): Promise<number> {
  const [command, ...rest] = argv;
  const cmd = Object.hasOwn(COMMANDS, command ?? '') ? COMMANDS[command] : undefined;
  // stdout carries concepts and file names: never a control character from them to the terminal
  const raw = io;
  io = { ...raw, stdout: { write: (s) => raw.stdout.write(printable(s)) } };
  try {
    if (command === undefined) {
      io.stderr.write(MAIN_HELP);
      return EXIT_USAGE;
    }
    if (command === '-h' || command === '--help') {
      io.stdout.write(MAIN_HELP);
      return 0;
    }
    if (command === '-V' || command === '--version' || command === 'version') {
      io.stdout.write(`${VERSION}\n`);
      return 0;
    }
    if (command === 'help') {
      const topic = rest[0];
      if (topic === undefined) io.stdout.write(MAIN_HELP);
      else if (COMMANDS[topic]) io.stdout.write(COMMANDS[topic].help);
      else
        throw new UsageError(
          `help: unknown command '${topic}'${didYouMean(topic, Object.keys(COMMANDS))}; commands are ${formatChoices(COMMAND_NAMES)}`,
        );
      return 0;
    }
    if (cmd) return await cmd.run(rest, io);
    throw new UsageError(
      `unknown command '${command}'${didYouMean(command, COMMAND_NAMES)}; commands are ${formatChoices(COMMAND_NAMES)} (see clip-dissect --help)`,
    );
  } catch (e) {
    // Ctrl-C: the command stopped at its next check of io.signal; what it wrote and cached stays
    if (io.signal?.aborted) {
      io.stderr.write(`clip-dissect: interrupted (${String(io.signal.reason)})\n`);
      return interruptedExitCode(String(io.signal.reason));
    }
    if (e instanceof ClipDissectError) {
      const message = e instanceof ArgumentError && cmd ? cliArgumentMessage(e, cmd.help) : e.message;
      io.stderr.write(`clip-dissect: error: ${printable(message)}\n`);
      return e instanceof CliError ? e.exitCode : 1;
    }
    const sys = e as NodeJS.ErrnoException;
    if (sys instanceof Error && typeof sys.code === 'string' && typeof sys.syscall === 'string') {
      // the file system or the OS refused (a full disk, a permission taken away meanwhile): not a bug
      io.stderr.write(`clip-dissect: error: ${printable(sys.message)}\n`);
      return 1;
    }
    io.stderr.write(`clip-dissect: internal error (please report it): ${(e as Error)?.stack ?? String(e)}\n`);
    return EXIT_INTERNAL;
  }
}
