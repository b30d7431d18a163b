import { defineConfig } from 'vitest/config';

process.env.AWS_SDK_JS_NODE_VERSION_SUPPORT_WARNING_DISABLED = 'true';

/**
 * The soak run (test/soak): real worker processes killed and restarted, broker connections closed in its own
 * vhost. It must not run alongside the rest of the suite: `vitest run -c vitest.soak.config.ts`.
 */
export default defineConfig({
  test: {
    include: ['test/soak/**/*.test.ts'],
    fileParallelism: false,
    testTimeout: 300_000,
    hookTimeout: 120_000,
    pool: 'forks',
  },
});
