import { mkdtempSync, readFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { Template } from 'aws-cdk-lib/assertions';
import { buildApp } from '../../lib/app.ts';
import { repoRoot } from '../../lib/paths.ts';
import type { TallyStack } from '../../lib/stack.ts';

export interface Synthesised {
  template: Template;
  stack: TallyStack;
  /** The cloud assembly directory (holds validation-report.json). */
  outdir: string;
}

const readJson = (file: string): Record<string, unknown> =>
  JSON.parse(readFileSync(path.join(repoRoot, file), 'utf8')) as Record<string, unknown>;

const cache = new Map<string, Synthesised>();

/**
 * Synthesises the app as `cdk synth` does (cdk.json context, the committed cdk.context.json, cdk-nag attached),
 * without bundling any Lambda code (`aws:cdk:bundling-stacks: []`), so it is fast and needs no esbuild run.
 * Synthesis throws if cdk-nag reports an unacknowledged error.
 */
export function synth(context: Record<string, unknown> = {}): Synthesised {
  const key = JSON.stringify(context);
  const hit = cache.get(key);
  if (hit) return hit;
  const cdkJson = readJson('cdk.json') as { context?: Record<string, unknown> };
  const outdir = mkdtempSync(path.join(tmpdir(), 'tally-cdk-'));
  const saved = { account: process.env.CDK_DEFAULT_ACCOUNT, region: process.env.CDK_DEFAULT_REGION };
  delete process.env.CDK_DEFAULT_ACCOUNT;
  delete process.env.CDK_DEFAULT_REGION;
  try {
    const { app, stack } = buildApp({
      outdir,
      context: {
        ...readJson('cdk.context.json'),
        ...cdkJson.context,
        'aws:cdk:bundling-stacks': [],
        // As the CLI does: construct paths in resource metadata, which the tests use to find resources.
        'aws:cdk:enable-path-metadata': true,
        ...context,
      },
    });
    app.synth();
    const result = { template: Template.fromStack(stack), stack, outdir };
    cache.set(key, result);
    return result;
  } finally {
    if (saved.account !== undefined) process.env.CDK_DEFAULT_ACCOUNT = saved.account;
    if (saved.region !== undefined) process.env.CDK_DEFAULT_REGION = saved.region;
  }
}

export type Resource = { Type: string; Properties: Record<string, unknown>; Metadata?: Record<string, unknown> };
export interface Statement {
  Sid?: string;
  Effect: string;
  Action: string | string[];
  Resource?: unknown;
  Condition?: Record<string, unknown>;
  Principal?: unknown;
}

export const actionsOf = (s: Statement): string[] => (Array.isArray(s.Action) ? s.Action : [s.Action]);

/** The logical id of a resource of `type` whose construct path is `<stack>/<pathSuffix>`. */
export function logicalIdByPath(template: Template, type: string, pathSuffix: string): string {
  const found = Object.entries(template.findResources(type)).filter(([, r]) =>
    String((r as Resource).Metadata?.['aws:cdk:path'] ?? '').endsWith(`/${pathSuffix}`),
  );
  if (found.length !== 1) throw new Error(`expected one ${type} at ${pathSuffix}, found ${found.length}`);
  return found[0]![0];
}

/** Every IAM statement attached (inline or DefaultPolicy) to the role of function `functionName`. */
export function statementsOfFunction(template: Template, functionName: string): Statement[] {
  const roleId = logicalIdByPath(template, 'AWS::IAM::Role', `${functionName}Role/Resource`);
  const statements: Statement[] = [];
  for (const policy of Object.values(template.findResources('AWS::IAM::Policy')) as Resource[]) {
    const roles = policy.Properties.Roles as Array<{ Ref?: string }>;
    if (!roles.some((r) => r.Ref === roleId)) continue;
    const doc = policy.Properties.PolicyDocument as { Statement: Statement[] };
    statements.push(...doc.Statement);
  }
  return statements;
}

/** Every policy statement anywhere in the template: IAM policies, roles' inline policies, key, topic and queue policies. */
export function allStatements(template: Template): Statement[] {
  const out: Statement[] = [];
  const visit = (value: unknown): void => {
    if (Array.isArray(value)) value.forEach(visit);
    else if (value && typeof value === 'object') {
      const obj = value as Record<string, unknown>;
      if ('Effect' in obj && 'Action' in obj) out.push(obj as unknown as Statement);
      Object.values(obj).forEach(visit);
    }
  };
  visit(template.toJSON().Resources);
  return out;
}
