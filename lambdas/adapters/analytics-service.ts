import { analyticsKey } from '../core/cache-keys.ts';
import type { AnalyticsResource, Period } from '../core/analytics.ts';
import type { AggregateStore } from './aggregate-store.ts';
import type { Cache } from './cache.ts';
import { dynamoFailure } from './dynamo-errors.ts';

/**
 * Analytics from the aggregates (one GetItem for all time, one Query of day items for a period), through
 * the cache. The key carries the user's version, which the aggregator bumps after applying records, so a
 * cached figure is never staler than the stream's delay plus one aggregator run.
 */
export class AnalyticsService {
  constructor(
    private readonly deps: {
      store: Pick<AggregateStore, 'analyticsFor'>;
      cache: Pick<Cache, 'userVersion' | 'getOrCompute'>;
      ttlSeconds: number;
    },
  ) {}

  async analytics(userId: string, period: Period | null): Promise<AnalyticsResource> {
    const compute = async () => {
      try {
        return (await this.deps.store.analyticsFor(userId, period)).value;
      } catch (error) {
        throw dynamoFailure(error);
      }
    };
    const version = await this.deps.cache.userVersion(userId);
    if (version === undefined) return compute();
    const { value } = await this.deps.cache.getOrCompute(analyticsKey(userId, version, period), this.deps.ttlSeconds, compute);
    return value;
  }
}
