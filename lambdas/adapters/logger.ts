import { Logger } from '@aws-lambda-powertools/logger';

/**
 * The one structured logger. Log lines carry ids, routes, statuses and timings — never a name, a data key
 * (plaintext or wrapped), a ciphertext or a token. Level: POWERTOOLS_LOG_LEVEL (default INFO).
 */
export const logger = new Logger({ serviceName: process.env.POWERTOOLS_SERVICE_NAME ?? 'tally' });
