/**
 * Renders ProgressEvents on stderr: on a terminal, one line per stage redrawn in place with count, rate
 * and ETA; otherwise one line when a stage starts and one when it ends (logs stay readable).
 */
import type { ProgressEvent } from '../progress.js';

export interface ProgressSink {
  write(s: string): void;
  isTTY?: boolean;
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

  constructor(
    private readonly out: ProgressSink,
    private readonly now: () => number = () => performance.now(),
  ) {}

  readonly onProgress = (e: ProgressEvent): void => {
    const t = this.now();
    if (e.stage !== this.stage) {
      this.finishLine();
      this.stage = e.stage;
      this.start = t;
      this.lastDraw = 0;
    }
    const finished = e.done >= e.total;
    if (this.out.isTTY) {
      if (finished || t - this.lastDraw >= 100) {
        this.out.write(`\r\x1b[K${this.line(e, t)}`);
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
    if (e.done >= e.total) return `${e.stage}: ${e.done}/${e.total} ${unit} done in ${fmtTime(secs)}`;
    const eta = `ETA ${fmtTime(rate > 0 ? (e.total - e.done) / rate : Number.NaN)}`;
    return `${e.stage}: ${String(pct).padStart(3)}% ${e.done}/${e.total} ${unit}, ${rate >= 10 ? rate.toFixed(0) : rate.toFixed(2)} ${unit}/s, ${eta}`;
  }

  /** Prints a warning on its own line (usable as an `onWarning` callback). */
  readonly warning = (message: string): void => {
    this.finishLine();
    this.out.write(`warning: ${message}\n`);
  };

  /** Ends a half-drawn line (call before printing anything else on stderr). */
  finishLine(): void {
    if (this.drawn) {
      this.out.write('\n');
      this.drawn = false;
    }
  }
}
