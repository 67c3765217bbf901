/**
 * Redis for the BullMQ tests: the CI instance on 127.0.0.1:6379 (`scripts/services.sh` starts it),
 * a unique queue name per test, and cleanup of every key the test created.
 */
import { randomUUID } from 'node:crypto';
import { Redis } from 'ioredis';

export const REDIS_URL = process.env['TEST_REDIS_URL'] ?? 'redis://127.0.0.1:6379';
export const TEST_PREFIX = 'cgtest';

/** Throws a clear message when Redis is down, instead of letting every test hang. */
export async function requireRedis(): Promise<void> {
  const client = new Redis(REDIS_URL, { lazyConnect: true, maxRetriesPerRequest: 0, retryStrategy: () => null, connectTimeout: 3_000 });
  client.on('error', () => undefined);
  try {
    await client.connect();
    await client.ping();
  } catch (err) {
    throw new Error(`Redis is not reachable at ${REDIS_URL} (${err instanceof Error ? err.message : String(err)}). Start it with: bash scripts/services.sh`);
  } finally {
    client.disconnect();
  }
}

/** A queue name nobody else uses. */
export function uniqueQueueName(): string {
  return `q-${randomUUID()}`;
}

/** Deletes every key of `queueName` under the test prefix. */
export async function deleteQueueKeys(queueName: string): Promise<void> {
  const client = new Redis(REDIS_URL, { maxRetriesPerRequest: 1 });
  try {
    let cursor = '0';
    do {
      const [next, keys] = await client.scan(cursor, 'MATCH', `${TEST_PREFIX}:${queueName}:*`, 'COUNT', 500);
      cursor = next;
      if (keys.length > 0) await client.del(...keys);
    } while (cursor !== '0');
  } finally {
    client.disconnect();
  }
}
