import { createCipheriv, createDecipheriv, randomBytes, randomUUID } from 'node:crypto';
import { mkdir, readFile, writeFile } from 'node:fs/promises';
import { createServer, type IncomingMessage, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { join } from 'node:path';
import { pathToFileURL } from 'node:url';

/**
 * A small KMS-compatible endpoint for the local stack and the integration tests: the AWS JSON 1.1 protocol
 * (`POST /`, `X-Amz-Target: TrentService.<Op>`), with GenerateDataKey, Decrypt, Encrypt and DescribeKey over one
 * symmetric root key. Errors are HTTP 400 with `{"__type": "...", "message": "..."}` as real KMS sends them, so
 * `@aws-sdk/client-kms` raises its own exception classes.
 *
 * Like KMS, the encryption context is bound to the ciphertext as AAD (in canonical, sorted order): Decrypt with
 * a different or missing context fails with InvalidCiphertextException. The root key (256 bits, random) is kept
 * in `<dataDir>/kms-root-key.json` (mode 0600), created on first start and reused afterwards. SigV4 signatures
 * are accepted and ignored. Not a security boundary: a local stand-in only.
 *
 * Blob layout: `0x01 | keyIdLength (1 byte) | keyId (utf8) | iv (12) | ciphertext | tag (16)`.
 */
export interface KmsServer {
  endpoint: string;
  port: number;
  keyId: string;
  keyArn: string;
  alias: string;
  /** Requests served per operation (including failed ones), e.g. `{ Decrypt: 3, GenerateDataKey: 1 }`. */
  counts(): Record<string, number>;
  resetCounts(): void;
  stop(): Promise<void>;
}

export const LOCAL_KMS_ALIAS = 'alias/tally-data-keys';
const ACCOUNT = '000000000000';
const ROOT_KEY_FILE = 'kms-root-key.json';
const BLOB_VERSION = 1;
const IV_BYTES = 12;
const TAG_BYTES = 16;
const MAX_BODY_BYTES = 256 * 1024;
const CONTENT_TYPE = 'application/x-amz-json-1.1';

interface RootKeyFile {
  keyId: string;
  key: string;
  createdAt: string;
}

class KmsError extends Error {
  constructor(
    readonly type: string,
    message: string,
    readonly status = 400,
  ) {
    super(message);
  }
}

async function loadOrCreateRootKey(dataDir: string): Promise<{ keyId: string; key: Buffer; createdAt: Date }> {
  await mkdir(dataDir, { recursive: true });
  const file = join(dataDir, ROOT_KEY_FILE);
  const fresh: RootKeyFile = { keyId: randomUUID(), key: randomBytes(32).toString('base64'), createdAt: new Date().toISOString() };
  try {
    await writeFile(file, JSON.stringify(fresh, null, 2) + '\n', { mode: 0o600, flag: 'wx' });
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code !== 'EEXIST') throw error;
  }
  const stored = JSON.parse(await readFile(file, 'utf8')) as Partial<RootKeyFile>;
  const key = typeof stored.key === 'string' ? Buffer.from(stored.key, 'base64') : Buffer.alloc(0);
  if (typeof stored.keyId !== 'string' || stored.keyId === '' || key.length !== 32) {
    throw new Error(`${file} is not a valid local KMS root key file`);
  }
  return { keyId: stored.keyId, key, createdAt: new Date(stored.createdAt ?? Date.now()) };
}

function readBody(req: IncomingMessage): Promise<Buffer> {
  return new Promise((resolve, reject) => {
    const chunks: Buffer[] = [];
    let size = 0;
    req.on('data', (chunk: Buffer) => {
      size += chunk.length;
      if (size > MAX_BODY_BYTES) {
        reject(new KmsError('ValidationException', 'Request body too large'));
        req.destroy();
        return;
      }
      chunks.push(chunk);
    });
    req.on('end', () => resolve(Buffer.concat(chunks)));
    req.on('error', reject);
  });
}

type Json = Record<string, unknown>;

/** The encryption context as canonical AAD: its entries sorted by key, as a JSON array of pairs. */
function contextAad(context: unknown): Buffer {
  if (context === undefined || context === null) return Buffer.from('[]');
  if (typeof context !== 'object' || Array.isArray(context)) {
    throw new KmsError('ValidationException', 'EncryptionContext must be a map of strings');
  }
  const entries = Object.entries(context as Json);
  for (const [, value] of entries) {
    if (typeof value !== 'string') throw new KmsError('ValidationException', 'EncryptionContext values must be strings');
  }
  entries.sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0));
  return Buffer.from(JSON.stringify(entries), 'utf8');
}

function base64Field(body: Json, name: string, required: boolean): Buffer | undefined {
  const value = body[name];
  if (value === undefined) {
    if (required) throw new KmsError('ValidationException', `1 validation error detected: ${name} must not be null`);
    return undefined;
  }
  if (typeof value !== 'string') throw new KmsError('SerializationException', `${name} must be a base64 string`);
  return Buffer.from(value, 'base64');
}

export async function startKmsServer(options: { dataDir: string; port?: number; region?: string }): Promise<KmsServer> {
  const region = options.region ?? 'us-east-1';
  const root = await loadOrCreateRootKey(options.dataDir);
  const keyArn = `arn:aws:kms:${region}:${ACCOUNT}:key/${root.keyId}`;
  const aliasArn = `arn:aws:kms:${region}:${ACCOUNT}:${LOCAL_KMS_ALIAS}`;
  const names = new Set([root.keyId, keyArn, LOCAL_KMS_ALIAS, aliasArn]);
  const requestCounts: Record<string, number> = {};

  const resolveKey = (keyId: unknown): string => {
    if (typeof keyId !== 'string' || keyId === '') {
      throw new KmsError('ValidationException', '1 validation error detected: KeyId must not be null');
    }
    if (!names.has(keyId)) throw new KmsError('NotFoundException', `Key '${keyId}' does not exist`);
    return root.keyId;
  };

  const wrap = (plaintext: Buffer, context: unknown): Buffer => {
    const aad = contextAad(context);
    const id = Buffer.from(root.keyId, 'utf8');
    const header = Buffer.concat([Buffer.from([BLOB_VERSION, id.length]), id]);
    const iv = randomBytes(IV_BYTES);
    const cipher = createCipheriv('aes-256-gcm', root.key, iv, { authTagLength: TAG_BYTES });
    cipher.setAAD(Buffer.concat([header, aad]));
    return Buffer.concat([header, iv, cipher.update(plaintext), cipher.final(), cipher.getAuthTag()]);
  };

  const unwrap = (blob: Buffer, context: unknown): { keyId: string; plaintext: Buffer } => {
    const invalid = () => new KmsError('InvalidCiphertextException', 'The ciphertext is invalid or was encrypted under another context');
    if (blob.length < 2 || blob[0] !== BLOB_VERSION) throw invalid();
    const idLength = blob[1] ?? 0;
    const headerLength = 2 + idLength;
    if (blob.length < headerLength + IV_BYTES + TAG_BYTES) throw invalid();
    const keyId = blob.subarray(2, headerLength).toString('utf8');
    if (keyId !== root.keyId) throw invalid();
    const iv = blob.subarray(headerLength, headerLength + IV_BYTES);
    const body = blob.subarray(headerLength + IV_BYTES, blob.length - TAG_BYTES);
    const tag = blob.subarray(blob.length - TAG_BYTES);
    try {
      const decipher = createDecipheriv('aes-256-gcm', root.key, iv, { authTagLength: TAG_BYTES });
      decipher.setAAD(Buffer.concat([blob.subarray(0, headerLength), contextAad(context)]));
      decipher.setAuthTag(tag);
      return { keyId, plaintext: Buffer.concat([decipher.update(body), decipher.final()]) };
    } catch (error) {
      if (error instanceof KmsError) throw error;
      throw invalid();
    }
  };

  const operations: Record<string, (body: Json) => Json> = {
    GenerateDataKey(body) {
      resolveKey(body.KeyId);
      const { KeySpec: spec, NumberOfBytes: count } = body;
      if ((spec === undefined) === (count === undefined)) {
        throw new KmsError('ValidationException', 'Specify exactly one of KeySpec or NumberOfBytes');
      }
      let bytes: number;
      if (spec !== undefined) {
        if (spec === 'AES_256') bytes = 32;
        else if (spec === 'AES_128') bytes = 16;
        else throw new KmsError('ValidationException', `KeySpec '${String(spec)}' is not supported`);
      } else {
        if (typeof count !== 'number' || !Number.isInteger(count) || count < 1 || count > 1024) {
          throw new KmsError('ValidationException', 'NumberOfBytes must be between 1 and 1024');
        }
        bytes = count;
      }
      const plaintext = randomBytes(bytes);
      return {
        CiphertextBlob: wrap(plaintext, body.EncryptionContext).toString('base64'),
        Plaintext: plaintext.toString('base64'),
        KeyId: keyArn,
      };
    },
    Encrypt(body) {
      resolveKey(body.KeyId);
      const plaintext = base64Field(body, 'Plaintext', true) ?? Buffer.alloc(0);
      if (plaintext.length < 1 || plaintext.length > 4096) {
        throw new KmsError('ValidationException', 'Plaintext must be between 1 and 4096 bytes');
      }
      return {
        CiphertextBlob: wrap(plaintext, body.EncryptionContext).toString('base64'),
        KeyId: keyArn,
        EncryptionAlgorithm: 'SYMMETRIC_DEFAULT',
      };
    },
    Decrypt(body) {
      const blob = base64Field(body, 'CiphertextBlob', true) ?? Buffer.alloc(0);
      const requested = body.KeyId === undefined ? undefined : resolveKeyForDecrypt(body.KeyId);
      const { keyId, plaintext } = unwrap(blob, body.EncryptionContext);
      if (requested !== undefined && requested !== keyId) {
        throw new KmsError('IncorrectKeyException', 'The key ID in the request does not identify the key that encrypted the ciphertext');
      }
      return { KeyId: keyArn, Plaintext: plaintext.toString('base64'), EncryptionAlgorithm: 'SYMMETRIC_DEFAULT' };
    },
    DescribeKey(body) {
      resolveKey(body.KeyId);
      return {
        KeyMetadata: {
          AWSAccountId: ACCOUNT,
          KeyId: root.keyId,
          Arn: keyArn,
          CreationDate: Math.floor(root.createdAt.getTime() / 1000),
          Enabled: true,
          Description: 'Tally local data-key root (local stand-in for KMS)',
          KeyUsage: 'ENCRYPT_DECRYPT',
          KeyState: 'Enabled',
          Origin: 'AWS_KMS',
          KeyManager: 'CUSTOMER',
          CustomerMasterKeySpec: 'SYMMETRIC_DEFAULT',
          KeySpec: 'SYMMETRIC_DEFAULT',
          EncryptionAlgorithms: ['SYMMETRIC_DEFAULT'],
          MultiRegion: false,
        },
      };
    },
  };

  /** For Decrypt a KeyId that names no key of ours is an IncorrectKeyException, as the blob names its key. */
  function resolveKeyForDecrypt(keyId: unknown): string {
    if (typeof keyId === 'string' && names.has(keyId)) return root.keyId;
    throw new KmsError('IncorrectKeyException', 'The key ID in the request does not identify the key that encrypted the ciphertext');
  }

  const send = (res: ServerResponse, status: number, payload: Json): void => {
    const text = JSON.stringify(payload);
    res.writeHead(status, {
      'content-type': CONTENT_TYPE,
      'content-length': Buffer.byteLength(text),
      'x-amzn-requestid': randomUUID(),
    });
    res.end(text);
  };

  const handle = async (req: IncomingMessage, res: ServerResponse): Promise<void> => {
    let operation = 'Unknown';
    try {
      if (req.method !== 'POST') throw new KmsError('UnsupportedOperationException', 'Only POST / is supported');
      const target = String(req.headers['x-amz-target'] ?? '');
      operation = target.startsWith('TrentService.') ? target.slice('TrentService.'.length) : target || 'Unknown';
      requestCounts[operation] = (requestCounts[operation] ?? 0) + 1;
      const raw = await readBody(req);
      const run = Object.hasOwn(operations, operation) && target.startsWith('TrentService.') ? operations[operation] : undefined;
      if (!run) throw new KmsError('UnsupportedOperationException', `Operation ${operation || '(none)'} is not supported`);
      let body: unknown;
      try {
        body = raw.length === 0 ? {} : JSON.parse(raw.toString('utf8'));
      } catch {
        throw new KmsError('SerializationException', 'The request body is not valid JSON');
      }
      if (typeof body !== 'object' || body === null || Array.isArray(body)) {
        throw new KmsError('SerializationException', 'The request body must be a JSON object');
      }
      send(res, 200, run(body as Json));
    } catch (error) {
      if (error instanceof KmsError) send(res, error.status, { __type: error.type, message: error.message });
      else send(res, 500, { __type: 'KMSInternalException', message: 'Internal error' });
    }
  };

  const server = createServer((req, res) => {
    void handle(req, res);
  });
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(options.port ?? 0, '127.0.0.1', () => {
      server.off('error', reject);
      resolve();
    });
  });
  const port = (server.address() as AddressInfo).port;

  return {
    endpoint: `http://127.0.0.1:${port}`,
    port,
    keyId: root.keyId,
    keyArn,
    alias: LOCAL_KMS_ALIAS,
    counts: () => ({ ...requestCounts }),
    resetCounts: () => {
      for (const name of Object.keys(requestCounts)) delete requestCounts[name];
    },
    stop: () =>
      new Promise<void>((resolve, reject) => {
        server.close((error) => (error ? reject(error) : resolve()));
        server.closeAllConnections();
      }),
  };
}

// `tsx local/kms-server.ts [dataDir] [port]` runs it on its own.
if (process.argv[1] && import.meta.url === pathToFileURL(process.argv[1]).href) {
  const server = await startKmsServer({ dataDir: process.argv[2] ?? '.local', port: Number(process.argv[3] ?? 0) || undefined });
  process.stdout.write(`local KMS on ${server.endpoint} (${server.alias})\n`);
  const stop = () => void server.stop().then(() => process.exit(0));
  process.on('SIGINT', stop);
  process.on('SIGTERM', stop);
}
