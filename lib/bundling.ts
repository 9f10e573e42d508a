import type { BuildOptions } from 'esbuild';

/**
 * The one esbuild configuration for every Lambda, used by the stack's `NodejsFunction`s (packaging=zip) and by
 * `scripts/build.ts` (the Dockerfile's build step, packaging=image), so both packagings ship the same bundle.
 *
 * Everything is bundled, the AWS SDK included: the code runs against the SDK version it was tested with, not
 * the one the runtime happens to carry, and the container image needs no `node_modules` at all. This module
 * imports nothing but esbuild's types, so the Docker build stage can load it without aws-cdk-lib.
 */

/** esbuild's ESM output has no `require`; CommonJS dependencies (ioredis, …) that require Node built-ins need one. */
export const ESM_REQUIRE_BANNER =
  "import { createRequire as __tallyCreateRequire } from 'node:module';const require = __tallyCreateRequire(import.meta.url);";

/** Node 22 is the Lambda runtime (`nodejs22.x`) and the container base image (`public.ecr.aws/lambda/nodejs:22`). */
export const NODE_TARGET = 'node22';

/** Output file name inside each function's directory; `.mjs` makes the Lambda runtime load it as an ES module. */
export const BUNDLE_FILE = 'index.mjs';
export const HANDLER_EXPORT = 'handler';

export const sharedEsbuildOptions = {
  bundle: true,
  platform: 'node',
  format: 'esm',
  target: NODE_TARGET,
  minify: true,
  sourcemap: true,
  mainFields: ['module', 'main'],
  banner: { js: ESM_REQUIRE_BANNER },
  external: [] as string[],
} as const satisfies BuildOptions;

/** `CMD` of the container image for one function: `<functionName>/index.handler`, relative to LAMBDA_TASK_ROOT. */
export function imageHandler(functionName: string): string {
  return `${functionName}/${BUNDLE_FILE.replace(/\.mjs$/, '')}.${HANDLER_EXPORT}`;
}
