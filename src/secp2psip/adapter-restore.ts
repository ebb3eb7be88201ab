/**
 * An adapter's users after a restart: the users whose phone bindings the registrar got back from its store
 * (bindings.sqlite) are registered with the bootstrap again, a few at a time, and their stored messages
 * collected; a user the bootstrap cannot reach now is retried with a doubling wait.
 * The SIP half (adapter.ts) owns one, starts it, tells it when a phone's own REGISTER got there first, and
 * stops its timers when the adapter closes.
 */
import type { Registrar } from '../sip/registrar.ts';
import { parseRequestUri } from '../sip/uri.ts';
import type { Clock, Timer } from '../util/clock.ts';
import { type ErrorCode, isOverlayError } from '../util/errors.ts';
import type { Logger } from '../util/log.ts';
import type { AdapterNode } from './adapter-node.ts';
import type { RegisteredPhones } from './local-phones.ts';
import { isUsableUserName } from './messages.ts';

/** Failures that say nothing about the user: the bootstrap or the ring may answer later. */
const TRANSIENT = new Set<ErrorCode>(['RPC_TIMEOUT', 'RPC_UNREACHABLE', 'TIMEOUT', 'DHT_LOOKUP_FAILED']);
/** Users registered with the bootstrap at once after a restart. */
const RESTORE_CONCURRENCY = 8;
/** Backoff of a restored user's registration with the bootstrap that failed for a transient reason (ms). */
export const RESTORE_RETRY_FIRST_MS = 1000;
export const RESTORE_RETRY_MAX_MS = 60_000;

export class UserRestore {
  private readonly node: AdapterNode<RegisteredPhones>;
  private readonly registrar: Registrar;
  private readonly phones: RegisteredPhones;
  private readonly clock: Clock;
  private readonly log: Logger;
  /** Restored users whose registration with the bootstrap is retried, with the pending timer. */
  private readonly retries = new Map<string, Timer>();
  private retriesStopped = false;

  constructor(c: { node: AdapterNode<RegisteredPhones>; clock: Clock; log: Logger }) {
    this.node = c.node;
    this.registrar = c.node.phones.registrar;
    this.phones = c.node.phones;
    this.clock = c.clock;
    this.log = c.log;
  }

  /**
   * After a restart: the users whose phones have bindings the registrar got
   * back from its store are registered with the bootstrap again (their keys
   * are on disk), so calls reach them before their phones refresh. A user the
   * bootstrap refuses keeps no bindings; one it cannot reach now keeps them
   * and is retried with a doubling wait (1 s up to 1 min) until it is
   * registered, refused, or the phone's own REGISTER gets there first.
   */
  async restoreUsers(): Promise<{ users: number; failed: number }> {
    const names = new Map<string, string[]>();
    for (const aor of this.registrar.addressesOfRecord()) {
      const u = parseRequestUri(aor);
      const name = u.ok ? (u.value.user ?? '') : '';
      if (!isUsableUserName(name)) {
        this.log.warn({ aor }, 'restored binding is not for a usable user name; dropped');
        this.registrar.removeAor(aor);
        continue;
      }
      names.set(name, [...(names.get(name) ?? []), aor]);
    }
    let failed = 0;
    const queue = [...names];
    // A few at a time: the bootstrap answers every adapter of the overlay.
    const worker = async () => {
      for (let next = queue.shift(); next; next = queue.shift()) {
        const [name, aors] = next;
        this.phones.restore(name, aors[aors.length - 1]);
        try {
          await this.node.ensureUser(name);
          // Messages stored while this adapter was down go to the phones whose bindings came back.
          this.collectRestored(name, 0);
        } catch (e) {
          failed++;
          const reason = isOverlayError(e) ? e.message : (e as Error).message;
          const transient = isOverlayError(e) && TRANSIENT.has(e.code);
          this.log.warn({ user: name, reason, kept: transient }, 'restored user not registered with the bootstrap');
          if (transient) this.retryRestore(name, aors, RESTORE_RETRY_FIRST_MS);
          else this.dropRestored(name, aors);
        }
      }
    };
    await Promise.all(Array.from({ length: RESTORE_CONCURRENCY }, worker));
    return { users: names.size - failed, failed };
  }

  /**
   * Collect the mailbox of a user whose phone binding came back with this adapter. Right after a restart the ring
   * may still be settling: a collection that could not read every slot, or whose phone took nothing, is tried
   * again a few times (2, 4, 8, 16 s later), since the phone itself may not REGISTER again for an hour.
   */
  private collectRestored(name: string, attempt: number): void {
    this.node.mailbox
      .collect(name)
      .then(
        (r) => r.incomplete === true || r.kept > 0,
        () => true,
      )
      .then((again) => {
        if (!again || attempt >= 4 || this.retriesStopped) return;
        const key = `mailbox\u0000${name}`;
        this.retries.get(key)?.cancel();
        const timer = this.clock.setTimer(2000 * 2 ** attempt, () => {
          if (this.retries.get(key) !== timer) return;
          this.retries.delete(key);
          this.collectRestored(name, attempt + 1);
        });
        this.retries.set(key, timer);
      });
  }

  private dropRestored(name: string, aors: string[]): void {
    this.node.restoring.delete(name);
    this.phones.drop(name, aors);
  }

  private retryRestore(name: string, aors: string[], waitMs: number): void {
    if (this.retriesStopped) return;
    this.retries.get(name)?.cancel();
    const timer = this.clock.setTimer(waitMs, () => {
      if (this.retries.get(name) !== timer) return;
      this.retries.delete(name);
      if (this.node.users.has(name)) {
        this.node.restoring.delete(name);
        return;
      }
      this.node.ensureUser(name).then(
        () => {
          this.node.restoring.delete(name);
          this.log.info({ user: name }, 'restored user registered with the bootstrap on retry');
        },
        (e: unknown) => {
          const transient = isOverlayError(e) && TRANSIENT.has(e.code);
          const next = Math.min(waitMs * 2, RESTORE_RETRY_MAX_MS);
          this.log.warn(
            { user: name, reason: (e as Error).message, retryInMs: transient ? next : undefined },
            'restored user still not registered with the bootstrap',
          );
          if (transient) this.retryRestore(name, aors, next);
          else this.dropRestored(name, aors);
        },
      );
    });
    this.retries.set(name, timer);
    this.node.restoring.add(name);
  }

  /** `name`'s phone registered: its restored registration needs no retry any more. */
  registered(name: string): void {
    this.retries.get(name)?.cancel();
    this.retries.delete(name);
    this.node.restoring.delete(name);
  }

  /** Cancel pending registration retries (the adapter is closing). */
  stopRetries(): void {
    this.retriesStopped = true;
    for (const t of this.retries.values()) t.cancel();
    this.retries.clear();
    this.node.restoring.clear();
  }
}
