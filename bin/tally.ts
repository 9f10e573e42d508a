#!/usr/bin/env node
/**
 * The CDK app entry. Context switches (cdk.json or `-c`): stage, retain=true|false, packaging=zip|image,
 * throttleRateLimit, throttleBurstLimit, callbackUrls, authDomainPrefix, account, region.
 */
import { buildApp } from '../lib/app.ts';

buildApp();
