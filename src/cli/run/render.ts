/**
 * What `comfyguard run` prints: a live progress bar on a terminal (plain lines otherwise), the
 * recovery story of a job, and where its outputs are. Rendering is separate from I/O so it can be
 * tested on plain strings.
 */
import type { JobEvent } from '../../jobs/guard-api.js';
import type { InputChange, JobRecord, RecoveryStep } from '../../jobs/types.js';

/** Writes progress to a stream: a redrawn bar when `tty`, else one line per change worth telling. */
export class ProgressView {
  readonly #write: (s: string) => void;
  readonly #tty: boolean;
  #barShown = false;
  #lastPlain = -1;

  constructor(write: (s: string) => void, tty: boolean) {
    this.#write = write;
    this.#tty = tty;
  }

  /** Shows one job event. */
  event(e: JobEvent): void {
    if (e.type === 'progress') {
      const pct = Math.max(0, Math.min(100, Math.round(e.progress)));
      if (this.#tty) {
        const width = 30;
        const filled = Math.round((pct / 100) * width);
        this.#write(`\r[${'#'.repeat(filled)}${'.'.repeat(width - filled)}] ${String(pct).padStart(3)}%  attempt ${e.attempt}${e.node ? `  node ${e.node}` : ''}\x1b[K`);
        this.#barShown = true;
      } else if (pct !== this.#lastPlain && (this.#lastPlain < 0 || pct === 100 || pct >= this.#lastPlain + 10)) {
        this.#lastPlain = pct;
        this.#line(`progress ${pct}% (attempt ${e.attempt}${e.node ? `, node ${e.node}` : ''})`);
      }
      return;
    }
    if (e.type === 'recovery') {
      this.#lastPlain = -1;
      this.#line(`recovering: ${e.step.code} on attempt ${e.step.attempt} -> ${e.step.strategy}${describeChanges(e.step.changes)}`);
      return;
    }
    if (e.type === 'state' && e.from === null) this.#line(`job ${e.jobId} ${e.to}`);
  }

  /** Tells that attempt `n` runs on `server` (the caller looks the server up when a new attempt shows progress). */
  attempt(n: number, server: string | null): void {
    this.#lastPlain = -1;
    this.#line(`attempt ${n} running${server ? ` on ${server}` : ''}`);
  }

  /** Ends the bar line so later output starts on a fresh line. */
  done(): void {
    if (this.#barShown) this.#write('\n');
    this.#barShown = false;
  }

  #line(s: string): void {
    if (this.#barShown) this.#write('\n');
    this.#barShown = false;
    this.#write(`${s}\n`);
  }
}

/** One line per recovery step: what failed, what was changed, how it went. Empty when there was none. */
export function recoveryStory(job: JobRecord): string[] {
  return job.recoveryHistory.map((s, i) => `  ${i + 1}. attempt ${s.attempt} failed with ${s.code}${messageOf(job, s)}; ${s.strategy}${describeChanges(s.changes)} -> ${outcome(s)}`);
}

function messageOf(job: JobRecord, s: RecoveryStep): string {
  const failed = job.attempts.find((a) => a.number === s.attempt);
  const msg = failed?.message ?? s.message;
  return msg ? ` (${oneLine(msg)})` : '';
}

function outcome(s: RecoveryStep): string {
  return s.success === true ? 'succeeded' : s.success === false ? 'did not help' : 'in progress';
}

/** ": node 5 EmptyLatentImage.batch_size 4 -> 2, …" or "" without changes. */
export function describeChanges(changes: readonly InputChange[]): string {
  if (changes.length === 0) return '';
  return `: ${changes.map((c) => `node ${c.nodeId} ${c.classType}.${c.input} ${short(c.from)} -> ${short(c.to)}`).join(', ')}`;
}

function short(v: unknown): string {
  const s = typeof v === 'string' ? v : JSON.stringify(v);
  return s === undefined ? String(v) : s.length > 60 ? `${s.slice(0, 57)}...` : s;
}

function oneLine(s: string): string {
  const line = s.split('\n')[0] ?? '';
  return line.length > 160 ? `${line.slice(0, 157)}...` : line;
}
