import { appendFile, mkdir } from 'node:fs/promises';
import { dirname } from 'node:path';
import { EventBridgeClient, PutEventsCommand, type PutEventsRequestEntry } from '@aws-sdk/client-eventbridge';
import type { DomainEvent } from '../core/aggregate-delta.ts';
import { config, type Config } from './config.ts';

/**
 * Domain events for downstream systems (credit scoring, alerting), off the request path. Each event's `id` is
 * unique per change (the stream eventID), so consumers de-duplicate redeliveries on it. No personal data.
 */
export interface DomainEventPublisher {
  publish(events: DomainEvent[]): Promise<void>;
}

export const EVENT_SOURCE = 'tally.transactions';
const PUT_EVENTS_MAX_ENTRIES = 10;

/** The EventBridge envelope's detail: the event itself (id, type, user_id, transaction_id, old, new …). */
const entryOf = (event: DomainEvent, eventBusName: string): PutEventsRequestEntry => ({
  EventBusName: eventBusName,
  Source: EVENT_SOURCE,
  DetailType: event.type,
  Detail: JSON.stringify(event),
  Time: new Date(event.occurred_at),
});

export class PublishError extends Error {
  constructor(message: string, readonly failedEntryCount: number) {
    super(message);
    this.name = 'PublishError';
  }
}

export class EventBridgePublisher implements DomainEventPublisher {
  constructor(
    private readonly client: EventBridgeClient,
    private readonly eventBusName: string,
  ) {}

  async publish(events: DomainEvent[]): Promise<void> {
    for (let i = 0; i < events.length; i += PUT_EVENTS_MAX_ENTRIES) {
      const chunk = events.slice(i, i + PUT_EVENTS_MAX_ENTRIES);
      const out = await this.client.send(new PutEventsCommand({ Entries: chunk.map((e) => entryOf(e, this.eventBusName)) }));
      const failed = out.FailedEntryCount ?? 0;
      if (failed > 0) {
        const codes = [...new Set((out.Entries ?? []).map((e) => e.ErrorCode).filter(Boolean))].join(', ');
        throw new PublishError(`EventBridge rejected ${failed} of ${chunk.length} events (${codes || 'no error code'})`, failed);
      }
    }
  }
}

/** Local stand-in: one JSON line per event, in the EventBridge envelope's shape. */
export class FileEventPublisher implements DomainEventPublisher {
  constructor(private readonly path: string) {}

  async publish(events: DomainEvent[]): Promise<void> {
    if (events.length === 0) return;
    await mkdir(dirname(this.path), { recursive: true });
    const lines = events.map((e) =>
      JSON.stringify({ id: e.id, source: EVENT_SOURCE, 'detail-type': e.type, time: e.occurred_at, detail: e }),
    );
    await appendFile(this.path, lines.join('\n') + '\n', 'utf8');
  }
}

export class NoopEventPublisher implements DomainEventPublisher {
  private warned = false;
  constructor(private readonly warn: (message: string) => void = (m) => console.warn(m)) {}

  async publish(): Promise<void> {
    if (this.warned) return;
    this.warned = true;
    this.warn('Domain events are not published: neither EVENT_BUS_NAME nor EVENTS_FILE is set');
  }
}

/** EventBridge when `EVENT_BUS_NAME` is set, else the file when `EVENTS_FILE` is set, else a no-op. */
export function createDomainEventPublisher(
  cfg: Pick<Config, 'eventBusName' | 'eventsFile' | 'region'> = config(),
  options: { eventBridge?: () => EventBridgeClient; warn?: (message: string) => void } = {},
): DomainEventPublisher {
  if (cfg.eventBusName) {
    return new EventBridgePublisher(options.eventBridge?.() ?? new EventBridgeClient({ region: cfg.region }), cfg.eventBusName);
  }
  if (cfg.eventsFile) return new FileEventPublisher(cfg.eventsFile);
  return new NoopEventPublisher(options.warn);
}
