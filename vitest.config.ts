import { defineConfig } from 'vitest/config';

/**
 * Four projects:
 * - unit: no network at all (aws-sdk-client-mock, fakes); no services are started for it.
 * - integration: the real local services (DynamoDB Local, redis-server, the KMS endpoint), started once by
 *   the global setup; each file makes its own table.
 * - integration (redis down): the same integration files again, with REDIS_URL pointing at a server that
 *   accepts connections and never answers — the worst kind of Redis outage. Everything must still pass.
 * - infra: CDK assertions and cdk-nag on the synthesised template.
 */
const integrationFiles = ['test/integration/**/*.test.ts'];

export default defineConfig({
  test: {
    pool: 'forks',
    testTimeout: 30_000,
    hookTimeout: 60_000,
    projects: [
      { extends: true, test: { name: 'unit', include: ['test/unit/**/*.test.ts'], setupFiles: ['test/support/setup-unit.ts'] } },
      {
        extends: true,
        test: {
          name: 'integration',
          include: integrationFiles,
          globalSetup: ['test/support/global-setup.ts'],
          setupFiles: ['test/support/setup-env.ts'],
        },
      },
      {
        extends: true,
        test: {
          name: 'integration (redis down)',
          include: integrationFiles,
          // These files start and stop their own redis-server, or are about the cache itself.
          exclude: ['test/integration/cache*.test.ts'],
          globalSetup: ['test/support/global-setup.ts'],
          setupFiles: ['test/support/setup-env.ts'],
        },
      },
      { extends: true, test: { name: 'infra', include: ['test/infra/**/*.test.ts'], setupFiles: ['test/support/setup-unit.ts'] } },
    ],
  },
});
