/**
 * A small circuit breaker for an optional dependency (the Redis cache).
 *
 * closed ──failure──▶ open ──`openMs` elapsed──▶ half-open (exactly one probe is let through)
 *   ▲                   ▲                              │
 *   └──── success ──────┼──────────────────────────────┤
 *                       └────────── failure ───────────┘
 *
 * While open, `tryAcquire()` is false and the caller must not touch the dependency at all. Pure: no I/O, the
 * clock is injectable. A probe that never reports back (a caller bug) is given up after another `openMs`, so the
 * circuit can never stay half-open forever.
 */
export type CircuitState = 'closed' | 'open' | 'half-open';

/** What a reported failure did: `opened` is the transition worth logging (closed → open). */
export type FailureOutcome = 'opened' | 'reopened' | 'none';
/** What a reported success did: `closed` means the dependency is back after an opening. */
export type SuccessOutcome = 'closed' | 'none';

export interface CircuitBreakerOptions {
  /** How long the circuit stays open after a failure before one probe is let through. */
  openMs: number;
  /** Milliseconds clock; `Date.now` by default. */
  now?: () => number;
}

export class CircuitBreaker {
  readonly #openMs: number;
  readonly #now: () => number;
  #state: 'closed' | 'open' | 'probing' = 'closed';
  /** When the circuit last opened (state `open`) or when the probe was let through (state `probing`). */
  #since = 0;

  constructor(options: CircuitBreakerOptions) {
    if (!Number.isFinite(options.openMs) || options.openMs < 0) throw new Error('openMs must be a non-negative number');
    this.#openMs = options.openMs;
    this.#now = options.now ?? Date.now;
  }

  get state(): CircuitState {
    if (this.#state === 'closed') return 'closed';
    if (this.#state === 'probing') return 'half-open';
    return this.#now() - this.#since >= this.#openMs ? 'half-open' : 'open';
  }

  /**
   * May the caller use the dependency now? Closed: always. Open: no, until `openMs` has passed; then this call
   * is the probe (true) and every other caller gets false until the probe reports success or failure.
   */
  tryAcquire(): boolean {
    if (this.#state === 'closed') return true;
    const elapsed = this.#now() - this.#since;
    if (elapsed < this.#openMs) return false;
    // Open long enough, or a probe that was let through long ago never reported back: let one probe through.
    this.#state = 'probing';
    this.#since = this.#now();
    return true;
  }

  recordSuccess(): SuccessOutcome {
    if (this.#state !== 'probing') return 'none'; // closed stays closed; a late success while open changes nothing
    this.#state = 'closed';
    return 'closed';
  }

  recordFailure(): FailureOutcome {
    if (this.#state === 'open') return 'none'; // already open: do not extend the opening
    const outcome: FailureOutcome = this.#state === 'closed' ? 'opened' : 'reopened';
    this.#state = 'open';
    this.#since = this.#now();
    return outcome;
  }
}
