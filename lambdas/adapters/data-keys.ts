import { DecryptCommand, GenerateDataKeyCommand, type KMSClient } from '@aws-sdk/client-kms';
import { ConditionalCheckFailedException } from '@aws-sdk/client-dynamodb';
import { GetCommand, PutCommand, UpdateCommand, type DynamoDBDocumentClient } from '@aws-sdk/lib-dynamodb';
import { LRUCache } from 'lru-cache';
import { DATA_KEY_SK, TABLE_KEYS, userPk } from '../core/keys.ts';
import { Problem, problems } from '../core/problems.ts';
import { dynamoFailure, isTransportFailure } from './dynamo-errors.ts';
import { FieldDecryptionError } from './field-cipher.ts';

/**
 * Per-user data keys (DESIGN.md, "Encryption"). Each user has one `KEY` item holding their current data key,
 * wrapped by KMS under the encryption context `{ user_id }`, and its `key_version`. Erasure removes
 * `wrapped_key` but keeps `key_version`, so the next key gets a higher version and every ciphertext names, by
 * its version, whether its key still exists.
 *
 * The plaintext key lives only in this container's LRU (bounded by `maxEntries`, expiring after `ttlMs`). A
 * cached key is trusted until it expires: that TTL is the bound on how long another container can go on
 * decrypting a user's names after an erasure here.
 */
export interface DataKey {
  version: number;
  key: Buffer;
}

export interface DataKeyStoreDeps {
  kms: KMSClient;
  doc: DynamoDBDocumentClient;
  tableName: string;
  kmsKeyId: string;
  ttlMs: number;
  maxEntries: number;
  now?: () => number;
}

/** The stored state of a user's key: live (unwrapped), erased at some version, or never created. */
type KeyState =
  | { kind: 'live'; key: DataKey }
  | { kind: 'erased'; version: number }
  | { kind: 'missing' };

interface KeyItem {
  key_version?: unknown;
  wrapped_key?: unknown;
}

interface CachedKey {
  key: DataKey;
  /** Usable while `now() <= expiresAt`. */
  expiresAt: number;
}

const KEY_BYTES = 32;
const CREATE_ATTEMPTS = 4;

/** KMS error names that mean "try again later", not "this key is bad". */
const KMS_TRANSIENT = new Set([
  'ThrottlingException',
  'KMSInternalException',
  'DependencyTimeoutException',
  'KeyUnavailableException',
  'ServiceUnavailableException',
  'InternalFailure',
  'ServiceUnavailable',
  'RequestTimeout',
  'RequestTimeoutException',
  'TimeoutError',
]);

/**
 * KMS error names that mean the wrapped key (or the KMS key) cannot be used. `KMSInvalidStateException` is
 * here on purpose: a KMS key that is disabled or pending deletion does not heal in a second, and a 503 with
 * `Retry-After: 1` would hide an emergency (every name is about to become unreadable) behind client retries.
 */
const KMS_REFUSED = new Set([
  'InvalidCiphertextException',
  'IncorrectKeyException',
  'AccessDeniedException',
  'NotFoundException',
  'DisabledException',
  'KMSInvalidStateException',
  'InvalidKeyUsageException',
  'InvalidGrantTokenException',
]);

const errorName = (error: unknown): unknown => (typeof error === 'object' && error !== null ? (error as { name?: unknown }).name : undefined);

/** KMS is throttling or unreachable: the request should be a 503 and may be retried. */
export function isKmsUnavailable(error: unknown): boolean {
  const name = errorName(error);
  if (typeof name === 'string' && KMS_REFUSED.has(name)) return false;
  if (typeof name === 'string' && KMS_TRANSIENT.has(name)) return true;
  return isTransportFailure(error);
}

/** KMS refused the key or the wrapped blob: retrying will not help, and nothing may be guessed. */
export function isKmsRefusal(error: unknown): boolean {
  const name = errorName(error);
  return typeof name === 'string' && KMS_REFUSED.has(name);
}

/** The 500 for a data key that KMS will not unwrap. Deliberately says nothing about which user or why. */
export function dataKeyUnusable(cause?: unknown): Problem {
  return new Problem({
    status: 500,
    slug: 'data-key-unusable',
    title: 'A data key could not be unwrapped',
    detail: 'A stored data key could not be used; nothing was changed.',
    cause,
  });
}

function kmsFailure(error: unknown): Error {
  if (isKmsRefusal(error)) return dataKeyUnusable(error);
  if (isKmsUnavailable(error)) return problems.dependencyUnavailable('KMS', error);
  return problems.internal(error);
}

/** A copy of the SDK's plaintext buffer, after which the SDK's own buffer is zeroed. */
function takeKey(plaintext: Uint8Array | undefined): Buffer {
  if (!plaintext || plaintext.byteLength !== KEY_BYTES) throw dataKeyUnusable();
  const key = Buffer.from(plaintext);
  plaintext.fill(0);
  return key;
}

export class DataKeyStore {
  private readonly deps: DataKeyStoreDeps;
  private readonly now: () => number;
  /** userId → the live key. The only place a plaintext key is kept. */
  private readonly live: LRUCache<string, CachedKey>;
  /**
   * userId → the highest key version known to be destroyed. Versions only grow and a destroyed key never comes
   * back, so this knowledge never goes stale and needs no TTL; it spares a GetItem per erased row on reads.
   */
  private readonly destroyedThrough: LRUCache<string, number>;
  /** In-flight loads and creations, one per user, so concurrent misses share one GetItem and one KMS call. */
  private readonly loading = new Map<string, Promise<KeyState>>();
  private readonly creating = new Map<string, Promise<DataKey>>();
  private readonly creatingToken = new Map<string, object>();

  constructor(deps: DataKeyStoreDeps) {
    if (!Number.isFinite(deps.ttlMs) || deps.ttlMs < 0) throw new RangeError('ttlMs must be >= 0');
    this.deps = deps;
    this.now = deps.now ?? Date.now;
    const max = Math.max(1, Math.floor(deps.maxEntries));
    // Expiry is checked here against the injected clock rather than with lru-cache's own `ttl`, whose clock
    // treats a start time of 0 as "no TTL"; lru-cache does the LRU bound.
    this.live = new LRUCache<string, CachedKey>({ max });
    this.destroyedThrough = new LRUCache<string, number>({ max });
  }

  /** The user's live key, creating the user's first (or post-erasure) key if there is none. */
  async keyForWrite(userId: string): Promise<DataKey> {
    const cached = this.cached(userId);
    if (cached) return cached;
    const pending = this.creating.get(userId);
    if (pending) return pending;
    const token = {};
    const promise = this.obtainLive(userId, token).finally(() => {
      if (this.creatingToken.get(userId) === token) {
        this.creating.delete(userId);
        this.creatingToken.delete(userId);
      }
    });
    this.creating.set(userId, promise);
    this.creatingToken.set(userId, token);
    return promise;
  }

  /**
   * The key that sealed a field of `version`, or `null` when that key was destroyed (erased, or superseded by a
   * later key). A version above the stored one cannot have been written by us: `FieldDecryptionError`.
   */
  async keyForRead(userId: string, version: number): Promise<DataKey | null> {
    if (!Number.isSafeInteger(version) || version < 1) throw new FieldDecryptionError('The stored key version is invalid');
    if (version <= (this.destroyedThrough.get(userId) ?? 0)) return null;
    const cached = this.cached(userId);
    if (cached) {
      if (cached.version === version) return cached;
      if (version < cached.version) return null;
      // The ciphertext is newer than our cached key: another container erased and re-keyed. Look again.
      this.forget(userId);
    }
    const state = await this.load(userId);
    if (state.kind === 'missing') return null;
    if (state.kind === 'erased') {
      if (version <= state.version) return null;
      throw new FieldDecryptionError('The stored key version is newer than the user key');
    }
    if (version === state.key.version) return state.key;
    if (version < state.key.version) return null;
    throw new FieldDecryptionError('The stored key version is newer than the user key');
  }

  /** Crypto-shreds the user's key: removes the wrapped key, keeps the version. Idempotent. */
  async erase(userId: string): Promise<void> {
    this.forget(userId);
    try {
      const result = await this.deps.doc.send(
        new UpdateCommand({
          TableName: this.deps.tableName,
          Key: { [TABLE_KEYS.partitionKey]: userPk(userId), [TABLE_KEYS.sortKey]: DATA_KEY_SK },
          UpdateExpression: 'REMOVE wrapped_key SET erased_at = :now',
          ConditionExpression: 'attribute_exists(wrapped_key)',
          ExpressionAttributeValues: { ':now': new Date(this.now()).toISOString() },
          ReturnValues: 'ALL_NEW',
        }),
      );
      const version = (result.Attributes as KeyItem | undefined)?.key_version;
      if (typeof version === 'number') this.markDestroyed(userId, version);
    } catch (error) {
      // No item, or already erased: nothing to destroy.
      if (error instanceof ConditionalCheckFailedException) return;
      throw dynamoFailure(error);
    } finally {
      // A load that raced the erase must not put the old key back.
      this.forget(userId);
    }
  }

  /** Drops this container's cached key for the user (and any in-flight load of it). */
  forget(userId: string): void {
    this.live.delete(userId);
    this.loading.delete(userId);
    this.creating.delete(userId);
    this.creatingToken.delete(userId);
  }

  private markDestroyed(userId: string, version: number): void {
    if (version > (this.destroyedThrough.get(userId) ?? 0)) this.destroyedThrough.set(userId, version);
  }

  private cached(userId: string): DataKey | undefined {
    const entry = this.live.get(userId);
    if (!entry) return undefined;
    if (this.now() > entry.expiresAt) {
      this.live.delete(userId);
      return undefined;
    }
    return entry.key;
  }

  private remember(userId: string, key: DataKey): void {
    // ttlMs 0 means "do not cache": every call goes to DynamoDB and KMS.
    if (this.deps.ttlMs > 0) this.live.set(userId, { key, expiresAt: this.now() + this.deps.ttlMs });
    if (key.version > 1) this.markDestroyed(userId, key.version - 1);
  }

  /** The stored state, shared by concurrent callers; a live key is unwrapped and cached. */
  private load(userId: string): Promise<KeyState> {
    const pending = this.loading.get(userId);
    if (pending) return pending;
    const promise = this.readState(userId).then((state) => {
      // Only cache if nobody called `forget` (e.g. an erase) while this load was in flight.
      if (state.kind === 'live' && this.loading.get(userId) === promise) this.remember(userId, state.key);
      if (state.kind === 'erased') this.markDestroyed(userId, state.version);
      return state;
    });
    const settled = promise.finally(() => {
      if (this.loading.get(userId) === promise) this.loading.delete(userId);
    });
    this.loading.set(userId, promise);
    return settled;
  }

  private async obtainLive(userId: string, token: object): Promise<DataKey> {
    for (let attempt = 0; attempt < CREATE_ATTEMPTS; attempt += 1) {
      const state = await this.load(userId);
      if (state.kind === 'live') return state.key;
      const previous = state.kind === 'erased' ? state.version : 0;
      const created = await this.create(userId, previous);
      if (created) {
        // Unless an erase here called `forget` meanwhile (then the next call reads the table again).
        if (this.creatingToken.get(userId) === token) this.remember(userId, created);
        return created;
      }
      // Another container put a key first: read theirs.
    }
    throw problems.dependencyUnavailable('DynamoDB');
  }

  private async readState(userId: string): Promise<KeyState> {
    let item: KeyItem | undefined;
    try {
      const result = await this.deps.doc.send(
        new GetCommand({
          TableName: this.deps.tableName,
          Key: { [TABLE_KEYS.partitionKey]: userPk(userId), [TABLE_KEYS.sortKey]: DATA_KEY_SK },
          ConsistentRead: true,
          ProjectionExpression: 'key_version, wrapped_key',
        }),
      );
      item = result.Item as KeyItem | undefined;
    } catch (error) {
      throw dynamoFailure(error);
    }
    if (!item) return { kind: 'missing' };
    const version = item.key_version;
    if (typeof version !== 'number' || !Number.isSafeInteger(version) || version < 1) throw dataKeyUnusable();
    if (item.wrapped_key === undefined) return { kind: 'erased', version };
    if (typeof item.wrapped_key !== 'string' || item.wrapped_key === '') throw dataKeyUnusable();
    return { kind: 'live', key: { version, key: await this.unwrap(userId, item.wrapped_key) } };
  }

  private async unwrap(userId: string, wrapped: string): Promise<Buffer> {
    try {
      const result = await this.deps.kms.send(
        new DecryptCommand({
          CiphertextBlob: Buffer.from(wrapped, 'base64'),
          KeyId: this.deps.kmsKeyId,
          EncryptionContext: { user_id: userId },
        }),
      );
      return takeKey(result.Plaintext);
    } catch (error) {
      if (error instanceof Problem) throw error;
      throw kmsFailure(error);
    }
  }

  /** Generates and stores a key of version `previous + 1`; `null` when another writer got there first. */
  private async create(userId: string, previous: number): Promise<DataKey | null> {
    let key: Buffer;
    let wrapped: Uint8Array;
    try {
      const result = await this.deps.kms.send(
        new GenerateDataKeyCommand({
          KeyId: this.deps.kmsKeyId,
          KeySpec: 'AES_256',
          EncryptionContext: { user_id: userId },
        }),
      );
      if (!result.CiphertextBlob || result.CiphertextBlob.byteLength === 0) throw dataKeyUnusable();
      wrapped = result.CiphertextBlob;
      key = takeKey(result.Plaintext);
    } catch (error) {
      if (error instanceof Problem) throw error;
      throw kmsFailure(error);
    }
    const version = previous + 1;
    try {
      await this.deps.doc.send(
        new PutCommand({
          TableName: this.deps.tableName,
          Item: {
            [TABLE_KEYS.partitionKey]: userPk(userId),
            [TABLE_KEYS.sortKey]: DATA_KEY_SK,
            key_version: version,
            wrapped_key: Buffer.from(wrapped).toString('base64'),
            created_at: new Date(this.now()).toISOString(),
          },
          // Either the user has no KEY item, or it is erased at exactly the version we read. The version check
          // stops a slow writer from reusing a version that another container created and that was since erased.
          ConditionExpression:
            'attribute_not_exists(#pk) OR (attribute_not_exists(wrapped_key) AND key_version = :previous)',
          ExpressionAttributeNames: { '#pk': TABLE_KEYS.partitionKey },
          ExpressionAttributeValues: { ':previous': previous },
        }),
      );
    } catch (error) {
      key.fill(0);
      if (error instanceof ConditionalCheckFailedException) return null;
      throw dynamoFailure(error);
    }
    return { version, key };
  }
}
