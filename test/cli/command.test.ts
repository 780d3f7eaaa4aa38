import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { CliError } from '../../src/cli/_args.js';
import { type CommandSpec, startCommand } from '../../src/cli/_command.js';

function io() {
  const out: string[] = [];
  const err: string[] = [];
  return {
    out,
    err,
    io: {
      stdout: { write: (s: string) => void out.push(s) },
      stderr: { write: (s: string) => void err.push(s) },
    },
  };
}

const SPEC: CommandSpec = {
  name: 'demo',
  help: 'usage: clip-dissect demo --in FILE\n',
  options: { in: { type: 'string' }, n: { type: 'string' } },
  required: ['in'],
  progress: true,
};

describe('startCommand', () => {
  test('-h prints the help and returns null, whatever else is missing', async () => {
    const t = io();
    assert.equal(await startCommand(SPEC, ['-h'], t.io), null);
    assert.deepEqual(t.out, [SPEC.help]);
  });

  test('gives the values, a renderer and its progress callback; -q turns progress off', async () => {
    const a = await startCommand(SPEC, ['--in', 'x', '--n', '3'], io().io);
    assert.ok(a);
    assert.equal(a.values.in, 'x');
    assert.equal(a.values.n, '3');
    assert.equal(a.onProgress, a.renderer.onProgress);
    const t = io();
    const q = await startCommand(SPEC, ['--in', 'x', '-q'], t.io);
    assert.equal(q?.onProgress, undefined);
    q?.renderer.warning('kept');
    assert.match(t.err.join(''), /kept/);
  });

  test('missing required flags, unknown flags and operands are CliErrors naming the command', async () => {
    await assert.rejects(
      () => startCommand(SPEC, [], io().io),
      (e: unknown) =>
        e instanceof CliError && /demo: missing --in \(see clip-dissect help demo\)/.test(e.message),
    );
    await assert.rejects(
      () => startCommand(SPEC, ['--in', 'x', '--nope'], io().io),
      (e: unknown) => e instanceof CliError && /^demo: .*--nope/.test(e.message),
    );
    await assert.rejects(() => startCommand(SPEC, ['--in', 'x', 'extra'], io().io), CliError);
    const withOperands = await startCommand({ ...SPEC, positionals: true }, ['--in', 'x', 'a', 'b'], io().io);
    assert.deepEqual(withOperands?.positionals, ['a', 'b']);
    // a command without progress takes no --quiet
    await assert.rejects(
      () => startCommand({ ...SPEC, progress: false }, ['--in', 'x', '-q'], io().io),
      CliError,
    );
  });
});
