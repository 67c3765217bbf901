/**
 * A second comfyguard process for the stalled-job test: takes one job from the shared queue,
 * prints `took <id>`, and hangs until it is SIGKILLed.
 */
import { BullMqDispatcher } from '../../src/queue/bullmq.js';

const [url, queueName, prefix, lockMs, stalledMs] = process.argv.slice(2);
if (!url || !queueName || !prefix) throw new Error('usage: bullmq-child <redis-url> <queue> <prefix> <lockMs> <stalledMs>');
const d = new BullMqDispatcher({
  connection: url,
  queueName,
  prefix,
  concurrency: 1,
  lockDurationMs: Number(lockMs),
  stalledIntervalMs: Number(stalledMs),
});
await d.start(async (id) => {
  process.stdout.write(`took ${id}\n`);
  await new Promise(() => undefined);
});
process.stdout.write('ready\n');
