#!/usr/bin/env node
import { INTERRUPTIBLE_COMMANDS, interruptedExitCode, runMain } from '../dist/src/cli/main.js';
import { releaseHeldLocks } from '../dist/src/io/folders.js';

// Ctrl-C / kill: a command that checks the signal (all but layers) stops at its next check, clears its
// progress line and exits 130 with what it wrote and cached intact; layers, or a second Ctrl-C, stops at once. Either way the lock of a results folder being written goes with the process (files already
// written and cached chunks stay; a rerun resumes from them).
const controller = new AbortController();
const command = process.argv[2];
for (const signal of ['SIGINT', 'SIGTERM', 'SIGHUP']) {
  process.on(signal, () => {
    if (!controller.signal.aborted && INTERRUPTIBLE_COMMANDS.has(command)) {
      controller.abort(signal);
      return;
    }
    releaseHeldLocks();
    process.stderr.write(`\nclip-dissect: interrupted (${signal}), stopped at once\n`);
    process.exit(interruptedExitCode(signal));
  });
}

process.exitCode = await runMain(process.argv.slice(2), {
  stdout: process.stdout,
  stderr: process.stderr,
  signal: controller.signal,
});
