/**
 * Bundles every Lambda (each route's entry and the aggregator) to `dist/<functionName>/index.mjs` with the
 * stack's esbuild options (lib/bundling.ts). The Dockerfile runs this; `npx tsx scripts/build.ts` runs it here.
 *
 *   npx tsx scripts/build.ts [--outdir dist]
 */
import { rm } from 'node:fs/promises';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { build } from 'esbuild';
import { BUNDLE_FILE, imageHandler, sharedEsbuildOptions } from '../lib/bundling.ts';
import { lambdaEntries } from '../lib/entries.ts';
import { repoRoot } from '../lib/paths.ts';


export interface BuiltFunction {
  functionName: string;
  /** Absolute path of the bundle. */
  file: string;
  /** The container image `CMD` that selects it. */
  handler: string;
}

export async function buildAll(outdir: string = path.join(repoRoot, 'dist')): Promise<BuiltFunction[]> {
  await rm(outdir, { recursive: true, force: true });
  const built: BuiltFunction[] = [];
  for (const { functionName, entry } of lambdaEntries()) {
    const file = path.join(outdir, functionName, BUNDLE_FILE);
    await build({
      ...sharedEsbuildOptions,
      banner: { ...sharedEsbuildOptions.banner },
      mainFields: [...sharedEsbuildOptions.mainFields],
      external: [...sharedEsbuildOptions.external],
      entryPoints: [path.join(repoRoot, entry)],
      outfile: file,
      absWorkingDir: repoRoot,
      logLevel: 'warning',
    });
    built.push({ functionName, file, handler: imageHandler(functionName) });
  }
  return built;
}

function outdirFromArgs(argv: readonly string[]): string | undefined {
  const index = argv.indexOf('--outdir');
  const value = index >= 0 ? argv[index + 1] : undefined;
  return value === undefined ? undefined : path.resolve(value);
}

if (process.argv[1] !== undefined && path.resolve(process.argv[1]) === fileURLToPath(import.meta.url)) {
  const built = await buildAll(outdirFromArgs(process.argv.slice(2)));
  for (const fn of built) console.log(`${fn.handler.padEnd(36)} ${path.relative(repoRoot, fn.file)}`);
}
