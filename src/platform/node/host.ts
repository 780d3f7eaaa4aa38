/** The host port on Node's `os` and `process`. */
import { readFileSync } from 'node:fs';
import { arch, availableParallelism, homedir, hostname } from 'node:os';
import type { Host } from '../types.js';

let flags: ReadonlySet<string> | undefined;

/** The CPU flags of the first processor in /proc/cpuinfo (x86 'flags', Arm 'Features'); empty elsewhere. */
function cpuFlags(): ReadonlySet<string> {
  if (flags) return flags;
  let text = '';
  try {
    text = readFileSync('/proc/cpuinfo', 'latin1');
  } catch {
    // not Linux: no flags
  }
  const line = /^(?:flags|Features)\s*:(.*)$/m.exec(text);
  flags = new Set((line?.[1] ?? '').trim().toLowerCase().split(/\s+/).filter(Boolean));
  return flags;
}

export const nodeHost: Host = {
  availableParallelism: () => availableParallelism(),
  arch: arch(),
  cpuFlags,
  env: (name) => process.env[name],
  homedir: () => homedir(),
  hostname: () => hostname(),
  pid: process.pid,
  cwd: () => process.cwd(),
  runtimeVersions: { node: process.version },
  isProcessAlive: (pid) => {
    try {
      process.kill(pid, 0);
      return true;
    } catch (err) {
      // EPERM: it exists but belongs to someone else
      return (err as NodeJS.ErrnoException).code === 'EPERM';
    }
  },
  onExit: (listener) => {
    process.on('exit', listener);
    return () => void process.off('exit', listener);
  },
};
