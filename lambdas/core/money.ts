/**
 * Money is integer minor units (cents) from the edge inward. Parsing goes from the *text* of the amount —
 * a decimal string, or the shortest round-trip text of a JSON number — straight to an integer, so no value
 * ever passes through floating-point arithmetic.
 */
export const MAX_AMOUNT_MINOR = 100_000_000_000; // 1,000,000,000.00

export type AmountResult = { ok: true; minor: number } | { ok: false; message: string };

const DECIMAL = /^(\d+)(?:\.(\d+))?$/;

/** Parses `125.5`, `"125.50"`, `1e2` into minor units, or says exactly what is wrong. */
export function parseAmount(input: unknown): AmountResult {
  let text: string;
  if (typeof input === 'number') {
    if (!Number.isFinite(input)) return { ok: false, message: 'must be a finite number' };
    if (input <= 0) return { ok: false, message: 'must be greater than 0' };
    // The shortest text that round-trips to the same double: exactly what the client wrote for any amount
    // that has at most 15 significant digits, which covers every valid amount.
    text = String(input);
    if (text.includes('e')) {
      return input < 1
        ? { ok: false, message: 'must have at most 2 fraction digits' }
        : { ok: false, message: 'must be at most 1000000000.00' };
    }
  } else if (typeof input === 'string') {
    text = input;
    if (/^-/.test(text) && DECIMAL.test(text.slice(1))) return { ok: false, message: 'must be greater than 0' };
  } else {
    return { ok: false, message: 'must be a number or a decimal string such as "125.50"' };
  }
  const match = DECIMAL.exec(text);
  if (!match) return { ok: false, message: 'must be a number or a decimal string such as "125.50"' };
  const whole = match[1] ?? '';
  const fraction = match[2] ?? '';
  if (fraction.length > 2) return { ok: false, message: 'must have at most 2 fraction digits' };
  const wholeDigits = whole.replace(/^0+(?=\d)/, '');
  if (wholeDigits.length > 10) return { ok: false, message: 'must be at most 1000000000.00' };
  const minor = Number(wholeDigits) * 100 + Number(fraction.padEnd(2, '0'));
  if (minor <= 0) return { ok: false, message: 'must be greater than 0' };
  if (minor > MAX_AMOUNT_MINOR) return { ok: false, message: 'must be at most 1000000000.00' };
  return { ok: true, minor };
}

/** Formats minor units as a decimal string with exactly 2 fraction digits; negatives keep their sign. */
export function formatMinor(minor: bigint | number): string {
  const value = typeof minor === 'bigint' ? minor : BigInt(minor);
  if (typeof minor === 'number' && !Number.isSafeInteger(minor)) throw new RangeError('minor units must be a safe integer');
  const negative = value < 0n;
  const abs = negative ? -value : value;
  const whole = abs / 100n;
  const cents = abs % 100n;
  return `${negative ? '-' : ''}${whole}.${cents.toString().padStart(2, '0')}`;
}

/** `numerator / denominator` rounded half-to-even, in integers. `denominator` must be positive. */
export function divideHalfEven(numerator: bigint, denominator: bigint): bigint {
  if (denominator <= 0n) throw new RangeError('denominator must be positive');
  const negative = numerator < 0n;
  const n = negative ? -numerator : numerator;
  let quotient = n / denominator;
  const remainder = n % denominator;
  const twice = remainder * 2n;
  if (twice > denominator || (twice === denominator && quotient % 2n === 1n)) quotient += 1n;
  return negative ? -quotient : quotient;
}
