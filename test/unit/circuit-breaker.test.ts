import { describe, expect, it } from 'vitest';
import fc from 'fast-check';
import { CircuitBreaker } from '../../lambdas/core/circuit-breaker.ts';

function breakerAt(openMs = 1_000) {
  const clock = { now: 0 };
  const breaker = new CircuitBreaker({ openMs, now: () => clock.now });
  return { clock, breaker };
}

describe('CircuitBreaker', () => {
  it('starts closed and lets every call through while calls succeed', () => {
    const { breaker } = breakerAt();
    for (let i = 0; i < 5; i += 1) {
      expect(breaker.tryAcquire()).toBe(true);
      expect(breaker.recordSuccess()).toBe('none');
    }
    expect(breaker.state).toBe('closed');
  });

  it('opens on the first failure and reports that transition once, not for later failures', () => {
    const { breaker } = breakerAt();
    expect(breaker.recordFailure()).toBe('opened');
    expect(breaker.state).toBe('open');
    expect(breaker.recordFailure()).toBe('none');
    expect(breaker.recordFailure()).toBe('none');
  });

  it('refuses every call while open, until openMs has passed', () => {
    const { clock, breaker } = breakerAt(1_000);
    breaker.recordFailure();
    clock.now = 999;
    expect(breaker.tryAcquire()).toBe(false);
    expect(breaker.state).toBe('open');
    clock.now = 1_000;
    expect(breaker.state).toBe('half-open');
  });

  it('lets exactly one probe through when half-open; the others are refused until it reports', () => {
    const { clock, breaker } = breakerAt(1_000);
    breaker.recordFailure();
    clock.now = 1_000;
    expect(breaker.tryAcquire()).toBe(true);
    expect(breaker.tryAcquire()).toBe(false);
    expect(breaker.tryAcquire()).toBe(false);
    expect(breaker.state).toBe('half-open');
  });

  it('closes when the probe succeeds, and reports that it closed', () => {
    const { clock, breaker } = breakerAt(1_000);
    breaker.recordFailure();
    clock.now = 1_000;
    breaker.tryAcquire();
    expect(breaker.recordSuccess()).toBe('closed');
    expect(breaker.state).toBe('closed');
    expect(breaker.tryAcquire()).toBe(true);
    expect(breaker.tryAcquire()).toBe(true);
  });

  it('re-opens for another full openMs when the probe fails, reported as reopened (not a new opening)', () => {
    const { clock, breaker } = breakerAt(1_000);
    breaker.recordFailure();
    clock.now = 1_500;
    breaker.tryAcquire();
    expect(breaker.recordFailure()).toBe('reopened');
    clock.now = 2_499;
    expect(breaker.tryAcquire()).toBe(false);
    clock.now = 2_500;
    expect(breaker.tryAcquire()).toBe(true);
  });

  it('a failure reported while already open does not extend the opening', () => {
    const { clock, breaker } = breakerAt(1_000);
    breaker.recordFailure();
    clock.now = 900;
    breaker.recordFailure();
    clock.now = 1_000;
    expect(breaker.tryAcquire()).toBe(true);
  });

  it('a late success while open does not close it (only the probe can)', () => {
    const { breaker } = breakerAt(1_000);
    breaker.recordFailure();
    expect(breaker.recordSuccess()).toBe('none');
    expect(breaker.state).toBe('open');
    expect(breaker.tryAcquire()).toBe(false);
  });

  it('a probe that never reports back is given up after another openMs, so it cannot stay half-open forever', () => {
    const { clock, breaker } = breakerAt(1_000);
    breaker.recordFailure();
    clock.now = 1_000;
    expect(breaker.tryAcquire()).toBe(true);
    clock.now = 1_999;
    expect(breaker.tryAcquire()).toBe(false);
    clock.now = 2_000;
    expect(breaker.tryAcquire()).toBe(true);
  });

  it('rejects a negative or non-finite openMs', () => {
    expect(() => new CircuitBreaker({ openMs: -1 })).toThrow();
    expect(() => new CircuitBreaker({ openMs: Number.NaN })).toThrow();
  });

  it('never lets a call through while open, and never more than one probe per opening (any sequence of events)', () => {
    type Step = { kind: 'acquire' } | { kind: 'success' } | { kind: 'failure' } | { kind: 'tick'; ms: number };
    const step: fc.Arbitrary<Step> = fc.oneof(
      fc.constant<Step>({ kind: 'acquire' }),
      fc.constant<Step>({ kind: 'success' }),
      fc.constant<Step>({ kind: 'failure' }),
      fc.integer({ min: 0, max: 600 }).map<Step>((ms) => ({ kind: 'tick', ms })),
    );
    fc.assert(
      fc.property(fc.array(step, { maxLength: 60 }), (steps) => {
        const { clock, breaker } = breakerAt(1_000);
        let openedAt: number | undefined;
        let probesSinceOpen = 0;
        for (const s of steps) {
          if (s.kind === 'tick') clock.now += s.ms;
          else if (s.kind === 'failure') {
            const outcome = breaker.recordFailure();
            if (outcome !== 'none') {
              openedAt = clock.now;
              probesSinceOpen = 0;
            }
          } else if (s.kind === 'success') {
            if (breaker.recordSuccess() === 'closed') openedAt = undefined;
          } else {
            const allowed = breaker.tryAcquire();
            if (openedAt !== undefined && allowed) {
              expect(clock.now - openedAt).toBeGreaterThanOrEqual(1_000);
              probesSinceOpen += 1;
              // A second probe only after the first has been outstanding for another openMs.
              expect(probesSinceOpen).toBeLessThanOrEqual(1 + Math.floor((clock.now - openedAt - 1_000) / 1_000));
            }
            if (openedAt === undefined) expect(allowed).toBe(true);
          }
        }
      }),
    );
  });
});
