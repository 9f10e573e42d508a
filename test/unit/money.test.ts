import { describe, expect, it } from 'vitest';
import fc from 'fast-check';
import { divideHalfEven, formatMinor, MAX_AMOUNT_MINOR, parseAmount } from '../../lambdas/core/money.ts';

const minor = (input: unknown) => {
  const r = parseAmount(input);
  if (!r.ok) throw new Error(r.message);
  return r.minor;
};
const message = (input: unknown) => {
  const r = parseAmount(input);
  return r.ok ? undefined : r.message;
};

describe('parseAmount', () => {
  it.each([
    [0.1, 10],
    ['0.1', 10],
    [1e2, 10_000],
    [125.5, 12_550],
    ['125.50', 12_550],
    ['007.10', 710],
    [0.01, 1],
    [19.99, 1_999],
    [1_000_000_000, MAX_AMOUNT_MINOR],
    ['1000000000.00', MAX_AMOUNT_MINOR],
    [4.35, 435],
    [1.005e2, 10_050],
  ])('%j is %i minor units', (input, expected) => {
    expect(minor(input)).toBe(expected);
  });

  it.each([
    ['10.005', 'must have at most 2 fraction digits'],
    [10.005, 'must have at most 2 fraction digits'],
    [1e-7, 'must have at most 2 fraction digits'],
    [0, 'must be greater than 0'],
    ['0.00', 'must be greater than 0'],
    [-5, 'must be greater than 0'],
    ['-5.00', 'must be greater than 0'],
    [1_000_000_000.01, 'must be at most 1000000000.00'],
    ['99999999999', 'must be at most 1000000000.00'],
    [1e21, 'must be at most 1000000000.00'],
    ['1e2', 'must be a number or a decimal string such as "125.50"'],
    ['ten', 'must be a number or a decimal string such as "125.50"'],
    ['', 'must be a number or a decimal string such as "125.50"'],
    [' 5', 'must be a number or a decimal string such as "125.50"'],
    ['5.', 'must be a number or a decimal string such as "125.50"'],
    ['+5', 'must be a number or a decimal string such as "125.50"'],
    [Number.NaN, 'must be a finite number'],
    [Number.POSITIVE_INFINITY, 'must be a finite number'],
    [true, 'must be a number or a decimal string such as "125.50"'],
    [null, 'must be a number or a decimal string such as "125.50"'],
  ])('%j is rejected: %s', (input, expected) => {
    expect(message(input)).toBe(expected);
  });

  it('sums 0.1 + 0.2 exactly, where floats would give 0.30000000000000004', () => {
    expect(0.1 + 0.2).not.toBe(0.3);
    expect(formatMinor(minor(0.1) + minor(0.2))).toBe('0.30');
  });

  it('sums a million cents exactly', () => {
    let total = 0n;
    for (let i = 0; i < 1_000_000; i++) total += BigInt(minor(0.01));
    expect(formatMinor(total)).toBe('10000.00');
  });

  it('round-trips every valid amount through formatMinor (property)', () => {
    fc.assert(
      fc.property(fc.integer({ min: 1, max: MAX_AMOUNT_MINOR }), (cents) => {
        const text = formatMinor(cents);
        expect(minor(text)).toBe(cents);
        expect(minor(Number(text))).toBe(cents);
      }),
      { numRuns: 5_000 },
    );
  });
});

describe('formatMinor', () => {
  it.each([
    [0, '0.00'],
    [1, '0.01'],
    [10, '0.10'],
    [12_550, '125.50'],
    [-1_200, '-12.00'],
    [-5, '-0.05'],
    [12345678901234567890n, '123456789012345678.90'],
  ])('%s → %s', (value, expected) => {
    expect(formatMinor(value)).toBe(expected);
  });

  it('refuses an unsafe integer rather than printing a rounded value', () => {
    expect(() => formatMinor(2 ** 53 + 1)).toThrow(RangeError);
  });
});

describe('divideHalfEven', () => {
  it.each([
    [5n, 2n, 2n],
    [7n, 2n, 4n],
    [1n, 3n, 0n],
    [2n, 3n, 1n],
    [-5n, 2n, -2n],
    [-7n, 2n, -4n],
    [10n, 4n, 2n],
    [14n, 4n, 4n],
    [0n, 9n, 0n],
  ])('%s / %s → %s', (n, d, q) => {
    expect(divideHalfEven(n, d)).toBe(q);
  });
  it('refuses a zero denominator', () => {
    expect(() => divideHalfEven(1n, 0n)).toThrow(RangeError);
  });
});
