/**
 * Property-based fuzzing of every API body and route over real HTTP: whatever a client sends, the
 * answer comes back, is never a 5xx, never drops the connection, and every error has the one shape.
 * Runs are bounded so the suite stays fast; `npm run bench -- fuzz` runs the long version.
 */
import fc from 'fast-check';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { anyRequest, comfyRequest, jobApiRequest, parkedDispatcher, problemsOf, send, type FuzzRequest } from '../../src/bench/fuzz-cases.js';
import { createGuard } from '../../src/jobs/guard.js';
import type { Guard } from '../../src/jobs/guard-api.js';
import { listen, type TestServer } from './helpers.js';

let guard: Guard;
let srv: TestServer;

beforeAll(async () => {
  guard = await createGuard({
    servers: [{ url: 'http://127.0.0.1:9', name: 'nowhere' }],
    store: 'memory:',
    dispatcher: parkedDispatcher(),
    cleanupIntervalMs: 0,
    healthTtlMs: 60_000,
  });
  srv = await listen({ guard, dashboard: false, maxWorkflowNodes: 200 });
});

afterAll(async () => {
  await srv?.close();
  await guard?.close();
});

/** The property: no 5xx, no hang, no dropped connection, the one error shape. */
async function answersSafely(r: FuzzRequest): Promise<void> {
  const problems = problemsOf(await send(srv.url, r, 20_000));
  expect(problems, `${r.method} ${r.path} ${r.body?.slice(0, 300) ?? ''}`).toEqual([]);
}

describe('fuzzing the HTTP API', () => {
  it('answers any job API request without a 5xx and with the one error shape', async () => {
    await fc.assert(fc.asyncProperty(jobApiRequest, answersSafely), { numRuns: 150 });
  });

  it('answers any ComfyUI-compatible request without a 5xx', async () => {
    await fc.assert(fc.asyncProperty(comfyRequest, answersSafely), { numRuns: 100 });
  });

  it('still answers health after a mixed burst of hostile requests', async () => {
    await fc.assert(fc.asyncProperty(fc.array(anyRequest, { minLength: 5, maxLength: 10 }), async (rs) => {
      await Promise.all(rs.map(answersSafely));
    }), { numRuns: 10 });
    const health = await fetch(`${srv.url}/api/health`);
    expect(health.status).toBe(200);
  });
});
