import { existsSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { BUNDLE_FILE, imageHandler, sharedEsbuildOptions } from '../../lib/bundling.ts';
import { lambdaEntries } from '../../lib/entries.ts';
import { nodejsFunctionBundling } from '../../lib/functions.ts';
import { repoRoot } from '../../lib/paths.ts';
import { buildAll, type BuiltFunction } from '../../scripts/build.ts';
import { synth, type Resource } from './synth.ts';

const dockerfile = readFileSync(path.join(repoRoot, 'Dockerfile'), 'utf8');
const instructions = dockerfile
  .split('\n')
  .map((line) => line.trim())
  .filter((line) => line !== '' && !line.startsWith('#'));
const stages = instructions.filter((line) => line.startsWith('FROM '));

/** `CMD ["X/index.handler"]` → `X/index.handler`. */
const cmdOf = (line: string): string[] => JSON.parse(line.slice('CMD '.length)) as string[];
/** `X/index.handler` → `X/index.mjs` relative to the task root. */
const fileOfHandler = (handler: string): string => {
  const match = /^(.+)\.([A-Za-z_$][\w$]*)$/.exec(handler);
  if (!match) throw new Error(`not a handler: ${handler}`);
  return `${match[1]}.mjs`;
};

describe('the Dockerfile', () => {
  it('is multi-stage: node:22 build stage → public.ecr.aws/lambda/nodejs:22, running as the default user', () => {
    expect(stages).toHaveLength(2);
    expect(stages[0]).toMatch(/^FROM (--platform=\S+ )?node:22(-[\w.-]+)? AS build$/);
    expect(stages[1]).toBe('FROM public.ecr.aws/lambda/nodejs:22');
    expect(instructions.some((line) => line.startsWith('USER '))).toBe(false);
  });

  it('bundles with the project build script and ships only its output to LAMBDA_TASK_ROOT', () => {
    const runs = instructions.filter((line) => line.startsWith('RUN '));
    expect(runs).toContain('RUN npx tsx scripts/build.ts --outdir /src/dist');
    const finalStage = instructions.slice(instructions.indexOf(stages[1]!));
    expect(finalStage.filter((line) => line.startsWith('COPY '))).toEqual(['COPY --from=build /src/dist/ ${LAMBDA_TASK_ROOT}/']);
    expect(finalStage.some((line) => line.startsWith('RUN '))).toBe(false);
  });

  it('copies every source directory the entries import into the build stage, and .dockerignore keeps them in', () => {
    const copied = instructions.filter((line) => line.startsWith('COPY ') && !line.includes('--from'));
    for (const dir of ['lib/', 'lambdas/', 'scripts/']) expect(copied).toContain(`COPY ${dir} ${dir}`);
    const ignored = readFileSync(path.join(repoRoot, '.dockerignore'), 'utf8').split('\n').map((l) => l.trim());
    for (const kept of ['lib', 'lambdas', 'scripts', 'package.json', 'package-lock.json', 'tsconfig.json']) {
      expect(ignored).not.toContain(kept);
    }
    expect(ignored).toEqual(expect.arrayContaining(['node_modules', 'cdk.out', 'dist', '.git']));
  });
});

describe('the stack bundles with the same esbuild options as scripts/build.ts', () => {
  it('maps every shared option onto NodejsFunction bundling', () => {
    const bundling = nodejsFunctionBundling();
    expect(bundling).toMatchObject({
      target: sharedEsbuildOptions.target,
      minify: sharedEsbuildOptions.minify,
      sourceMap: sharedEsbuildOptions.sourcemap,
      mainFields: [...sharedEsbuildOptions.mainFields],
      banner: sharedEsbuildOptions.banner.js,
      externalModules: [],
    });
    expect(String(bundling.format)).toBe('esm');
    expect(sharedEsbuildOptions.format).toBe('esm');
    // The banner must survive the shell quoting NodejsFunction uses for local bundling.
    expect(sharedEsbuildOptions.banner.js).not.toMatch(/["$`\\]/);
  });
});

describe('scripts/build.ts output', () => {
  let outdir: string;
  let built: BuiltFunction[];

  beforeAll(async () => {
    outdir = mkdtempSync(path.join(tmpdir(), 'tally-build-'));
    built = await buildAll(outdir);
  }, 120_000);
  afterAll(() => rmSync(outdir, { recursive: true, force: true }));

  it('bundles every route entry and the aggregator to <functionName>/index.mjs with a source map', () => {
    expect(built.map((b) => b.functionName)).toEqual(lambdaEntries().map((e) => e.functionName));
    for (const fn of built) {
      expect(fn.file).toBe(path.join(outdir, fn.functionName, BUNDLE_FILE));
      expect(existsSync(fn.file), fn.file).toBe(true);
      expect(existsSync(`${fn.file}.map`)).toBe(true);
      expect(readFileSync(fn.file, 'utf8').startsWith('import{createRequire')).toBe(false);
      expect(readFileSync(fn.file, 'utf8')).toContain('__tallyCreateRequire');
    }
  });

  it('contains the handler the Dockerfile CMD names, and every CMD the image packaging sets', () => {
    const cmd = instructions.find((line) => line.startsWith('CMD '));
    expect(cmd).toBeDefined();
    const named = [...cmdOf(cmd!)];
    const functions = Object.values(synth({ packaging: 'image' }).template.findResources('AWS::Lambda::Function')) as Resource[];
    for (const fn of functions) named.push(...(fn.Properties.ImageConfig as { Command: string[] }).Command);
    expect(named.length).toBe(lambdaEntries().length + 1);
    for (const handler of named) {
      expect(existsSync(path.join(outdir, fileOfHandler(handler))), handler).toBe(true);
    }
    expect(new Set(named)).toEqual(new Set(lambdaEntries().map((e) => imageHandler(e.functionName))));
  });

  it('produces modules that load under Node and export handler', async () => {
    for (const fn of built) {
      const mod = (await import(fn.file)) as { handler?: unknown };
      expect(typeof mod.handler, fn.functionName).toBe('function');
    }
  });
});
