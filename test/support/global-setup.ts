import type { TestProject } from 'vitest/node';
import { startDynamoDbLocal } from '../../local/dynamodb-local.ts';
import { startRedis } from '../../local/redis-local.ts';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { startKmsServer } from '../../local/kms-server.ts';
import { startBlackHole } from './black-hole.ts';

/**
 * Starts the real local services once for the whole run and tells every test worker where they are through
 * the standard SDK variables (`AWS_ENDPOINT_URL_<SERVICE>`), exactly as the local stack does. Each
 * integration test file creates its own table (see `test/support/stack.ts`), so files never share state.
 */
export default async function setup(project: TestProject) {
  const dynamo = await startDynamoDbLocal();
  // The "redis down" project runs the same files against a Redis that accepts connections and never answers.
  const redisDown = project.name.includes('redis down');
  const redis = redisDown ? await startBlackHole() : await startRedis();
  const kmsDir = await mkdtemp(join(tmpdir(), 'tally-kms-'));
  const kms = await startKmsServer({ dataDir: kmsDir });
  const env = {
    AWS_REGION: 'us-east-1',
    AWS_ACCESS_KEY_ID: 'local',
    AWS_SECRET_ACCESS_KEY: 'local',
    AWS_ENDPOINT_URL_DYNAMODB: dynamo.endpoint,
    AWS_ENDPOINT_URL_DYNAMODB_STREAMS: dynamo.endpoint,
    REDIS_URL: redis.url,
    AWS_ENDPOINT_URL_KMS: kms.endpoint,
    KMS_KEY_ID: kms.alias,
  };
  Object.assign(process.env, env);
  project.provide('services', env);
  return async () => {
    await Promise.all([dynamo.process.stop(), redis.process.stop()]);
    await kms.stop();
    await rm(kmsDir, { recursive: true, force: true });
  };
}

declare module 'vitest' {
  export interface ProvidedContext {
    services: Record<string, string>;
  }
}
