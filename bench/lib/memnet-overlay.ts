/**
 * A SecP2PSIP overlay on the in-memory network, for wide-area emulation: one
 * bootstrap and adapters (overlay half; the phone-to-adapter SIP hop is local
 * and not part of the wide area), every message delayed by a fixed one-way
 * latency on a simulated clock. Same protocol code as the daemons.
 */
import { ChordNode } from '../../src/dht/chord/chord-node.ts';
import { defaultValidator } from '../../src/dht/store/validators.ts';
import { nodeIdFromKey } from '../../src/identity/fingerprint.ts';
import { Identity } from '../../src/identity/identity.ts';
import { MemoryNetwork } from '../../src/rpc/memory-network.ts';
import type { NodeRef } from '../../src/rpc/types.ts';
import { AdapterNode, requestAdmission } from '../../src/secp2psip/adapter-node.ts';
import { BootstrapServer } from '../../src/secp2psip/bootstrap-server.ts';
import type { BootstrapInfo } from '../../src/secp2psip/messages.ts';
import { Registry } from '../../src/secp2psip/registry.ts';
import { admittedRef, bootstrapWrittenValidator } from '../../src/secp2psip/ring-records.ts';
import { TrustStore } from '../../src/secp2psip/trust-store.ts';
import type { SipRequest } from '../../src/sip/message.ts';
import { parseMessage } from '../../src/sip/parser.ts';
import { SimClock } from '../../src/util/clock.ts';
import { SeededRandom } from '../../src/util/random.ts';

export class MemnetOverlay {
  readonly clock = new SimClock();
  readonly random: SeededRandom;
  readonly net: MemoryNetwork;
  readonly adapters: AdapterNode[] = [];
  boot!: BootstrapServer;
  private info!: BootstrapInfo;
  private counter = 0;

  private constructor(
    readonly latencyMs: number,
    private readonly k: number,
    private readonly n: number,
    seed: number,
  ) {
    this.random = new SeededRandom(seed);
    this.net = new MemoryNetwork(
      { clock: this.clock, random: this.random.fork() },
      { latencyMs, timeoutMs: 20 * latencyMs + 2000, copy: 'clone', resolutionMs: 0 },
    );
  }

  private ringOptions() {
    const keys = [this.info.key];
    return {
      verifyRef: admittedRef(keys, () => this.clock.wallNow()),
      store: { validators: { '': bootstrapWrittenValidator(keys, defaultValidator()) } },
      installHandler: false,
      stabilizeMs: 1000,
    };
  }

  static async create(o: { latencyMs: number; adapters: number; k: number; n: number; seed?: number }) {
    const t = new MemnetOverlay(o.latencyMs, o.k, o.n, o.seed ?? 1);
    const identity = Identity.generate();
    t.info = { addr: 'bootstrap', key: identity.bundle.sig };
    const registry = new Registry(':memory:');
    const self = BootstrapServer.selfAdmission(identity, registry, t.random, t.clock.wallNow());
    const ref: NodeRef = { id: self.id, addr: t.info.addr, key: identity.bundle.sig, admission: self.admission };
    const endpoint = t.net.endpoint(ref);
    const ring = ChordNode.create({ endpoint, clock: t.clock, random: t.random.fork() }, t.ringOptions());
    t.boot = new BootstrapServer(
      { identity, endpoint, ring, registry, clock: t.clock, random: t.random.fork() },
      { k: o.k, n: o.n, bootstraps: [t.info] },
    );
    await t.settle(ring.join(undefined));
    for (let i = 0; i < o.adapters; i++) {
      await t.addAdapter();
      await t.net.run(2000);
    }
    await t.net.run(10_000);
    return t;
  }

  async addAdapter(): Promise<AdapterNode> {
    const i = this.counter++;
    const node = Identity.generate();
    const temp = this.net.endpoint({ id: nodeIdFromKey(node.bundle.sig), addr: `tmp-${i}`, key: node.bundle.sig });
    const admitted = await this.settle(requestAdmission(temp, this.info));
    await temp.close();
    const ref: NodeRef = {
      id: admitted.nodeId,
      addr: `adapter-${i}`,
      key: node.bundle.sig,
      admission: admitted.admission,
    };
    const endpoint = this.net.endpoint(ref);
    const ring = ChordNode.create({ endpoint, clock: this.clock, random: this.random.fork() }, this.ringOptions());
    const a = new AdapterNode(
      { endpoint, ring, trust: new TrustStore(':memory:'), clock: this.clock, random: this.random.fork() },
      { admitted, bootstrap: this.info, sipAddr: `10.0.${i >> 8}.${i & 255}:5060` },
    );
    const c = admitted.ring[0];
    await this.settle(ring.join({ id: c.id, addr: c.addr, key: c.key, admission: c.admission }));
    this.adapters.push(a);
    return a;
  }

  /** Run the simulation until `p` settles; resolves with its value. */
  async settle<T>(p: Promise<T>, limitMs = 600_000): Promise<T> {
    let done = false;
    const out = p.finally(() => {
      done = true;
    });
    out.catch(() => {});
    await this.net.runUntil(() => done, limitMs);
    if (!done) throw new Error(`did not settle within ${limitMs} ms of simulated time`);
    return out;
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
      a.trust.close();
    }
    this.boot.ring.stop();
    this.boot.registry.close();
  }
}

let calls = 0;

/** The INVITE a phone registered as `from` sends its adapter for `to`. */
export function phoneInvite(from: string, to: string): SipRequest {
  const n = ++calls;
  const text =
    `INVITE sip:${to}@10.9.0.1:5060 SIP/2.0\r\n` +
    `Via: SIP/2.0/UDP 10.9.0.2:5070;branch=z9hG4bK-wan-${n};rport\r\n` +
    'Max-Forwards: 70\r\n' +
    `From: <sip:${from}@10.9.0.1:5060>;tag=w${n}\r\n` +
    `To: <sip:${to}@10.9.0.1:5060>\r\n` +
    `Call-ID: wan-${n}@10.9.0.2\r\n` +
    'CSeq: 1 INVITE\r\n' +
    `Contact: <sip:${from}@10.9.0.2:5070>\r\n` +
    'Content-Length: 0\r\n\r\n';
  const p = parseMessage(new TextEncoder().encode(text));
  if (!p.ok || p.value.kind !== 'request') throw new Error('bad INVITE');
  return p.value;
}
