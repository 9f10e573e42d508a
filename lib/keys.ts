import { Stack, type RemovalPolicy } from 'aws-cdk-lib';
import * as iam from 'aws-cdk-lib/aws-iam';
import * as kms from 'aws-cdk-lib/aws-kms';
import type { Construct } from 'constructs';

/**
 * Key administration actions for the account (so the key never becomes unmanageable), spelled out instead of
 * `kms:*`. Using the key is delegated to IAM, where each function's role gets only what its code calls.
 */
const ADMIN_ACTIONS = [
  'kms:CreateAlias',
  'kms:CreateGrant',
  'kms:DescribeKey',
  'kms:EnableKey',
  'kms:EnableKeyRotation',
  'kms:ListAliases',
  'kms:ListGrants',
  'kms:ListKeyPolicies',
  'kms:ListResourceTags',
  'kms:PutKeyPolicy',
  'kms:UpdateAlias',
  'kms:UpdateKeyDescription',
  'kms:RevokeGrant',
  'kms:RetireGrant',
  'kms:DisableKey',
  'kms:DisableKeyRotation',
  'kms:GetKeyPolicy',
  'kms:GetKeyRotationStatus',
  'kms:DeleteAlias',
  'kms:TagResource',
  'kms:UntagResource',
  'kms:ScheduleKeyDeletion',
  'kms:CancelKeyDeletion',
  'kms:RotateKeyOnDemand',
];

/** Cryptographic actions IAM policies in this account may grant on the key (the key policy is the ceiling). */
const DELEGATED_USE_ACTIONS = ['kms:Encrypt', 'kms:Decrypt', 'kms:GenerateDataKey', 'kms:ReEncryptFrom', 'kms:ReEncryptTo'];

export interface TallyKeyProps {
  description: string;
  alias: string;
  removalPolicy: RemovalPolicy;
  /** AWS services that must use the key directly (e.g. EventBridge and CloudWatch publishing to an encrypted topic). */
  servicePrincipals?: string[];
}

/** A symmetric customer-managed key, rotation on, with an explicit key policy (no `kms:*`). */
export function tallyKey(scope: Construct, id: string, props: TallyKeyProps): kms.Key {
  const stack = Stack.of(scope);
  const account = new iam.AccountRootPrincipal();
  const policy = new iam.PolicyDocument({
    statements: [
      new iam.PolicyStatement({
        sid: 'AccountAdministersTheKey',
        principals: [account],
        actions: ADMIN_ACTIONS,
        resources: ['*'],
      }),
      new iam.PolicyStatement({
        sid: 'IamPoliciesMayGrantUse',
        principals: [account],
        actions: DELEGATED_USE_ACTIONS,
        resources: ['*'],
      }),
    ],
  });
  for (const service of props.servicePrincipals ?? []) {
    policy.addStatements(
      new iam.PolicyStatement({
        sid: `${service.split('.')[0] ?? service}PublishesToEncryptedTopics`,
        principals: [new iam.ServicePrincipal(service)],
        actions: ['kms:GenerateDataKey', 'kms:Decrypt'],
        resources: ['*'],
        conditions: { StringEquals: { 'aws:SourceAccount': stack.account } },
      }),
    );
  }
  return new kms.Key(scope, id, {
    description: props.description,
    alias: props.alias,
    enableKeyRotation: true,
    policy,
    removalPolicy: props.removalPolicy,
  });
}
