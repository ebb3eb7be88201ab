/**
 * Test doubles for the overlay half's ports around instant messages: a phone
 * inbox that records what it was handed, and a tap on what an adapter receives.
 */
import type { Caller, Payload } from '../../src/rpc/types.ts';
import type { PhoneInbox } from '../../src/secp2psip/messaging.ts';
import type { PhonePresence } from '../../src/secp2psip/presence.ts';
import { decodeMessage, type PresenceState } from '../../src/secp2psip/messages.ts';
import type { SecTestnet } from './testnet.ts';

/** What a recipient's phones were handed, per adapter. */
export class RecordingInbox implements PhoneInbox {
  readonly got: Array<{ to: string; from: string; text: string; type: string | undefined }> = [];
  /** How many phones take each message (0: the recipient has no phone registered). */
  phones = 1;
  async deliver(to: string, from: string, body: Uint8Array, type: string | undefined): Promise<number> {
    if (this.phones > 0) this.got.push({ to, from, text: new TextDecoder().decode(body), type });
    return this.phones;
  }
}

/** Record the t of every SECP2PSIP request `a` receives (sealed ones stay SEALED: what an observer sees). */
export function tapRequests(t: SecTestnet, i: number): string[] {
  const seen: string[] = [];
  const a = t.adapters[i];
  const orig = (a as unknown as { onRequest(m: string, p: Payload, c: Caller): Payload }).onRequest.bind(a);
  a.endpoint.onRequest((m, p, c) => {
    if (m === 'secp2psip') {
      const d = decodeMessage(p);
      seen.push(d.ok ? d.value.t : 'undecodable');
    }
    return orig(m, p, c);
  });
  return seen;
}

/** The phones' side of presence at one adapter: subscriptions set by the test, NOTIFYs recorded. */
export class RecordingPresence implements PhonePresence {
  readonly subs = new Set<string>();
  readonly notified: Array<{ watcher: string; presentity: string; state: PresenceState }> = [];
  /** Whether a user has a phone: the adapter's real registrar bindings (set after the overlay is built). */
  online: (name: string) => boolean = () => false;
  subscribed(watcher: string, presentity: string): boolean {
    return this.subs.has(`${watcher}>${presentity}`);
  }
  notify(watcher: string, presentity: string, state: PresenceState): void {
    this.notified.push({ watcher, presentity, state });
  }
}
