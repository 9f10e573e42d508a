import type { DataKeyStore } from './data-keys.ts';
import { openField, sealField, storedKeyVersion } from './field-cipher.ts';

const FIELD = 'full_name';

/**
 * Encrypts and decrypts a transaction's `full_name` under the user's data key, bound to the user, the
 * transaction and the field. `decrypt` returns `null` when the user's key was destroyed (erasure) and throws
 * `FieldDecryptionError` when the ciphertext was tampered with or moved from another row.
 */
export class NameCipher {
  private readonly keys: DataKeyStore;

  constructor(keys: DataKeyStore) {
    this.keys = keys;
  }

  async encrypt(userId: string, transactionId: string, fullName: string): Promise<{ ciphertext: string; keyVersion: number }> {
    const { version, key } = await this.keys.keyForWrite(userId);
    return { ciphertext: sealField(key, version, { userId, transactionId, field: FIELD }, fullName), keyVersion: version };
  }

  async decrypt(userId: string, transactionId: string, ciphertext: string): Promise<string | null> {
    const version = storedKeyVersion(ciphertext);
    const dataKey = await this.keys.keyForRead(userId, version);
    if (dataKey === null) return null;
    return openField(dataKey.key, { userId, transactionId, field: FIELD }, ciphertext);
  }
}
