import { spawn } from 'node:child_process';
import { afterEach, describe, expect, it, vi } from 'vitest';
import { sleep, systemClock } from './clock.js';

describe('sleep', () => {
  afterEach(() => vi.useRealTimers());

  it('resolves after the given time on a fake clock', async () => {
    vi.useFakeTimers();
    let done = false;
    const p = sleep(systemClock, 5_000).then(() => (done = true));
    await vi.advanceTimersByTimeAsync(4_999);
    expect(done).toBe(false);
    await vi.advanceTimersByTimeAsync(1);
    await p;
    expect(done).toBe(true);
  });

  it('rejects with the abort reason when the signal fires', async () => {
    vi.useFakeTimers();
    const ac = new AbortController();
    const p = sleep(systemClock, 60_000, ac.signal);
    ac.abort(new Error('stop'));
    await expect(p).rejects.toThrow('stop');
  });
});

describe('what keeps a real process alive', () => {
  const clockModule = new URL('./clock.ts', import.meta.url).pathname;
  const run = (body: string) =>
    new Promise<{ code: number | null; stdout: string }>((resolve, reject) => {
      const script = `import { sleep, systemClock } from ${JSON.stringify(clockModule)};\n${body}`;
      const child = spawn(process.execPath, ['--import', 'tsx', '--input-type=module', '-e', script], { stdio: ['ignore', 'pipe', 'inherit'] });
      let stdout = '';
      child.stdout.on('data', (c: Buffer) => (stdout += c.toString()));
      child.on('error', reject);
      child.on('close', (code) => resolve({ code, stdout }));
    });

  it('a process whose only work is awaiting a sleep (a retry backoff, a downtime) waits for it instead of exiting 13', async () => {
    const r = await run(`await sleep(systemClock, 50); console.log('woke');`);
    expect(r).toEqual({ code: 0, stdout: 'woke\n' });
  });

  it('a background timer alone does not keep the process alive; clearing a waited-for timer lets it exit', async () => {
    const r = await run(`systemClock.setTimeout(() => console.log('background ran'), 60_000, { background: true });
const t = systemClock.setTimeout(() => console.log('waited ran'), 60_000);
systemClock.clearTimeout(t);
console.log('main done');`);
    expect(r).toEqual({ code: 0, stdout: 'main done\n' });
  });
}, 60_000);
