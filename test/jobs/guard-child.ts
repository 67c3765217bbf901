/**
 * A real comfyguard process for crash tests: a guard over the given servers and store, driven by
 * JSON lines on stdin (`{"op":"submit","workflow":…,"options":…}`, `{"op":"cancel","id":…}`) and
 * answering JSON lines on stdout. Killed with SIGKILL by the test, then started again.
 *
 * Usage: node --import tsx test/jobs/guard-child.ts STORE_URL SERVER_URL[,SERVER_URL…] [CONCURRENCY] [MAX_RECOVERY_AGE_MS]
 */
import { createInterface } from 'node:readline';
import { createGuard } from '../../src/jobs/guard.js';

const [storeUrl, servers, concurrency, maxRecoveryAge] = process.argv.slice(2);
if (!storeUrl || !servers) {
  process.stderr.write('usage: guard-child STORE_URL SERVER_URL[,SERVER_URL...] [CONCURRENCY]\n');
  process.exit(2);
}

const guard = await createGuard({
  servers: servers.split(',').map((url, i) => ({ url, name: `sim-${i}` })),
  store: storeUrl,
  concurrency: Number(concurrency ?? 4),
  maxRetries: 8,
  // Long enough that jobs are seen in `recovering` when the test kills the process.
  retry: { baseMs: 1_500, capMs: 3_000 },
  stallTimeoutMs: 3_000,
  pollIntervalMs: 200,
  unreachableGraceMs: 1_500,
  healthTtlMs: 300,
  cleanupIntervalMs: 0,
  maxRecoveryAgeMs: Number(maxRecoveryAge ?? 600_000),
});
process.stdout.write(JSON.stringify({ ready: true }) + '\n');

const rl = createInterface({ input: process.stdin });
rl.on('line', (line) => {
  void (async () => {
    const msg = JSON.parse(line) as { op: string; ref?: string; id?: string; workflow?: never; options?: never };
    try {
      if (msg.op === 'submit') {
        const r = await guard.submit(msg.workflow!, msg.options ?? {});
        process.stdout.write(JSON.stringify({ ref: msg.ref, id: r.id }) + '\n');
      } else if (msg.op === 'cancel') {
        const j = await guard.cancel(msg.id!);
        process.stdout.write(JSON.stringify({ ref: msg.ref, id: j.id, status: j.status }) + '\n');
      }
    } catch (err) {
      process.stdout.write(JSON.stringify({ ref: msg.ref, error: String(err) }) + '\n');
    }
  })();
});
rl.on('close', () => void guard.close().then(() => process.exit(0)));
