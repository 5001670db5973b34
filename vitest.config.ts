import { defineConfig } from 'vitest/config';

/**
 * Two projects: `unit` is hermetic (no servers, no root); `integration` talks to the
 * real servers that `scripts/services up` starts on loopback.
 */
export default defineConfig({
  test: {
    projects: [
      {
        test: {
          name: 'unit',
          include: ['test/unit/**/*.test.ts'],
          testTimeout: 20_000,
        },
      },
      {
        test: {
          name: 'integration',
          include: ['test/integration/**/*.test.ts', 'test/conformance/**/*.test.ts'],
          testTimeout: 120_000,
          hookTimeout: 180_000,
          // Real servers are shared; files run one at a time so tests do not fight over them.
          fileParallelism: false,
        },
      },
    ],
  },
});
