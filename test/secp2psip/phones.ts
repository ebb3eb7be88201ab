/**
 * The small built-in user agent as phones for the end-to-end tests: one per
 * user name, each on its own UDP/TCP port on loopback (or on the address
 * given, a host of the test network), closed together.
 */
import assert from 'node:assert/strict';
import { SipElement } from '../../src/sip/element.ts';
import { TransportStack } from '../../src/sip/transport-stack.ts';
import type { Peer } from '../../src/sip/transport.ts';
import { UserAgent } from '../../src/sip/user-agent.ts';
import { SystemClock } from '../../src/util/clock.ts';

export class TestPhones {
  private readonly byName = new Map<string, UserAgent>();
  private readonly elements: SipElement[] = [];

  /** `host`: the address the phones listen on and name as their domain. */
  constructor(private readonly host = '127.0.0.1') {}

  /** A new phone for `user` (sip:<user>@<host>); it becomes the one `get(user)` returns unless `keep` is false. */
  async add(user: string, keep = true): Promise<UserAgent> {
    const transport = await TransportStack.listen({ host: this.host, port: 0 });
    const element = new SipElement({ transport, clock: new SystemClock() });
    this.elements.push(element);
    const ua = new UserAgent({ element }, { user, domain: this.host });
    if (keep) this.byName.set(user, ua);
    return ua;
  }

  /** The phone `get(user)` returns, made on first use. */
  phone(user: string): Promise<UserAgent> {
    const ua = this.byName.get(user);
    return ua ? Promise.resolve(ua) : this.add(user);
  }

  has(user: string): boolean {
    return this.byName.has(user);
  }

  /** Make `ua` the phone `get` returns for its user. */
  keep(ua: UserAgent): void {
    this.byName.set(ua.user, ua);
  }

  get(user: string): UserAgent {
    const ua = this.byName.get(user);
    if (!ua) throw new Error(`no phone for ${user}`);
    return ua;
  }

  async close(): Promise<void> {
    for (const e of this.elements) await e.close().catch(() => {});
  }
}

/** `host:port` of an adapter's SIP side as a UDP destination. */
export function udpPeer(hostport: string): Peer {
  const i = hostport.lastIndexOf(':');
  return { transport: 'UDP', address: hostport.slice(0, i), port: Number(hostport.slice(i + 1)) };
}

/**
 * New phones for `caller` and `callee` register at the adapters whose SIP sides are `callerAt` and `calleeAt`
 * (`host:port`); the caller's INVITE to the callee's name through its adapter is redirected to the callee's phone.
 */
export async function registerAndCall(
  phones: TestPhones,
  caller: string,
  callerAt: string,
  callee: string,
  calleeAt: string,
): Promise<void> {
  const from = await phones.add(caller);
  const to = await phones.add(callee);
  assert.equal((await from.register(udpPeer(callerAt))).status, 200);
  assert.equal((await to.register(udpPeer(calleeAt))).status, 200);
  const call = await from.invite(`sip:${callee}@${callerAt}`, udpPeer(callerAt));
  assert.equal(call.redirectedTo, to.contactUri);
}
