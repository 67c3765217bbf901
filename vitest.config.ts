import { defineConfig } from 'vitest/config';

export default defineConfig({
  test: {
    include: ['src/**/*.test.ts', 'test/**/*.test.ts'],
    // Tests talk to real sockets, databases and child processes; a busy 2-core CI box needs slack.
    testTimeout: 60_000,
    hookTimeout: 60_000,
    // expect.poll waits 1 s by default: on a busy box a live update can take longer. A poll that
    // passes returns as soon as it does, so only a slow machine uses the slack.
    expect: { poll: { timeout: 30_000 } },
    pool: 'forks',
    reporters: ['default'],
  },
});
