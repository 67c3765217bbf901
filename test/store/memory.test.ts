import { MemoryStore } from '../../src/store/memory.js';
import { describeStoreContract } from './contract.js';
import { makeJob } from './fixtures.js';

describeStoreContract('memory', async ({ clock }) => {
  const rows = new Map<string, string>();
  const store = new MemoryStore({ clock, rows });
  return {
    store,
    reopen: async () => new MemoryStore({ clock, rows }),
    writeCorruptRow: async (id, kind, createdAt) => {
      const whole = JSON.stringify(makeJob({ id, status: 'running', createdAt }));
      rows.set(id, kind === 'truncated' ? whole.slice(0, 120) : JSON.stringify({ id, status: 'running', createdAt }));
    },
    cleanup: async () => {
      await store.close();
    },
  };
});
