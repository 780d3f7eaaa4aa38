#!/usr/bin/env node
import { constants } from 'node:os';
import { runMain } from '../dist/src/cli/main.js';
import { releaseHeldLocks } from '../dist/src/io/folders.js';

// Ctrl-C / kill: the lock of a results folder being written goes with the process (files already written
// and cached chunks stay; a rerun resumes from them)
for (const signal of ['SIGINT', 'SIGTERM', 'SIGHUP']) {
  process.once(signal, () => {
    releaseHeldLocks();
    process.stderr.write(`\nclip-dissect: interrupted (${signal})\n`);
    process.exit(128 + constants.signals[signal]);
  });
}

process.exitCode = await runMain(process.argv.slice(2));
