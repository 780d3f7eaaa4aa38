import { type ChildProcess, spawn } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { runMain } from '../../src/cli/main.js';

export async function cli(argv: string[]): Promise<{ code: number; stdout: string; stderr: string }> {
  let stdout = '';
  let stderr = '';
  const code = await runMain(argv, {
    stdout: {
      write: (s: string) => {
        stdout += s;
      },
    },
    stderr: {
      write: (s: string) => {
        stderr += s;
      },
      isTTY: false,
    },
  });
  return { code, stdout, stderr };
}

const made: string[] = [];
// node --test runs each test file in its own process: its temp folders go when it exits
// (CLIP_DISSECT_KEEP_TEMP=1 keeps them for a look)
process.once('exit', () => {
  if (process.env.CLIP_DISSECT_KEEP_TEMP) return;
  for (const d of made) rmSync(d, { recursive: true, force: true });
});

/** A fresh temp folder, removed when the test process exits. */
export function tempDir(prefix = 'clip-dissect-test-'): string {
  const d = mkdtempSync(join(tmpdir(), prefix));
  made.push(d);
  return d;
}

/** bin/clip-dissect.js, the installed command. */
export const CLI_BIN = fileURLToPath(new URL('../../../bin/clip-dissect.js', import.meta.url));

/** The CLI as a real child process (`node bin/clip-dissect.js …`), for what runMain cannot show: signals, locks
 * between processes. `done` resolves when it exits. */
export function spawnCli(argv: string[]): {
  child: ChildProcess;
  done: Promise<{ code: number | null; signal: NodeJS.Signals | null; stdout: string; stderr: string }>;
} {
  const child = spawn(process.execPath, [CLI_BIN, ...argv], { stdio: ['ignore', 'pipe', 'pipe'] });
  let stdout = '';
  let stderr = '';
  child.stdout?.on('data', (b: Buffer) => {
    stdout += b.toString();
  });
  child.stderr?.on('data', (b: Buffer) => {
    stderr += b.toString();
  });
  const done = new Promise<{
    code: number | null;
    signal: NodeJS.Signals | null;
    stdout: string;
    stderr: string;
  }>((resolveDone) => {
    child.on('close', (code, signal) => resolveDone({ code, signal, stdout, stderr }));
  });
  return { child, done };
}
