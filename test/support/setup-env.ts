import { inject } from 'vitest';

// Each worker sees the services started by global-setup.ts through the standard SDK variables.
Object.assign(process.env, inject('services'));
process.env.POWERTOOLS_LOG_LEVEL ??= 'SILENT';
