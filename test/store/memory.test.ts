import { MemoryStore } from '../../src/store/memory.js';
import { describeStoreContract } from './contract.js';
import { makeJob } from './fixtures.js';

describeStoreContract('memory', async ({ clock }) => {
  const shared = { rows: new Map<string, string>(), meta: new Map<string, string>(), blocks: new Map() };
  const { rows } = shared;
  const store = new MemoryStore({ clock, ...shared });
  return {
    store,
    reopen: async () => new MemoryStore({ clock, ...shared }),
    writeCorruptRow: async (id, kind, createdAt) => {
      const whole = JSON.stringify(makeJob({ id, status: 'running', createdAt }));
      rows.set(id, kind === 'truncated' ? whole.slice(0, 120) : JSON.stringify({ id, status: 'running', createdAt }));
    },
    cleanup: async () => {
      await store.close();
    },
  };
});
