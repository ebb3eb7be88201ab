/**
 * A SecP2PSIP overlay on the in-memory network, in one call: one or more
 * bootstraps and adapters (overlay half only: the phone-to-adapter SIP hop is
 * local), every message delayed by a fixed one-way latency on a simulated
 * clock. Same protocol code as the daemons. The tests use it with 1 ms
 * links; the wide-area benchmark with tens of milliseconds. SIP requests are
 * built as bytes (`phoneInvite`), so a whole call flow runs without sockets.
 */
import { Identity } from '../identity/identity.ts';
import { MemoryNetwork } from '../rpc/memory-network.ts';
import type { AdapterNode } from '../secp2psip/adapter-node.ts';
import type { BootstrapServer } from '../secp2psip/bootstrap-server.ts';
import type { SecurityMode } from '../secp2psip/call-common.ts';
import { RegisteredPhones } from '../secp2psip/local-phones.ts';
import type { RebuildMode } from '../secp2psip/key-lookup.ts';
import type { PhoneInbox } from '../secp2psip/messaging.ts';
import type { PhonePresence } from '../secp2psip/presence.ts';
import type { BootstrapInfo } from '../secp2psip/messages.ts';
import { Registry } from '../secp2psip/registry.ts';
import { type RingSettings, startAdapterRole, startBootstrapRole, unadmittedRef } from '../secp2psip/roles.ts';
import { TrustStore } from '../secp2psip/trust-store.ts';
import type { SipRequest } from '../sip/message.ts';
import { parseMessage } from '../sip/parser.ts';
import { Registrar } from '../sip/registrar.ts';
import { SimClock } from '../util/clock.ts';
import type { Logger } from '../util/log.ts';
import { SeededRandom } from '../util/random.ts';

export interface MemoryOverlayInit {
  seed?: number;
  k?: number;
  n?: number;
  bootstraps?: number;
  mode?: SecurityMode;
  rebuild?: RebuildMode;
  logger?: Logger;
  /** SQLite path of bootstrap i (default in memory). */
  registryPath?: (i: number) => string;
  /** One-way delay of every message (ms, default 1). */
  latencyMs?: number;
  /** RPC timeout (ms, default 2000). */
  timeoutMs?: number;
  /** Network clock resolution (ms; see MemoryNetwork). */
  resolutionMs?: number;
  /** Chord stabilize period (ms, default 500). */
  stabilizeMs?: number;
  /** Simulated time between adapter joins (default 1000 ms) and after the last one (default 3000 ms). */
  joinGapMs?: number;
  settleMs?: number;
  /** How much simulated time `settle` allows by default (default 60 s). */
  settleLimitMs?: number;
  /** The SIP host:port adapter i puts in its location records. */
  sipAddr?: (i: number) => string;
  /** Where adapter i delivers verified instant messages (messaging.ts; default: none, messages are refused). */
  inbox?: (i: number) => PhoneInbox;
  /** The phones' presence subscriptions at adapter i (presence.ts; default: none). */
  presencePhones?: (i: number) => PhonePresence;
}

export class MemoryOverlay {
  readonly clock = new SimClock();
  readonly random: SeededRandom;
  readonly net: MemoryNetwork;
  readonly bootstraps: BootstrapServer[] = [];
  readonly adapters: AdapterNode<RegisteredPhones>[] = [];
  readonly info: BootstrapInfo[] = [];
  readonly init: MemoryOverlayInit;
  private readonly ids: Identity[] = [];
  private counter = 0;

  constructor(init: MemoryOverlayInit = {}) {
    this.init = init;
    this.random = new SeededRandom(init.seed ?? 1);
    this.net = new MemoryNetwork(
      { clock: this.clock, random: this.random.fork() },
      {
        latencyMs: init.latencyMs ?? 1,
        timeoutMs: init.timeoutMs ?? 2000,
        copy: 'clone',
        ...(init.resolutionMs === undefined ? {} : { resolutionMs: init.resolutionMs }),
      },
    );
  }

  /** Bootstraps first (each joins the ring), then `adapters` adapters, joins spaced as adapters starting over time. */
  static async create(adapters: number, init: MemoryOverlayInit = {}): Promise<MemoryOverlay> {
    const t = new MemoryOverlay(init);
    const nb = init.bootstraps ?? 1;
    for (let i = 0; i < nb; i++) {
      const id = Identity.generate();
      t.ids.push(id);
      t.info.push({ addr: `boot-${i}`, key: id.bundle.sig });
    }
    for (let i = 0; i < nb; i++) await t.startBootstrap(i);
    for (let i = 0; i < adapters; i++) {
      await t.addAdapter();
      await t.run(init.joinGapMs ?? 1000);
    }
    await t.run(init.settleMs ?? 3000);
    return t;
  }

  get keys(): Uint8Array[] {
    return this.info.map((b) => b.key);
  }

  /** The first bootstrap. */
  get boot(): BootstrapServer {
    return this.bootstraps[0];
  }

  ringSettings(): RingSettings {
    return { stabilizeMs: this.init.stabilizeMs ?? 500 };
  }

  /**
   * Start (or restart, with the same key and registry file) bootstrap i, as a
   * daemon does (roles.ts): it joins the ring through its peers or the
   * adapters of its users, or founds it in founding order.
   */
  async startBootstrap(i: number): Promise<BootstrapServer> {
    const role = await this.settle(
      startBootstrapRole(
        {
          identity: this.ids[i],
          registry: new Registry(this.init.registryPath?.(i) ?? ':memory:'),
          clock: this.clock,
          random: this.random,
          logger: this.init.logger,
          listen: async (self) => {
            this.net.revive(this.info[i].addr);
            return this.net.endpoint({ ...self, addr: this.info[i].addr, key: this.ids[i].bundle.sig });
          },
        },
        { ...this.ringSettings(), k: this.init.k ?? 3, n: this.init.n ?? 5, peers: this.info },
      ),
    );
    this.bootstraps[i] = role.server;
    return role.server;
  }

  /** Stop a bootstrap (its registry file stays) and take it off the network. */
  async stopBootstrap(i: number): Promise<void> {
    const b = this.bootstraps[i];
    b.ring.stop();
    this.net.kill(b.endpoint.self.addr);
    await b.endpoint.close();
    b.registry.close();
  }

  /** An adapter admitted by bootstrap `via` (default: round robin; the others as fail-over), joined to the ring. */
  async addAdapter(opts: { mode?: SecurityMode; via?: number } = {}): Promise<AdapterNode<RegisteredPhones>> {
    const n = this.counter++;
    const identity = Identity.generate();
    const first = opts.via ?? n % this.info.length;
    const role = await this.settle(
      startAdapterRole(
        {
          identity,
          trust: new TrustStore(':memory:'),
          phones: new RegisteredPhones(new Registrar({ clock: this.clock }, { minExpires: 10 })),
          inbox: this.init.inbox?.(n),
          presencePhones: this.init.presencePhones?.(n),
          clock: this.clock,
          random: this.random,
          logger: this.init.logger,
          admissionEndpoint: async () => this.net.endpoint(unadmittedRef(identity, `tmp-${n}`)),
          listen: async (self) => this.net.endpoint({ ...self, addr: `adapter-${n}`, key: identity.bundle.sig }),
        },
        {
          ...this.ringSettings(),
          bootstraps: [this.info[first], ...this.info.filter((_, i) => i !== first)],
          sipAddr: this.init.sipAddr?.(n) ?? `127.0.0.${n + 1}:5060`,
          mode: opts.mode ?? this.init.mode,
          rebuild: this.init.rebuild,
        },
      ),
    );
    this.adapters.push(role.node);
    return role.node;
  }

  /** Run simulated time. */
  run(ms: number): Promise<void> {
    return this.net.run(ms);
  }

  /** Run the simulation until `p` settles; resolves or rejects as it does. */
  settle<T>(p: Promise<T>, limitMs = this.init.settleLimitMs ?? 60_000): Promise<T> {
    return this.net.settle(p, limitMs);
  }

  /** Simulated time and message count taken by one operation. */
  async measure<T>(fn: () => Promise<T>): Promise<{ ms: number; messages: number; value: T }> {
    const t0 = this.clock.now();
    const m0 = this.net.stats.messages;
    const value = await this.settle(fn());
    return { ms: this.clock.now() - t0, messages: this.net.stats.messages - m0, value };
  }

  close(): void {
    for (const a of this.adapters) {
      a.ring.stop();
      a.presence.stop();
      a.trust.close();
    }
    for (const b of this.bootstraps) {
      b.ring.stop();
      b.registry.close();
    }
  }
}

let callCounter = 0;

/** The INVITE a phone at `phoneHost`, registered as `from` at its adapter `adapterHost`, sends for `to`. */
export function phoneInvite(
  from: string,
  to: string,
  adapterHost = '127.0.0.1:5060',
  phoneHost = '10.0.0.1:5070',
): SipRequest {
  const n = ++callCounter;
  const text =
    `INVITE sip:${to}@${adapterHost} SIP/2.0\r\n` +
    `Via: SIP/2.0/UDP ${phoneHost};branch=z9hG4bK-test-${n};rport\r\n` +
    'Max-Forwards: 70\r\n' +
    `From: <sip:${from}@${adapterHost}>;tag=f${n}\r\n` +
    `To: <sip:${to}@${adapterHost}>\r\n` +
    `Call-ID: call-${n}@${phoneHost.replace(/:\d+$/, '')}\r\n` +
    'CSeq: 1 INVITE\r\n' +
    `Contact: <sip:${from}@${phoneHost}>\r\n` +
    'Content-Length: 0\r\n\r\n';
  const p = parseMessage(new TextEncoder().encode(text));
  if (!p.ok || p.value.kind !== 'request') throw new Error('bad phone INVITE');
  return p.value;
}

/** The MESSAGE (RFC 3428) a phone registered as `from` at its adapter `adapterHost` sends for `to`. */
export function phoneMessage(
  from: string,
  to: string,
  text: string,
  adapterHost = '127.0.0.1:5060',
  phoneHost = '10.0.0.1:5070',
): SipRequest {
  const n = ++callCounter;
  const body = new TextEncoder().encode(text);
  const head =
    `MESSAGE sip:${to}@${adapterHost} SIP/2.0\r\n` +
    `Via: SIP/2.0/UDP ${phoneHost};branch=z9hG4bK-msg-${n};rport\r\n` +
    'Max-Forwards: 70\r\n' +
    `From: <sip:${from}@${adapterHost}>;tag=m${n}\r\n` +
    `To: <sip:${to}@${adapterHost}>\r\n` +
    `Call-ID: msg-${n}@${phoneHost.replace(/:\d+$/, '')}\r\n` +
    'CSeq: 1 MESSAGE\r\n' +
    'Content-Type: text/plain;charset=UTF-8\r\n' +
    `Content-Length: ${body.length}\r\n\r\n`;
  const p = parseMessage(new Uint8Array([...new TextEncoder().encode(head), ...body]));
  if (!p.ok || p.value.kind !== 'request') throw new Error('bad phone MESSAGE');
  return p.value;
}

let registerCounter = 0;

/**
 * Bind `contact` (a SIP URI) as `name`'s phone at the adapter `node`, as that
 * phone's REGISTER at the adapter's SIP half would: the callee side then
 * answers with it in the 302 (`<contact>`).
 */
export function bindPhone(node: AdapterNode<RegisteredPhones>, name: string, contact: string, expiresS = 3600): void {
  const n = ++registerCounter;
  const host = 'adapter.test';
  const text =
    `REGISTER sip:${host} SIP/2.0\r\n` +
    `Via: SIP/2.0/UDP 10.0.0.1:5070;branch=z9hG4bK-reg-${n}\r\n` +
    'Max-Forwards: 70\r\n' +
    `From: <sip:${name}@${host}>;tag=r${n}\r\n` +
    `To: <sip:${name}@${host}>\r\n` +
    `Call-ID: reg-${n}@test\r\n` +
    'CSeq: 1 REGISTER\r\n' +
    `Contact: <${contact}>\r\n` +
    `Expires: ${expiresS}\r\n` +
    'Content-Length: 0\r\n\r\n';
  const p = parseMessage(new TextEncoder().encode(text));
  if (!p.ok || p.value.kind !== 'request') throw new Error('bad phone REGISTER');
  const out = node.phones.register(name, host, p.value);
  if (out.status !== 200) throw new Error(`phone REGISTER refused: ${out.status} ${out.reason}`);
}
