/**
 * The whole-suite guard that no log line holds personal data or a secret. Every integration file runs with
 * the logger at DEBUG; the structured (JSON) lines are captured instead of printed, and every name and bearer
 * token a test sends through `TestStack.request` is remembered. After each file, no captured line may contain
 * any of them.
 */
const secrets = new Set<string>();
const names = new Set<string>();
const captured: string[] = [];

export function rememberSecret(value: string | undefined): void {
  const trimmed = value?.trim();
  if (trimmed && trimmed.length >= 4) secrets.add(trimmed);
}

/** Names in a request body (any `full_name`, at any depth) and the bearer token of its headers. */
export function rememberRequestSecrets(body: unknown, headers: Record<string, string>): void {
  const visit = (value: unknown): void => {
    if (Array.isArray(value)) value.forEach(visit);
    else if (value && typeof value === 'object') {
      for (const [key, inner] of Object.entries(value)) {
        if (key === 'full_name' && typeof inner === 'string') {
          rememberSecret(inner);
          if (inner.trim().length >= 4) names.add(inner.trim());
        }
        else visit(inner);
      }
    }
  };
  visit(body);
  const auth = Object.entries(headers).find(([k]) => k.toLowerCase() === 'authorization')?.[1];
  const token = auth?.replace(/^Bearer\s+/i, '');
  if (token && token.length > 20) rememberSecret(token);
}

/** Powertools writes INFO/DEBUG to stdout and WARN/ERROR to stderr: both are captured. */
export function installLogCapture(): void {
  for (const stream of [process.stdout, process.stderr]) {
    const original = stream.write.bind(stream) as (chunk: unknown, ...rest: unknown[]) => boolean;
    stream.write = ((chunk: unknown, ...rest: unknown[]): boolean => {
      const text = typeof chunk === 'string' ? chunk : Buffer.isBuffer(chunk) ? chunk.toString('utf8') : String(chunk);
      if (text.startsWith('{"level"')) {
        captured.push(text);
        return true;
      }
      return original(chunk, ...rest);
    }) as typeof stream.write;
  }
}

/** Log lines that contain a remembered name or token (empty when the file logged nothing it should not). */
export function leaks(): Array<{ secret: string; line: string }> {
  const found: Array<{ secret: string; line: string }> = [];
  for (const line of captured) {
    for (const secret of secrets) {
      if (line.includes(secret) || line.includes(JSON.stringify(secret).slice(1, -1))) found.push({ secret: `${secret.slice(0, 3)}…`, line: line.slice(0, 300) });
    }
  }
  return found;
}

export const capturedLineCount = (): number => captured.length;

/** Every name sent so far whose plaintext (or base64 of it) appears in `text`. */
export function namesIn(text: string): string[] {
  return [...names].filter(
    (name) => text.includes(name) || text.includes(Buffer.from(name).toString('base64')) || text.includes(JSON.stringify(name).slice(1, -1)),
  );
}
