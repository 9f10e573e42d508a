import type { Node } from 'constructs';

export type Packaging = 'zip' | 'image';

/** Deployment switches, read from CDK context (`-c key=value` or cdk.json) in one place. */
export interface TallySettings {
  /** Stage name: part of the stack name and of physical names. Lowercase, it is also the Cognito domain's prefix. */
  stage: string;
  /** Keep data on `cdk destroy`: RETAIN removal policies, table and user-pool deletion protection, long log retention. */
  retain: boolean;
  /** `zip`: NodejsFunction bundles; `image`: one container image (the Dockerfile), one function per CMD. */
  packaging: Packaging;
  /** Stage-wide API Gateway throttling. */
  throttleRateLimit: number;
  throttleBurstLimit: number;
  /** Callback URLs of the end-user app client (authorization-code flow). */
  callbackUrls: string[];
  /** Cognito hosted domain prefix; must be unique in the region. */
  authDomainPrefix?: string;
}

function text(node: Node, key: string): string | undefined {
  const raw: unknown = node.tryGetContext(key);
  if (raw === undefined || raw === null) return undefined;
  if (typeof raw === 'string' || typeof raw === 'number' || typeof raw === 'boolean') return String(raw);
  if (Array.isArray(raw)) return raw.map(String).join(',');
  throw new Error(`Context ${key} must be a string`);
}

function bool(node: Node, key: string, fallback: boolean): boolean {
  const value = text(node, key);
  if (value === undefined) return fallback;
  if (value === 'true') return true;
  if (value === 'false') return false;
  throw new Error(`Context ${key} must be true or false, got ${value}`);
}

function positiveInt(node: Node, key: string, fallback: number): number {
  const value = text(node, key);
  if (value === undefined) return fallback;
  const n = Number(value);
  if (!Number.isSafeInteger(n) || n <= 0) throw new Error(`Context ${key} must be a positive integer, got ${value}`);
  return n;
}

export function readSettings(node: Node): TallySettings {
  const stage = text(node, 'stage') ?? 'dev';
  if (!/^[a-z][a-z0-9-]{0,19}$/.test(stage)) {
    throw new Error(`Context stage must match ^[a-z][a-z0-9-]{0,19}$, got ${stage}`);
  }
  const packaging = text(node, 'packaging') ?? 'zip';
  if (packaging !== 'zip' && packaging !== 'image') {
    throw new Error(`Context packaging must be zip or image, got ${packaging}`);
  }
  const callbackUrls = (text(node, 'callbackUrls') ?? 'http://localhost:8080/callback')
    .split(',')
    .map((url) => url.trim())
    .filter((url) => url !== '');
  const authDomainPrefix = text(node, 'authDomainPrefix');
  return {
    stage,
    retain: bool(node, 'retain', false),
    packaging,
    throttleRateLimit: positiveInt(node, 'throttleRateLimit', 100),
    throttleBurstLimit: positiveInt(node, 'throttleBurstLimit', 200),
    callbackUrls,
    ...(authDomainPrefix === undefined ? {} : { authDomainPrefix }),
  };
}
