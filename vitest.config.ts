import { configDefaults, defineConfig } from 'vitest/config';

// The AWS SDK warns once per process that its 2027 releases will need Node 22; the lock file pins a release
// that supports Node 20, and the warning would repeat in every child process the tests start.
process.env.AWS_SDK_JS_NODE_VERSION_SUPPORT_WARNING_DISABLED = 'true';

/**
 * Test tiers, each a vitest project (`vitest run --project unit`; `npm run test:unit` is the fast loop):
 * - unit: one process, no broker, no DynamoDB Local (Java), no PostgreSQL, no child process beyond a plain `node`;
 *   SQLite in memory or in temp files. The global setup that checks RabbitMQ and starts DynamoDB Local does not run.
 * - e2e: several processes, crashes, the gateway as it is deployed, the demo and the docs' examples.
 * - integration: everything else, against the real broker, DynamoDB Local, PostgreSQL and outside tools. A new
 *   test file lands here unless it is listed as unit or e2e: the tier with every service is the safe default.
 * The soak (test/soak) runs on its own afterwards: vitest.soak.config.ts.
 */
const UNIT = [
  'test/amqp/confirmed-channel.test.ts',
  'test/amqp/units.test.ts',
  'test/console/api-types.test.ts',
  'test/console/api.test.ts',
  'test/console/format.test.ts',
  'test/console/graph-model.test.ts',
  'test/console/ids.test.ts',
  'test/console/poll.test.ts',
  'test/console/routes.test.ts',
  'test/console/statuses.test.ts',
  'test/core/**/*.test.ts',
  'test/docs/error-codes.test.ts',
  'test/docs/gateway-settings.test.ts',
  'test/docs/metrics.test.ts',
  'test/gateway/api.property.test.ts',
  'test/gateway/api.test.ts',
  'test/gateway/config.test.ts',
  'test/gateway/console.test.ts',
  'test/gateway/ingress.test.ts',
  'test/gateway/close.test.ts',
  'test/gateway/operations.test.ts',
  'test/gateway/overview.test.ts',
  'test/gateway/request-loggers.test.ts',
  'test/http/cross-system.test.ts',
  'test/http/delivery.test.ts',
  'test/http/exchange.test.ts',
  'test/http/problems.test.ts',
  'test/package/**/*.test.ts',
  'test/process/convergence.test.ts',
  'test/process/orders.test.ts',
  'test/process/transports.test.ts',
  'test/stores/dynamodb/commit-groups.test.ts',
  'test/stores/per-turn.test.ts',
  'test/stores/sqlite/**/*.test.ts',
  'test/stores/token-mapping.test.ts',
];

const E2E = [
  'test/amqp/crash.test.ts',
  'test/console/console.test.ts',
  'test/docs/examples.test.ts',
  'test/gateway/demo.test.ts',
  'test/gateway/lifecycle.test.ts',
  'test/gateway/packaging.test.ts',
  'test/gateway/postgres.test.ts',
  'test/http/crash.test.ts',
  'test/scheduling/crash.test.ts',
  'test/stores/multiprocess.test.ts',
  'test/systems/two-systems.test.ts',
];

const SOAK = ['test/soak/**'];
const SERVICES = ['test/support/global-setup.ts'];

export default defineConfig({
  test: {
    testTimeout: 60_000,
    hookTimeout: 120_000,
    pool: 'forks',
    projects: [
      { extends: true, test: { name: 'unit', include: UNIT } },
      {
        extends: true,
        test: {
          name: 'integration',
          include: ['test/**/*.test.ts'],
          exclude: [...configDefaults.exclude, ...UNIT, ...E2E, ...SOAK],
          globalSetup: SERVICES,
        },
      },
      { extends: true, test: { name: 'e2e', include: E2E, globalSetup: SERVICES } },
    ],
  },
});
