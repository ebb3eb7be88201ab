/**
 * The registry's last step of a registration, marking it published
 * (name-registry.ts), taken off the answer's path. The mark is a durable
 * write (a commit, an fsync) the adapter need not wait for: a crash before it
 * only leaves the row pending, and the pending sweep puts the same records
 * again (name-publisher.ts; harmless, the ring keeps the newer of two
 * bootstrap-signed values). So the bootstrap answers REGISTERED first, and the
 * marks of MARK_BATCH_MS are written together, in one transaction where the
 * registry has one: one commit for a burst of registrations, and none on the
 * answer's path even with a registry that writes synchronously. Marks that
 * fail (the registry unreachable) are tried again, the sweep being the
 * backstop.
 */
import type { Clock, Timer } from '../util/clock.ts';
import type { Logger } from '../util/log.ts';
import type { NameRegistry } from './name-registry.ts';

/** How long answered registrations wait to be marked published together (ms). */
export const MARK_BATCH_MS = 200;
/** After a failed batch, when its marks are tried again (ms); how many wait at most. */
const MARK_RETRY_MS = 1000;
const MAX_MARKS = 10_000;

export class PublishedMarks {
  /** Location published, by name: a later registration of the name replaces it (only its mark counts). */
  private readonly waiting = new Map<string, Uint8Array>();
  private timer: Timer | undefined;

  constructor(
    private readonly names: NameRegistry,
    private readonly clock: Clock,
    private readonly log: Logger,
    private readonly onMarked: (name: string) => void | Promise<void>,
  ) {}

  add(name: string, location: Uint8Array): void {
    this.waiting.set(name, location);
    this.schedule(MARK_BATCH_MS);
  }

  /** Write the marks waiting; `retry` false: before the registry closes (what fails is left to the sweep). */
  async flush(retry = true): Promise<void> {
    this.timer?.cancel();
    this.timer = undefined;
    const batch = [...this.waiting].map(([name, location]) => ({ name, location }));
    this.waiting.clear();
    if (batch.length === 0) return;
    try {
      const now = this.clock.wallNow();
      if (this.names.markPublishedMany) await this.names.markPublishedMany(batch, now);
      else for (const b of batch) await this.names.markPublished(b.name, b.location, now);
      for (const b of batch) await this.onMarked(b.name);
    } catch (e) {
      this.log.warn({ users: batch.length, err: (e as Error).message }, 'registrations not marked published yet');
      if (!retry) return;
      for (const b of batch)
        if (!this.waiting.has(b.name) && this.waiting.size < MAX_MARKS) this.waiting.set(b.name, b.location);
      this.schedule(MARK_RETRY_MS);
    }
  }

  private schedule(ms: number): void {
    this.timer ??= this.clock.setTimer(ms, () => {
      this.timer = undefined;
      void this.flush();
    });
  }
}
