import { configDefaults, defineConfig } from 'vitest/config';

// The AWS SDK warns once per process that its 2027 releases will need Node 22; the lock file pins a release
// that supports Node 20, and the warning would repeat in every child process the tests start.
process.env.AWS_SDK_JS_NODE_VERSION_SUPPORT_WARNING_DISABLED = 'true';

export default defineConfig({
  test: {
    include: ['test/**/*.test.ts'],
    // The soak kills workers and closes connections: it runs on its own afterwards (vitest.soak.config.ts).
    exclude: [...configDefaults.exclude, 'test/soak/**'],
    globalSetup: ['test/support/global-setup.ts'],
    testTimeout: 60_000,
    hookTimeout: 120_000,
    pool: 'forks',
  },
});
