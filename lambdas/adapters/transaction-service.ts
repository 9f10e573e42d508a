import { ulid } from 'ulid';
import { decodeCursor, encodeCursor } from '../core/cursor.ts';
import type { HistoryQuery } from '../core/history-query.ts';
import { problems } from '../core/problems.ts';
import type { NewTransaction, StoredTransaction, TransactionPatch } from '../core/transaction.ts';
import { historyKey } from '../core/cache-keys.ts';
import type { Cache } from './cache.ts';
import { FieldDecryptionError } from './field-cipher.ts';
import { buildTransactionItem, type TransactionItem } from './transaction-item.ts';
import { DataKeyChanged, VersionConflict, type TransactionRepository } from './transaction-repository.ts';

/** Seals and opens names; `decrypt` returns null once the user's key was destroyed. */
export interface NameSealer {
  encrypt(userId: string, transactionId: string, fullName: string): Promise<{ ciphertext: string; keyVersion: number }>;
  decrypt(userId: string, transactionId: string, ciphertext: string): Promise<string | null>;
}
/** Drops a container's cached data key for a user. */
export interface KeyCache {
  forget(userId: string): void;
}
/** What the service needs of the cache: a per-user version to bump after every write. */
export interface WriteNotifier {
  bumpUserVersion(userId: string): Promise<void>;
}
/** The history cache: versioned per user, cache-aside. */
export type HistoryCache = WriteNotifier & Pick<Cache, 'userVersion' | 'getOrCompute'>;

export interface HistoryPage {
  items: StoredTransaction[];
  nextCursor: string | null;
}
/** A page as cached: ciphertext only, decrypted after the cache. */
export interface SealedPage {
  items: TransactionItem[];
  nextCursor: string | null;
}

/** A transaction as the API sees it, with the item it was read from or written as. */
export interface SealedTransaction {
  transaction: StoredTransaction;
  item: TransactionItem;
}

const MAX_OPTIMISTIC_ATTEMPTS = 5;

/**
 * Transactions as the API sees them: names sealed before they reach DynamoDB, versions checked on every
 * change, cursors signed. Handlers call this; it calls the repository, the name cipher and the cache.
 */
export class TransactionService {
  constructor(
    private readonly deps: {
      repository: TransactionRepository;
      names: NameSealer;
      keys: KeyCache;
      cache: HistoryCache;
      cursorSecret: string;
      historyTtlSeconds?: number;
      now?: () => Date;
      newId?: () => string;
    },
  ) {}

  private now(): string {
    return (this.deps.now?.() ?? new Date()).toISOString();
  }

  async create(userId: string, input: NewTransaction, transactionId: string = this.newId()): Promise<StoredTransaction> {
    return (await this.createSealed(userId, input, transactionId)).transaction;
  }

  /**
   * `create`, also returning the item as written (the name only as its ciphertext), so an idempotency record
   * can keep the first response without the plaintext name.
   */
  async createSealed(userId: string, input: NewTransaction, transactionId: string = this.newId()): Promise<SealedTransaction> {
    const at = this.now();
    const item = await this.withLiveKey(userId, async () => {
      const sealed = await this.deps.names.encrypt(userId, transactionId, input.fullName);
      const next = buildTransactionItem({
        transaction_id: transactionId,
        user_id: userId,
        full_name_ct: sealed.ciphertext,
        key_version: sealed.keyVersion,
        amount_minor: input.amountMinor,
        type: input.type,
        date: input.date,
        version: 1,
        created_at: at,
        updated_at: at,
      });
      await this.deps.repository.insert(next);
      return next;
    });
    await this.deps.cache.bumpUserVersion(userId);
    return { transaction: { ...this.facts(item), fullName: input.fullName }, item };
  }

  /** `get`, also returning the stored item (ciphertext only). */
  async getSealed(userId: string, transactionId: string): Promise<SealedTransaction> {
    const item = await this.deps.repository.get(userId, transactionId);
    if (!item) throw notFound(transactionId);
    return { transaction: await this.open(item), item };
  }

  /**
   * Opens a transaction from stored facts rather than from the table (an idempotent replay of the first
   * response): the same decryption as every read, so an erased user's name reads null here too.
   */
  async openFacts(fields: Omit<TransactionItem, 'PK' | 'SK' | 'date_sk' | 'entity'>): Promise<StoredTransaction> {
    return this.open(buildTransactionItem(fields));
  }

  newId(): string {
    return this.deps.newId?.() ?? ulid();
  }

  async get(userId: string, transactionId: string): Promise<StoredTransaction> {
    const item = await this.deps.repository.get(userId, transactionId);
    if (!item) throw notFound(transactionId);
    return this.open(item);
  }

  /**
   * Applies a patch. With `ifMatch`, only to that version (412 otherwise); without, it retries on a concurrent
   * change, re-reading each time, so no update is ever lost.
   */
  async update(userId: string, transactionId: string, patch: TransactionPatch, ifMatch?: number): Promise<StoredTransaction> {
    for (let attempt = 1; ; attempt++) {
      const current = await this.deps.repository.get(userId, transactionId);
      if (!current) throw notFound(transactionId);
      if (ifMatch !== undefined && current.version !== ifMatch) throw versionMismatch(ifMatch, current.version);
      try {
        const updated = await this.withLiveKey(userId, async () => {
          const sealed = patch.fullName === undefined ? undefined : await this.deps.names.encrypt(userId, transactionId, patch.fullName);
          const next = buildTransactionItem({
            transaction_id: transactionId,
            user_id: userId,
            full_name_ct: sealed?.ciphertext ?? current.full_name_ct,
            key_version: sealed?.keyVersion ?? current.key_version,
            amount_minor: patch.amountMinor ?? current.amount_minor,
            type: patch.type ?? current.type,
            date: patch.date ?? current.date,
            version: current.version + 1,
            created_at: current.created_at,
            updated_at: this.now(),
          });
          await this.deps.repository.replace(next, current.version, sealed !== undefined);
          return next;
        });
        await this.deps.cache.bumpUserVersion(userId);
        return patch.fullName === undefined ? this.open(updated) : { ...this.facts(updated), fullName: patch.fullName };
      } catch (error) {
        if (!(error instanceof VersionConflict)) throw error;
        if (ifMatch !== undefined) throw versionMismatch(ifMatch, undefined);
        if (attempt >= MAX_OPTIMISTIC_ATTEMPTS) throw problems.contention('The transaction kept changing concurrently');
      }
    }
  }

  async delete(userId: string, transactionId: string, ifMatch?: number): Promise<void> {
    const outcome = await this.deps.repository.remove(userId, transactionId, ifMatch);
    if (outcome === 'missing') throw notFound(transactionId);
    if (outcome === 'conflict') throw versionMismatch(ifMatch ?? 0, undefined);
    await this.deps.cache.bumpUserVersion(userId);
  }

  /** A page of sealed items with its signed cursor: what the history cache stores. */
  async sealedPage(userId: string, query: HistoryQuery): Promise<SealedPage> {
    const scope = { userId, from: query.from, to: query.to, type: query.type };
    const after = query.cursor === undefined ? undefined : decodeCursor(this.deps.cursorSecret, scope, query.cursor);
    if (query.cursor !== undefined && after === undefined) throw problems.invalidCursor();
    const page = await this.deps.repository.page(userId, query, query.limit, after);
    return {
      items: page.items,
      nextCursor: page.last ? encodeCursor(this.deps.cursorSecret, scope, page.last) : null,
    };
  }

  /**
   * A page through the cache: the key carries the user's version, which every returned write bumps before
   * it responds, so a cached page never hides a write (read-your-writes). Pages hold ciphertext only; names
   * are decrypted after the cache. If Redis cannot say the version, the cache is bypassed.
   */
  async cachedPage(userId: string, query: HistoryQuery): Promise<SealedPage> {
    const { cache } = this.deps;
    const version = await cache.userVersion(userId);
    if (version === undefined) return this.sealedPage(userId, query);
    const key = historyKey(userId, version, {
      limit: String(query.limit),
      cursor: query.cursor,
      from: query.from,
      to: query.to,
      type: query.type,
    });
    const { value } = await cache.getOrCompute(key, this.deps.historyTtlSeconds ?? 300, () => this.sealedPage(userId, query));
    return value;
  }

  async openPage(page: SealedPage): Promise<HistoryPage> {
    return { items: await Promise.all(page.items.map((item) => this.open(item))), nextCursor: page.nextCursor };
  }

  async open(item: TransactionItem): Promise<StoredTransaction> {
    let fullName: string | null;
    try {
      fullName = await this.deps.names.decrypt(item.user_id, item.transaction_id, item.full_name_ct);
    } catch (error) {
      throw error instanceof FieldDecryptionError ? problems.integrity(error) : error;
    }
    return { ...this.facts(item), fullName };
  }

  private facts(item: TransactionItem): Omit<StoredTransaction, 'fullName'> {
    return {
      transactionId: item.transaction_id,
      userId: item.user_id,
      date: item.date,
      amountMinor: Number(item.amount_minor),
      type: item.type,
      version: Number(item.version),
      createdAt: item.created_at,
      updatedAt: item.updated_at,
    };
  }

  /** Runs a sealing write; if the key changed under it (erased by another container), forgets it and retries once. */
  private async withLiveKey<T>(userId: string, write: () => Promise<T>): Promise<T> {
    try {
      return await write();
    } catch (error) {
      if (!(error instanceof DataKeyChanged)) throw error;
      this.deps.keys.forget(userId);
      try {
        return await write();
      } catch (again) {
        if (again instanceof DataKeyChanged) throw problems.contention("The user's data key changed during the write");
        throw again;
      }
    }
  }
}

const notFound = (transactionId: string) => problems.notFound(`Transaction ${transactionId} does not exist for this user`);
const versionMismatch = (expected: number, actual: number | undefined) =>
  problems.preconditionFailed(
    actual === undefined
      ? `If-Match "${expected}" no longer matches: the transaction was changed concurrently`
      : `If-Match "${expected}" does not match the current version "${actual}"`,
  );
