/**
 * Renders ProgressEvents on stderr: on a terminal, one line per stage redrawn in place with count, rate
 * and ETA, cut to the terminal's width (a wrapped line could not be redrawn); otherwise one line when a stage
 * ends (logs stay readable). Byte counts (downloads) are shown in kB / MB / GB.
 */
import type { ProgressEvent } from '../progress.js';
import { printable } from './_args.js';

export interface ProgressSink {
  write(s: string): void;
  isTTY?: boolean;
  /** The terminal's width in characters (process.stderr.columns). */
  columns?: number;
}

/** A byte count in the unit that fits it, with one decimal: 512 B, 40.2 kB, 97.8 MB, 1.2 GB. */
export function formatBytes(n: number): string {
  if (n < 1000) return `${Math.round(n)} B`;
  const units = ['kB', 'MB', 'GB', 'TB'];
  let v = n / 1000;
  let i = 0;
  while (v >= 999.95 && i < units.length - 1) {
    v /= 1000;
    i++;
  }
  return `${v.toFixed(1)} ${units[i]}`;
}

/** `line` cut to `width` characters, the stage label shortened in the middle so that the figures stay. */
function fit(line: string, stageLength: number, width: number | undefined): string {
  if (width === undefined || !(width > 0) || line.length <= width) return line;
  const over = line.length - width;
  if (stageLength - over - 1 >= 8) {
    const keep = stageLength - over - 1;
    const head = Math.ceil(keep / 2);
    return `${line.slice(0, head)}…${line.slice(stageLength - (keep - head))}`;
  }
  return `${line.slice(0, width - 1)}…`;
}

function fmtTime(s: number): string {
  if (!Number.isFinite(s)) return '?';
  if (s < 60) return `${s.toFixed(s < 10 ? 1 : 0)}s`;
  const m = Math.floor(s / 60);
  return `${m}m${String(Math.round(s - 60 * m)).padStart(2, '0')}s`;
}

export class ProgressRenderer {
  private stage = '';
  private start = 0;
  private lastDraw = 0;
  private drawn = false;
  private stopped = false;

  constructor(
    private readonly out: ProgressSink,
    private readonly now: () => number = () => performance.now(),
  ) {}

  readonly onProgress = (e: ProgressEvent): void => {
    if (this.stopped) return;
    const t = this.now();
    if (e.stage !== this.stage) {
      this.finishLine();
      this.stage = e.stage;
      this.start = t;
      this.lastDraw = 0;
    }
    // a download of unknown size (total 0) ends with an event whose total is the size received
    const finished = e.done >= e.total && !(e.unit === 'bytes' && e.total === 0);
    if (this.out.isTTY) {
      if (finished || t - this.lastDraw >= 100) {
        // one column short of the width: a line that fills it wraps on some terminals
        const width = this.out.columns ? this.out.columns - 1 : undefined;
        this.out.write(`\r\x1b[K${fit(this.line(e, t), printable(e.stage).length, width)}`);
        this.drawn = true;
        this.lastDraw = t;
      }
      if (finished) {
        this.out.write('\n');
        this.drawn = false;
        this.stage = '';
      }
    } else if (finished) {
      this.out.write(`${this.line(e, t)}\n`);
      this.stage = '';
    }
  };

  private line(e: ProgressEvent, t: number): string {
    const secs = (t - this.start) / 1000;
    const rate = secs > 0 ? e.done / secs : 0;
    const unit = e.unit ?? 'steps';
    const pct = e.total > 0 ? Math.floor((100 * e.done) / e.total) : 100;
    const stage = printable(e.stage);
    const eta = `ETA ${fmtTime(rate > 0 ? (e.total - e.done) / rate : Number.NaN)}`;
    if (unit === 'bytes') {
      if (e.total === 0) return `${stage}: ${formatBytes(e.done)}, ${formatBytes(rate)}/s`;
      if (e.done >= e.total) return `${stage}: ${formatBytes(e.total)} in ${fmtTime(secs)}`;
      return `${stage}: ${String(pct).padStart(3)}% ${formatBytes(e.done)} of ${formatBytes(e.total)}, ${formatBytes(rate)}/s, ${eta}`;
    }
    if (e.done >= e.total) return `${stage}: ${e.done}/${e.total} ${unit} done in ${fmtTime(secs)}`;
    return `${stage}: ${String(pct).padStart(3)}% ${e.done}/${e.total} ${unit}, ${rate >= 10 ? rate.toFixed(0) : rate.toFixed(2)} ${unit}/s, ${eta}`;
  }

  /** Prints a warning on its own line (usable as an `onWarning` callback). */
  readonly warning = (message: string): void => {
    this.finishLine();
    this.out.write(`warning: ${printable(message)}\n`);
  };

  /** Erases a half-drawn line and draws no more progress (Ctrl-C: the run is stopping). Warnings still print. */
  stop(): void {
    if (this.drawn) {
      this.out.write('\r\x1b[K');
      this.drawn = false;
    }
    this.stopped = true;
  }

  /** Ends a half-drawn line (call before printing anything else on stderr). */
  finishLine(): void {
    if (this.drawn) {
      this.out.write('\n');
      this.drawn = false;
    }
  }
}
