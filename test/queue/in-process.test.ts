import { describe, expect, it } from 'vitest';
import { InProcessDispatcher } from '../../src/queue/in-process.js';
import { describeDispatcherContract } from './dispatcher-contract.js';

describeDispatcherContract('in-process', () => ({
  make: async ({ concurrency }) => new InProcessDispatcher({ concurrency }),
  cleanup: async () => undefined,
}));

describe('InProcessDispatcher', () => {
  it('refuses a nonsense concurrency', () => {
    expect(() => new InProcessDispatcher({ concurrency: 0 })).toThrow('concurrency must be an integer >= 1');
  });
});
