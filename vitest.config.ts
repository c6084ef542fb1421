import { defineConfig } from 'vitest/config';

export default defineConfig({
  test: {
    include: ['test/**/*.test.ts'],
    testTimeout: 60_000,
    hookTimeout: 120_000,
    // Backends with external services start them once for the whole run.
    globalSetup: ['test/support/global-setup.ts'],
  },
});
