import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { createGuard } from '../../src/jobs/guard.js';
import type { Guard } from '../../src/jobs/guard-api.js';
import { startSimulator, type Simulator } from '../../src/sim/index.js';
import { sd15Txt2img } from '../fixtures/workflows/index.js';

const opened: Array<{ close(): Promise<void> }> = [];
const dirs: string[] = [];
afterEach(async () => {
  for (const o of opened.splice(0).reverse()) await o.close();
  for (const d of dirs.splice(0)) rmSync(d, { recursive: true, force: true });
});

async function clientIdOf(sim: Simulator, promptId: string): Promise<unknown> {
  const h = (await (await fetch(`${sim.url}/history/${promptId}`)).json()) as Record<string, { prompt: [number, string, unknown, { client_id?: string }] }>;
  return h[promptId]?.prompt[3]?.client_id;
}

describe('instance identity', () => {
  it('keeps one ComfyUI clientId per instance across restarts, and a different one per instance', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'cg-id-'));
    dirs.push(dir);
    const sim = await startSimulator({ stepMs: 1 });
    opened.push(sim);
    const store = `sqlite:${join(dir, 'cg.db')}`;
    const run = async (instanceId: string): Promise<unknown> => {
      const g: Guard = await createGuard({ servers: [sim.url], store, instanceId, cleanupIntervalMs: 0 });
      try {
        const job = await g.wait((await g.submit(sd15Txt2img())).id);
        expect(job.status).toBe('completed');
        return await clientIdOf(sim, job.promptId!);
      } finally {
        await g.close();
      }
    };
    const first = await run('box:8080');
    const again = await run('box:8080');
    const other = await run('box:8081');
    expect(typeof first).toBe('string');
    expect(again).toBe(first);
    expect(other).not.toBe(first);
  });
});
