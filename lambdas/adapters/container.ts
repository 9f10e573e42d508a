import { config } from './config.ts';
import { cache } from './cache.ts';
import { AggregateStore } from './aggregate-store.ts';
import { AnalyticsService } from './analytics-service.ts';
import { dataKeyStore, dynamoClient, dynamoDocumentClient, nameCipher } from './clients.ts';
import { idempotencyStore } from './idempotency-store.ts';
import { IdempotentCreate } from './idempotent-create.ts';
import { PersonalDataService } from './personal-data-service.ts';
import { TransactionRepository } from './transaction-repository.ts';
import { TransactionService } from './transaction-service.ts';

/**
 * The services of one Lambda container, built lazily on first use and reused by every invocation.
 */
let transactions: TransactionService | undefined;

export function transactionService(): TransactionService {
  transactions ??= new TransactionService({
    repository: new TransactionRepository(dynamoDocumentClient(), config().tableName),
    names: nameCipher(),
    keys: dataKeyStore(),
    cache: cache(),
    cursorSecret: config().cursorSecret,
    historyTtlSeconds: config().historyCacheTtlSeconds,
  });
  return transactions;
}

let personalData: PersonalDataService | undefined;

export function personalDataService(): PersonalDataService {
  personalData ??= new PersonalDataService({ keys: dataKeyStore(), cache: cache() });
  return personalData;
}

let creates: IdempotentCreate | undefined;

export function idempotentCreate(): IdempotentCreate {
  const c = config();
  creates ??= new IdempotentCreate({
    transactions: transactionService(),
    ledger: idempotencyStore(),
    fingerprintSecret: c.cursorSecret,
    ttlSeconds: c.idempotencyTtlSeconds,
    inProgressSeconds: c.idempotencyInProgressSeconds,
  });
  return creates;
}

let analytics: AnalyticsService | undefined;

export function analyticsService(): AnalyticsService {
  analytics ??= new AnalyticsService({
    store: new AggregateStore(dynamoClient(), config().tableName),
    cache: cache(),
    ttlSeconds: config().analyticsCacheTtlSeconds,
  });
  return analytics;
}

/** Forgets the built services (tests that change configuration between cases). */
export function resetContainer(): void {
  transactions = undefined;
  personalData = undefined;
  analytics = undefined;
  creates = undefined;
}
