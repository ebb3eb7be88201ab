/**
 * A SecP2PSIP overlay on the in-memory network: one or more bootstraps and
 * adapters (overlay half only), on a simulated clock. SIP requests are built
 * as bytes, so the whole call flow runs without sockets.
 */
import { ChordNode } from '../../src/dht/chord/chord-node.ts';
import { defaultValidator } from '../../src/dht/store/validators.ts';
import { nodeIdFromKey } from '../../src/identity/fingerprint.ts';
import { Identity } from '../../src/identity/identity.ts';
import { MemoryNetwork } from '../../src/rpc/memory-network.ts';
import type { NodeRef } from '../../src/rpc/types.ts';
import { AdapterNode, requestAdmission } from '../../src/secp2psip/adapter-node.ts';
import { BootstrapServer } from '../../src/secp2psip/bootstrap-server.ts';
import type { SecurityMode } from '../../src/secp2psip/call-flow.ts';
import type { RebuildMode } from '../../src/secp2psip/key-lookup.ts';
import type { BootstrapInfo } from '../../src/secp2psip/messages.ts';
import { Registry } from '../../src/secp2psip/registry.ts';
import { admittedRef, bootstrapWrittenValidator } from '../../src/secp2psip/ring-records.ts';
import { TrustStore } from '../../src/secp2psip/trust-store.ts';
import type { SipRequest } from '../../src/sip/message.ts';
import { parseMessage } from '../../src/sip/parser.ts';
import { SimClock } from '../../src/util/clock.ts';
import type { Logger } from '../../src/util/log.ts';
import { SeededRandom } from '../../src/util/random.ts';

export interface TestnetInit {
  seed?: number;
  k?: number;
  n?: number;
  bootstraps?: number;
  mode?: SecurityMode;
  rebuild?: RebuildMode;
  logger?: Logger;
  /** SQLite path of bootstrap i (default in memory). */
  registryPath?: (i: number) => string;
}

export class SecTestnet {
  readonly clock = new SimClock();
  readonly random: SeededRandom;
  readonly net: MemoryNetwork;
  readonly bootstraps: BootstrapServer[] = [];
  readonly adapters: AdapterNode[] = [];
  readonly info: BootstrapInfo[] = [];
  private readonly ids: Identity[] = [];
  private counter = 0;
  readonly init: TestnetInit;

  constructor(init: TestnetInit = {}) {
    this.init = init;
    this.random = new SeededRandom(init.seed ?? 1);
    this.net = new MemoryNetwork(
      { clock: this.clock, random: this.random.fork() },
      { latencyMs: 1, timeoutMs: 2000, copy: 'clone' },
    );
  }

  get keys(): Uint8Array[] {
    return this.info.map((b) => b.key);
  }

  ringOptions() {
    return {
      verifyRef: admittedRef(this.keys, () => this.clock.wallNow()),
      store: { validators: { '': bootstrapWrittenValidator(this.keys, defaultValidator()) } },
      installHandler: false,
      stabilizeMs: 500,
    };
  }

  static async create(adapters: number, init: TestnetInit = {}): Promise<SecTestnet> {
    const t = new SecTestnet(init);
    const nb = init.bootstraps ?? 1;
    for (let i = 0; i < nb; i++) {
      const id = Identity.generate();
      t.ids.push(id);
      t.info.push({ addr: `boot-${i}`, key: id.bundle.sig });
    }
    for (let i = 0; i < nb; i++) await t.startBootstrap(i);
    // Joins are spaced by a stabilization round, as adapters starting over time would be.
    for (let i = 0; i < adapters; i++) {
      await t.addAdapter();
      await t.run(1000);
    }
    await t.run(3000);
    return t;
  }

  async startBootstrap(i: number): Promise<BootstrapServer> {
    const identity = this.ids[i];
    const registry = new Registry(this.init.registryPath?.(i) ?? ':memory:');
    const self = BootstrapServer.selfAdmission(identity, registry, this.random, this.clock.wallNow());
    const ref: NodeRef = { id: self.id, addr: this.info[i].addr, key: identity.bundle.sig, admission: self.admission };
    this.net.revive(ref.addr);
    const endpoint = this.net.endpoint(ref);
    const ring = ChordNode.create({ endpoint, clock: this.clock, random: this.random.fork() }, this.ringOptions());
    const b = new BootstrapServer(
      { identity, endpoint, ring, registry, clock: this.clock, random: this.random.fork(), logger: this.init.logger },
      { k: this.init.k ?? 3, n: this.init.n ?? 5, bootstraps: this.info },
    );
    const live = this.bootstraps.find((x) => x && !x.ring.stopped)?.ring.self;
    const via = live ?? BootstrapServer.rejoinContacts(registry, this.keys, this.clock.wallNow())[0];
    await this.settle(ring.join(via));
    this.bootstraps[i] = b;
    return b;
  }

  /** Stop a bootstrap (its registry file stays) and take it off the network. */
  async stopBootstrap(i: number): Promise<void> {
    const b = this.bootstraps[i];
    b.ring.stop();
    this.net.kill(b.endpoint.self.addr);
    await b.endpoint.close();
    b.registry.close();
  }

  async addAdapter(opts: { mode?: SecurityMode; via?: number } = {}): Promise<AdapterNode> {
    const n = this.counter++;
    const node = Identity.generate();
    const via = this.info[opts.via ?? n % this.info.length];
    const temp = this.net.endpoint({ id: nodeIdFromKey(node.bundle.sig), addr: `tmp-${n}`, key: node.bundle.sig });
    const admitted = await this.settle(requestAdmission(temp, via));
    await temp.close();
    const ref: NodeRef = {
      id: admitted.nodeId,
      addr: `adapter-${n}`,
      key: node.bundle.sig,
      admission: admitted.admission,
    };
    const endpoint = this.net.endpoint(ref);
    const ring = ChordNode.create({ endpoint, clock: this.clock, random: this.random.fork() }, this.ringOptions());
    const a = new AdapterNode(
      {
        endpoint,
        ring,
        trust: new TrustStore(':memory:'),
        clock: this.clock,
        random: this.random.fork(),
        logger: this.init.logger,
      },
      {
        admitted,
        bootstrap: via,
        sipAddr: `127.0.0.${n + 1}:5060`,
        mode: opts.mode ?? this.init.mode,
        rebuild: this.init.rebuild,
      },
    );
    // Like the daemon (joinRing): a ring still settling after other joins may need another try.
    const contacts = admitted.ring.map((c) => ({ id: c.id, addr: c.addr, key: c.key, admission: c.admission }));
    for (let attempt = 0; ; attempt++) {
      try {
        await this.settle(ring.join(contacts[attempt % contacts.length]));
        break;
      } catch (e) {
        if (attempt >= 7) throw e;
        await this.run(250 * (attempt + 1));
      }
    }
    this.adapters.push(a);
    return a;
  }

  run(ms: number): Promise<void> {
    return this.net.run(ms);
  }

  async settle<T>(p: Promise<T>, limitMs = 60_000): Promise<T> {
    let done = false;
    const out = p.finally(() => {
      done = true;
    });
    out.catch(() => {});
    await this.net.runUntil(() => done, limitMs);
    if (!done) throw new Error(`did not settle within ${limitMs} ms of simulated time`);
    return out;
  }

  close(): void {
    for (const a of this.adapters) {
      a.ring.stop();
      a.trust.close();
    }
    for (const b of this.bootstraps) {
      b.ring.stop();
      b.registry.close();
    }
  }
}

let callCounter = 0;

/** The INVITE a phone registered as `from` at its adapter sends for `to`. */
export function phoneInvite(from: string, to: string, adapterHost = '127.0.0.1:5060'): SipRequest {
  const n = ++callCounter;
  const text =
    `INVITE sip:${to}@${adapterHost} SIP/2.0\r\n` +
    `Via: SIP/2.0/UDP 10.0.0.1:5070;branch=z9hG4bK-test-${n};rport\r\n` +
    'Max-Forwards: 70\r\n' +
    `From: <sip:${from}@${adapterHost}>;tag=f${n}\r\n` +
    `To: <sip:${to}@${adapterHost}>\r\n` +
    `Call-ID: call-${n}@10.0.0.1\r\n` +
    'CSeq: 1 INVITE\r\n' +
    `Contact: <sip:${from}@10.0.0.1:5070>\r\n` +
    'Content-Length: 0\r\n\r\n';
  const p = parseMessage(new TextEncoder().encode(text));
  if (!p.ok || p.value.kind !== 'request') throw new Error('bad test INVITE');
  return p.value;
}
