/**
 * What `comfyguard run` and the demo print: a live progress bar on a terminal (plain lines
 * otherwise) with the node, percentage, elapsed time and ETA, and the recovery story of a job, one
 * line per step with its outcome explained. Rendering is separate from I/O so it can be tested on
 * plain strings. Attempts are counted one way everywhere: attempt N is the N-th submission
 * (`job.attempts[N - 1]`).
 */
import type { ApiWorkflow } from '../../comfy/types.js';
import type { JobEvent } from '../../jobs/guard-api.js';
import type { AttemptRecord, InputChange, JobRecord, RecoveryStep } from '../../jobs/types.js';

/** Writes progress to a stream: a redrawn bar when `tty`, else one line per change worth telling. */
export class ProgressView {
  readonly #write: (s: string) => void;
  readonly #tty: boolean;
  readonly #now: () => number;
  readonly #workflow: ApiWorkflow | null;
  #barShown = false;
  #lastPlain = -1;
  /** When the current attempt started showing progress (for elapsed and ETA). */
  #attemptStart: number | null = null;
  #server: string | null = null;
  /** The sampler's step of the current attempt, from ComfyUI's own progress messages. */
  #steps: { value: number; max: number } | null = null;

  constructor(write: (s: string) => void, tty: boolean, opts: { now?: () => number; workflow?: ApiWorkflow } = {}) {
    this.#write = write;
    this.#tty = tty;
    this.#now = opts.now ?? Date.now;
    this.#workflow = opts.workflow ?? null;
  }

  /** Shows one job event. */
  event(e: JobEvent): void {
    if (e.type === 'comfy') {
      // ComfyUI's own step counter of the running sampler ("step 12/20"), shown with the next update.
      if (e.message.type === 'progress') this.#steps = { value: e.message.data.value, max: e.message.data.max };
      return;
    }
    if (e.type === 'progress') {
      const pct = Math.max(0, Math.min(100, Math.round(e.progress)));
      this.#attemptStart ??= this.#now();
      const node = this.#nodeLabel(e.node);
      const timing = this.#timing(pct);
      const steps = this.#steps && pct < 100 ? `step ${this.#steps.value}/${this.#steps.max}` : '';
      if (this.#tty) {
        const width = 30;
        const filled = Math.round((pct / 100) * width);
        const where = this.#server ? `  on ${this.#server}` : '';
        this.#write(`\r[${'#'.repeat(filled)}${'.'.repeat(width - filled)}] ${String(pct).padStart(3)}%  ${timing}  attempt ${e.attempt}${where}${node ? `  ${node}` : ''}${steps ? `  ${steps}` : ''}\x1b[K`);
        this.#barShown = true;
      } else if (pct !== this.#lastPlain && (this.#lastPlain < 0 || pct === 100 || pct >= this.#lastPlain + 10)) {
        this.#lastPlain = pct;
        const detail = [`attempt ${e.attempt}`, node, steps].filter((x) => x !== '').join(', ');
        this.#line(`progress ${pct}% ${timing} (${detail})`);
      }
      return;
    }
    if (e.type === 'recovery') {
      this.#lastPlain = -1;
      this.#steps = null;
      this.#line(`recovering: ${e.step.code} -> ${e.step.strategy}${describeChanges(e.step.changes)}`);
      return;
    }
    if (e.type === 'state' && e.from === null) this.#line(`job ${e.jobId} ${e.to}`);
  }

  /** Tells that attempt `n` runs on `server` (the caller looks the server up when a new attempt shows progress). */
  attempt(n: number, server: string | null): void {
    this.#lastPlain = -1;
    this.#server = server;
    this.#steps = null;
    this.#attemptStart = this.#now();
    this.#line(`attempt ${n} running${server ? ` on ${server}` : ''}`);
  }

  /** Ends the bar line so later output starts on a fresh line. */
  done(): void {
    if (this.#barShown) this.#write('\n');
    this.#barShown = false;
  }

  /** A line that interrupts the bar (a note while waiting, for instance). */
  note(s: string): void {
    this.#line(s);
  }

  /** "12.3 s, ETA 4 s" (the ETA once there is progress to extrapolate from). */
  #timing(pct: number): string {
    const elapsed = this.#attemptStart === null ? 0 : Math.max(0, this.#now() - this.#attemptStart);
    const head = `${formatSeconds(elapsed)} elapsed`;
    if (pct <= 0 || pct >= 100) return head;
    return `${head}, ETA ${formatSeconds((elapsed * (100 - pct)) / pct)}`;
  }

  /** "node 3 KSampler" when the workflow is known, else "node 3". */
  #nodeLabel(node: string | null): string {
    if (!node) return '';
    const type = this.#workflow?.[node]?.class_type;
    return `node ${node}${type ? ` ${type}` : ''}`;
  }

  #line(s: string): void {
    if (this.#barShown) this.#write('\n');
    this.#barShown = false;
    this.#write(`${s}\n`);
  }
}

/** "0.4 s", "12 s", "3 min 5 s". */
export function formatSeconds(ms: number): string {
  const s = ms / 1000;
  if (s < 10) return `${s.toFixed(1)} s`;
  if (s < 60) return `${Math.round(s)} s`;
  const m = Math.floor(s / 60);
  return `${m} min ${Math.round(s - m * 60)} s`;
}

/** The 1-based submission number of attempt record `number` (null when it was never submitted). */
export function attemptOrdinal(job: JobRecord, number: number): number | null {
  const i = job.attempts.findIndex((a) => a.number === number);
  return i < 0 ? null : i + 1;
}

/**
 * One line per recovery step: which attempt failed with what, what the step changed, and what
 * the next attempt then did (completed, failed the same way, or got past it and failed otherwise).
 * Empty when there was none.
 */
export function recoveryStory(job: JobRecord): string[] {
  return job.recoveryHistory.map((s, i) => `  ${i + 1}. ${failureOf(job, s)}; ${s.strategy}${describeChanges(s.changes)} -> ${outcome(job, s)}`);
}

function failureOf(job: JobRecord, s: RecoveryStep): string {
  const n = attemptOrdinal(job, s.attempt);
  const failed = n === null ? undefined : job.attempts[n - 1];
  // The attempt's own message, only when it is the failure this step answers.
  const msg = failed && failed.code === s.code && failed.message ? ` (${oneLine(failed.message)})` : '';
  const where = failed?.server ? ` on ${failed.server}` : '';
  return n === null ? `no server could run it (${s.code})` : `attempt ${n}${where} failed with ${s.code}${msg}`;
}

/** What happened after the step, told from the attempt it produced. */
function outcome(job: JobRecord, s: RecoveryStep): string {
  const n = attemptOrdinal(job, s.attempt);
  const next: AttemptRecord | undefined = n === null ? job.attempts.find((a) => a.startedAt >= s.startedAt) : job.attempts[n];
  const nextNo = next ? job.attempts.indexOf(next) + 1 : null;
  if (!next || nextNo === null) {
    if (s.success === null) return 'waiting to run';
    return job.status === 'completed' ? 'done' : `no further attempt (job ${job.status.replace('_', ' ')})`;
  }
  switch (next.status) {
    case 'completed':
      return `attempt ${nextNo} completed`;
    case 'failed':
    case 'lost':
    case 'interrupted':
      if (!next.code) return `attempt ${nextNo} ${next.status}`;
      return next.code === s.code ? `attempt ${nextNo} failed again with ${next.code}` : `attempt ${nextNo} got past ${s.code} but failed with ${next.code}`;
    case 'cancelled':
      return `attempt ${nextNo} was cancelled`;
    default:
      return `attempt ${nextNo} running`;
  }
}

/** ": node 5 EmptyLatentImage.batch_size 4 -> 2, …" or "" without changes. */
/** The warning line of a result that differs from the request, or null when it does not. */
export function degradedWarning(job: Pick<JobRecord, 'degraded'>, opts: { reason?: boolean } = {}): string | null {
  const d = job.degraded;
  if (!d) return null;
  const changes = 'changes' in d && d.changes ? d.changes.map((c) => `node ${c.node} ${c.input} ${JSON.stringify(c.from)} -> ${JSON.stringify(c.to)}`).join(', ') : '';
  const level = d.level !== undefined ? `degradation level ${d.level}, factor ${d.factor}` : '';
  return `warning: the result differs from the request: ${[changes, level, opts.reason !== false && 'reason' in d ? d.reason : ''].filter(Boolean).join('; ')}`;
}

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
