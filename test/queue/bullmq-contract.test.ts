import { beforeAll } from 'vitest';
import { BullMqDispatcher } from '../../src/queue/bullmq.js';
import { describeDispatcherContract } from './dispatcher-contract.js';
import { deleteQueueKeys, REDIS_URL, requireRedis, TEST_PREFIX, uniqueQueueName } from './redis.js';

beforeAll(requireRedis);

describeDispatcherContract('bullmq', () => {
  const queues: string[] = [];
  return {
    make: async ({ concurrency }) => {
      const queueName = uniqueQueueName();
      queues.push(queueName);
      return new BullMqDispatcher({ connection: REDIS_URL, prefix: TEST_PREFIX, queueName, concurrency });
    },
    cleanup: async () => {
      await Promise.all(queues.splice(0).map(deleteQueueKeys));
    },
  };
});
