import { afterAll, expect, inject } from 'vitest';
import { capturedLineCount, installLogCapture, leaks } from './log-guard.ts';

// Each worker sees the services started by global-setup.ts through the standard SDK variables.
Object.assign(process.env, inject('services'));

// Every integration file logs at DEBUG into a capture, and must not log a name or a token it sent.
process.env.POWERTOOLS_LOG_LEVEL ??= 'DEBUG';
installLogCapture();
afterAll(() => {
  expect(leaks(), `log lines leaking personal data or tokens (of ${capturedLineCount()} captured)`).toEqual([]);
});
