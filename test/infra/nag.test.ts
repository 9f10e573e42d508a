import { mkdtempSync, readFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import * as sns from 'aws-cdk-lib/aws-sns';
import { describe, expect, it } from 'vitest';
import { buildApp } from '../../lib/app.ts';
import { repoRoot } from '../../lib/paths.ts';
import { synth } from './synth.ts';

describe('cdk-nag is wired into the app', () => {
  it('fails synthesis on an unacknowledged AWS Solutions finding', () => {
    const cdkJson = JSON.parse(readFileSync(path.join(repoRoot, 'cdk.json'), 'utf8')) as { context: Record<string, unknown> };
    const context = JSON.parse(readFileSync(path.join(repoRoot, 'cdk.context.json'), 'utf8')) as Record<string, unknown>;
    const { app, stack } = buildApp({
      outdir: mkdtempSync(path.join(tmpdir(), 'tally-nag-')),
      context: { ...context, ...cdkJson.context, 'aws:cdk:bundling-stacks': [], account: '111111111111', region: 'eu-west-1' },
    });
    new sns.Topic(stack, 'UnencryptedTopicWithoutSsl');
    expect(() => app.synth()).toThrow(/AwsSolutions-SNS3/);
  });

  it('synthesises both packagings with zero unacknowledged findings', () => {
    for (const packaging of ['zip', 'image']) {
      const { outdir } = synth({ packaging });
      const report = JSON.parse(readFileSync(path.join(outdir, 'validation-report.json'), 'utf8')) as {
        pluginReports: Array<{ violations?: unknown[] }>;
      };
      expect(report.pluginReports.flatMap((r) => r.violations ?? []), packaging).toEqual([]);
    }
  });
});
