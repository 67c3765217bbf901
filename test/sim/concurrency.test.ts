/**
 * Execution counts stay exact when many clients submit at once: every prompt runs exactly once,
 * duplicate graphs are counted per graph, and nothing is lost.
 */
import { randomUUID } from 'node:crypto';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startSimulator, type Simulator } from '../../src/sim/index.js';
import { getJson, postJson, simpleWorkflow } from './helpers.js';

describe('/_sim/stats under concurrent submissions', () => {
  let sim: Simulator;
  beforeAll(async () => {
    sim = await startSimulator({ stepMs: 1 });
  });
  afterAll(async () => {
    await sim.close();
  });

  it('counts each of 120 parallel prompts exactly once and each of 10 graphs 12 times', async () => {
    const jobs = Array.from({ length: 120 }, (_, i) => ({ id: randomUUID(), graph: simpleWorkflow(i % 10, `par${i % 10}`) }));
    const responses = await Promise.all(jobs.map((j) => postJson(sim.url, '/prompt', { prompt: j.graph, prompt_id: j.id, client_id: 'c' })));
    expect(responses.map((r) => r.status)).toEqual(jobs.map(() => 200));
    const numbers = responses.map((r) => (r.json as { number: number }).number).sort((a, b) => a - b);
    expect(numbers).toEqual(jobs.map((_, i) => i));
    await sim.whenIdle();

    const stats = sim.stats();
    expect(stats.queue).toBe(0);
    expect(Object.keys(stats.executions).sort()).toEqual(jobs.map((j) => j.id).sort());
    expect(Object.values(stats.executions).every((n) => n === 1)).toBe(true);
    const expectedWorkflows = Object.fromEntries(Array.from({ length: 10 }, (_, i) => [sim.workflowHash(simpleWorkflow(i, `par${i}`)), 12]));
    expect(stats.workflows).toEqual(expectedWorkflows);
    const history = await getJson<Record<string, unknown>>(sim.url, '/history');
    expect(Object.keys(history).sort()).toEqual(jobs.map((j) => j.id).sort());
  });
});
