import type { DataKeyStore } from './data-keys.ts';
import type { WriteNotifier } from './transaction-service.ts';

/**
 * Erasure of a user's personal data (API.md, "Erasure of personal data"). Destroying the data key makes
 * every `full_name_ct` of the user unreadable in the table, in cached pages (which hold only ciphertext) and
 * in backups once the backup ages out. Bumping the cache version drops cached pages at once.
 */
export class PersonalDataService {
  constructor(private readonly deps: { keys: Pick<DataKeyStore, 'erase'>; cache: WriteNotifier }) {}

  async erase(userId: string): Promise<void> {
    await this.deps.keys.erase(userId);
    await this.deps.cache.bumpUserVersion(userId);
  }
}
