import { App, Validations, type AppProps } from 'aws-cdk-lib';
import { AwsSolutionsChecks } from 'cdk-nag';
import { readSettings } from './settings.ts';
import { TallyStack } from './stack.ts';

/** The synth-time account and region when neither context nor the CLI's environment names one. */
export const SYNTH_ACCOUNT = '111111111111';
export const SYNTH_REGION = 'eu-west-1';

function contextString(app: App, key: string): string | undefined {
  const value: unknown = app.node.tryGetContext(key);
  return typeof value === 'string' && value !== '' ? value : undefined;
}

/**
 * Context `account`/`region` first. Otherwise the CLI's CDK_DEFAULT_ACCOUNT/CDK_DEFAULT_REGION, but only when
 * it found credentials (it sets a default region even without them, which would point synth at an account and
 * region with no cached lookups). Otherwise the offline synth environment.
 */
export function deploymentEnvironment(app: App, env: NodeJS.ProcessEnv = process.env): { account: string; region: string } {
  const cliAccount = env.CDK_DEFAULT_ACCOUNT !== undefined && env.CDK_DEFAULT_ACCOUNT !== '' ? env.CDK_DEFAULT_ACCOUNT : undefined;
  return {
    account: contextString(app, 'account') ?? cliAccount ?? SYNTH_ACCOUNT,
    region: contextString(app, 'region') ?? (cliAccount ? env.CDK_DEFAULT_REGION : undefined) ?? SYNTH_REGION,
  };
}

/**
 * The app: one Tally stack, checked by cdk-nag's AWS Solutions pack (`Validations.of(app).addPlugins`).
 */
export function buildApp(props: AppProps = {}): { app: App; stack: TallyStack } {
  const app = new App(props);
  const settings = readSettings(app.node);
  const stack = new TallyStack(app, `Tally-${settings.stage}`, {
    settings,
    description: `Tally serverless transactions API (${settings.stage})`,
    env: deploymentEnvironment(app),
  });
  Validations.of(app).addPlugins(new AwsSolutionsChecks(app));
  return { app, stack };
}
