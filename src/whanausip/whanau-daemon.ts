/**
 * A Whanau DHT member on real sockets (seed 003 chapter 4): the protocol core
 * (dht/whanau) driven over a TLS 1.3 RpcEndpoint whose pinned keys decide
 * access (section 4.3), a scheduler that runs SETUP at every UTC multiple of
 * the period p (section 4.6), the node's trusted social peers persisted in
 * SQLite, and its own self-certifying location record (Figure 4-2),
 * republished before every SETUP so copies in other nodes' tables never
 * outlive it.
 *
 * State under the data directory: `identity.pem` (0600) and `peers.sqlite`.
 */
import { advertisedHost } from '../util/advertise.ts';
import { sign } from 'node:crypto';
import { join } from 'node:path';
import { whanauHandler } from '../dht/whanau/dispatch.ts';
import { PEER_METHODS } from '../dht/whanau/messages.ts';
import { WhanauNode } from '../dht/whanau/node.ts';
import type { WhanauParams } from '../dht/whanau/params.ts';
import { Identity } from '../identity/identity.ts';
import { createNodeCertificate, type NodeCertificate } from '../identity/certificates.ts';
import { clientContext } from '../rpc/tls-dial.ts';
import { parseAddr } from '../rpc/tls-dial.ts';
import { TlsRpcEndpoint, type TlsRpcLimits } from '../rpc/tls-endpoint.ts';
import type { NodeRef, RequestHandler } from '../rpc/types.ts';
import type { Reachability } from '../rpc/relay-dialback.ts';
import type { KeptRelays } from '../rpc/relay-keeper.ts';
import { type Clock, SystemClock, type Timer } from '../util/clock.ts';
import { dataFileError } from '../util/data-file.ts';
import { isRelayAddr } from '../rpc/relay.ts';
import { type Logger, silentLogger } from '../util/log.ts';
import { type Metrics, noMetrics } from '../util/metrics.ts';
import { CryptoRandom, type Random } from '../util/random.ts';
import {
  checkLocationRecord,
  encodeLocationRecord,
  type LocationRecord,
  locationRecordChecker,
  type RecordSigner,
  signLocationRecord,
} from './location-record.ts';
import { DIALBACK_METHOD, friendDialBack, reachableFromFriends, relayThroughFriends } from './behind-nat.ts';
import { OutgoingLimiter } from './outgoing-limiter.ts';
import { openWhanauData, PEERS_FILE } from './data-dir.ts';
import { PeerBook, type PeerSpec } from './peer-book.ts';
import { SocialPeers } from './social-peers.ts';

/** What the node's location record publishes for its own hash (the SIP side: a registered phone, else its SIP URI). */
export interface OwnContact {
  contactOf(hash: string): string;
}

export interface WhanauDaemonOptions {
  /** DHT listener. */
  host: string;
  port: number;
  /** Identity and peers persist here; without it both live in memory (benchmarks, tests). */
  dataDir?: string;
  /** Use this identity instead of loading or creating one. */
  identity?: Identity;
  /** Social peers to add (and persist) at start. */
  peers?: PeerSpec[];
  /** Raw Ed25519 keys allowed to call the control interface. */
  adminKeys?: Uint8Array[];
  params: Readonly<WhanauParams>;
  /** Run SETUP at each UTC multiple of params.periodMs (default true). */
  schedule?: boolean;
  limits?: Partial<TlsRpcLimits>;
  /** Address other nodes should dial (default: the bound host:port). */
  advertise?: string;
  /** Most requests to walk ends and fingers in flight at once (default: no cap); see outgoing-limiter.ts. */
  maxOutgoing?: number;
  clock?: Clock;
  random?: Random;
  logger?: Logger;
  /** Where our record points (default: `sip:<hash>@<DHT address>`). */
  contact?: OwnContact;
  /** SETUP durations and lookup message counts are reported here (default: not kept). */
  metrics?: Metrics;
  /** RPC methods of the application on the same links (e.g. instant messages), answered before the DHT's. */
  handlers?: Readonly<Record<string, RequestHandler>>;
  /**
   * This host cannot be dialled (a NAT without port forward): keep links to up to 3 social peers that relay for
   * it (rpc/relay.ts) and be known by them, in the DHT and in the location record.
   */
  behindNat?: boolean;
  /**
   * Without `behindNat`: ask a friend to dial our DHT address back at start (behind-nat.ts), and if it cannot,
   * behave as with `behindNat` (default false; the CLI turns it on).
   */
  checkReachability?: boolean;
  /** Behind a NAT: how often each relaying friend is renewed (ms, default 20 s); one missing two is replaced. */
  relayRenewMs?: number;
}

export { PEER_RELAYS } from './behind-nat.ts';

export { BINDINGS_FILE, openWhanauData, PEERS_FILE } from './data-dir.ts';

export interface RecordLookup {
  /** The verified record, or null when the DHT has none that passes the checker. */
  record: LocationRecord | null;
  messages: number;
  tries: number;
  /** True when no SETUP has finished yet, so the node has no tables to look in. */
  notReady: boolean;
}

export class WhanauDaemon {
  readonly identity: Identity;
  readonly hash: string;
  readonly endpoint: TlsRpcEndpoint;
  readonly node: WhanauNode;
  readonly book: PeerBook;
  readonly clock: Clock;
  readonly log: Logger;
  readonly stats = { setupsStarted: 0, setupsDone: 0, setupsFailed: 0, probesFailed: 0, lookups: 0 };
  /** The book's peers as the core knows them (keys learned, added to the node). */
  private readonly peers: SocialPeers;
  private readonly signer: RecordSigner;
  private readonly ownContact: OwnContact | undefined;
  /** The DHT address our record names: host and port, or for a node behind a NAT its relay address as host. */
  private host: string;
  private readonly port: number;
  /** The friends relaying for us, when we are behind a NAT. */
  relays: KeptRelays | undefined;
  /** What the last dial-back said (undefined: not asked, `checkReachability` off). */
  reachability: Reachability | undefined;
  private readonly relayRenewMs: number | undefined;
  private timer: Timer | undefined;
  private closed = false;
  private setupRunning: Promise<unknown> | undefined;
  private readonly metrics: Metrics;
  /** When the last SETUP finished (wall ms), how long it took and what it built. */
  lastSetup: { at: number; ms: number; summary: Record<string, unknown> } | undefined;

  private constructor(
    o: WhanauDaemonOptions,
    identity: Identity,
    endpoint: TlsRpcEndpoint,
    cert: NodeCertificate,
    book: PeerBook,
  ) {
    this.identity = identity;
    this.hash = identity.id;
    this.endpoint = endpoint;
    this.book = book;
    this.clock = o.clock ?? new SystemClock();
    this.log = (o.logger ?? silentLogger).child({ component: 'whanau-daemon', node: this.hash.slice(0, 8) });
    const self = parseAddr(endpoint.self.addr);
    const where = self.ok ? self.value : { host: o.host, port: endpoint.port };
    this.host = where.host;
    this.port = where.port;
    this.ownContact = o.contact;
    this.relayRenewMs = o.relayRenewMs;
    this.metrics = o.metrics ?? noMetrics;
    const key = identity.signingKey;
    this.signer = { publicKey: identity.bundle.sig, sign: (data) => new Uint8Array(sign(null, data, key)) };
    const transport = o.maxOutgoing ? new OutgoingLimiter(endpoint, o.maxOutgoing, new Set(PEER_METHODS)) : endpoint;
    this.node = new WhanauNode(
      { clock: this.clock, random: o.random ?? new CryptoRandom(), transport, logger: o.logger },
      { self: endpoint.self, params: o.params, checker: locationRecordChecker, adminKeys: o.adminKeys },
    );
    this.peers = new SocialPeers({
      book,
      node: this.node,
      endpoint,
      tlsContext: clientContext(cert),
      clock: this.clock,
      log: this.log,
      stats: this.stats,
    });
    const dht = whanauHandler(this.node);
    const app: Record<string, RequestHandler> = {
      [DIALBACK_METHOD]: friendDialBack(endpoint, (h) => this.peers.has(h), this.clock, this.log),
      ...o.handlers,
    };
    endpoint.onRequest((method, payload, caller) =>
      Object.hasOwn(app, method) ? app[method](method, payload, caller) : dht(method, payload, caller),
    );
  }

  static async start(o: WhanauDaemonOptions): Promise<WhanauDaemon> {
    const identity = o.identity ?? (o.dataDir ? openWhanauData(o.dataDir) : Identity.generate());
    const keyPair = { privateKey: identity.signingKey, publicKey: identity.publicSigningKey };
    const cert = await createNodeCertificate(keyPair);
    const endpoint = await TlsRpcEndpoint.listen({
      host: o.host,
      port: o.port,
      keyPair,
      certificate: cert,
      self: o.advertise ? { addr: o.advertise } : undefined,
      // Bound to a wildcard without --advertise: a routable address of this host (or a one-line refusal).
      advertiseHost: o.advertise ? undefined : advertisedHost(o.host, undefined, '--advertise').host,
      limits: o.limits,
      clock: o.clock,
      logger: o.logger,
    });
    let book: PeerBook;
    try {
      book = new PeerBook(o.dataDir ? join(o.dataDir, PEERS_FILE) : ':memory:');
    } catch (e) {
      await endpoint.close();
      throw dataFileError(join(o.dataDir ?? '', PEERS_FILE), (e as Error).message);
    }
    const d = new WhanauDaemon(o, identity, endpoint, cert, book);
    const now = d.clock.wallNow();
    for (const p of o.peers ?? []) if (p.hash !== d.hash) book.upsert(p, now);
    try {
      if (o.behindNat) await d.relayThroughPeers();
      else if (o.checkReachability) await d.checkReachability();
    } catch (e) {
      await d.close();
      throw e;
    }
    if (o.schedule ?? true) d.scheduleNext();
    return d;
  }

  /**
   * Dial-back by a friend (behind-nat.ts); found unreachable, friends relay for us from then on. When no friend could
   * tell (none up yet, or none that lists us yet) it is asked again before each SETUP until one can.
   */
  async checkReachability(): Promise<Reachability> {
    if (this.behindNat) return 'unreachable';
    await this.resolvePeers();
    const r = await reachableFromFriends(this.endpoint, this.peers.friends(), this.log);
    this.reachability = r;
    if (r === 'unreachable') await this.relayThroughPeers();
    return r;
  }

  /**
   * Behind a NAT: friends relay for us (behind-nat.ts), and the relay address naming them is our DHT address, in
   * the DHT and in our record. Our friends reach us over the links we keep to them; anyone else through a circuit
   * of one of them (or a direct connection it coordinates). A friend that stops relaying is replaced and our
   * record published again naming the new set (others copy it at the next SETUP; meanwhile the old record still
   * names the friends that relay).
   */
  private async relayThroughPeers(): Promise<void> {
    await this.resolvePeers();
    this.relays = await relayThroughFriends({
      endpoint: this.endpoint,
      friends: () => this.peers.friends(),
      clock: this.clock,
      log: this.log,
      renewMs: this.relayRenewMs,
      onChange: () => {
        this.host = this.endpoint.self.addr;
        if (!this.closed) this.publishOwnRecord();
      },
    });
    this.host = this.endpoint.self.addr;
    this.log.info({ addr: this.host }, 'behind a NAT: reachable through social peers relaying for it');
  }

  /** Whether we are reached through relaying friends (told `behindNat`, or found by the dial-back). */
  get behindNat(): boolean {
    return isRelayAddr(this.endpoint.self.addr);
  }

  /** `<hash>@host:port`: what friends pass as `--peer`. */
  get peerSpec(): string {
    return `${this.hash}@${this.endpoint.self.addr}`;
  }

  get self(): NodeRef {
    return this.endpoint.self;
  }

  /**
   * Add (and persist) a social peer; the link counts once the peer has added
   * us too. A key given here (known out of band) is pinned at once if it
   * hashes to `spec.hash`; otherwise a handshake must show one that does.
   */
  async addPeer(spec: PeerSpec, key?: Uint8Array): Promise<boolean> {
    return spec.hash === this.hash ? false : this.peers.add(spec, key);
  }

  /**
   * Make every peer in the book known to the core (social-peers.ts), within
   * the endpoint's connect timeout by default. Returns how many peers are known.
   */
  resolvePeers(timeoutMs = this.endpoint.limits.connectTimeoutMs): Promise<number> {
    return this.peers.resolveAll(timeoutMs);
  }

  /** What our record publishes now. */
  contact(): string {
    return this.ownContact?.contactOf(this.hash) ?? `sip:${this.hash}@${this.endpoint.self.addr}`;
  }

  /** Sign and store our location record (seed 003 Figure 4-2) with the current contact. */
  publishOwnRecord(): LocationRecord {
    // Valid through the SETUP that samples it and the whole period its copies are used, plus skew.
    const ttl = Math.ceil((2 * this.node.params.periodMs + this.node.params.skewMs) / 1000) + 60;
    const record = signLocationRecord(
      { value: this.contact(), created: this.clock.wallNow(), ttl, host: this.host, port: this.port },
      this.signer,
    );
    this.node.publish({ key: this.hash, value: encodeLocationRecord(record) });
    return record;
  }

  /** One SETUP for `epoch` (default: the period starting next); peers and our record are refreshed first. */
  async setup(epoch = this.node.nextEpoch()): Promise<Record<string, unknown>> {
    this.stats.setupsStarted++;
    if (this.reachability === 'unknown')
      await this.checkReachability().catch((e) => this.log.warn({ err: (e as Error).message }, 'dial-back failed'));
    await this.resolvePeers();
    this.publishOwnRecord();
    const run = this.node.setup(epoch);
    this.setupRunning = run;
    const started = this.clock.now();
    try {
      const summary = await run;
      const ms = this.clock.now() - started;
      this.metrics.observe('whanau_setup_seconds', ms / 1000, { result: 'done' });
      this.lastSetup = { at: this.clock.wallNow(), ms, summary };
      this.stats.setupsDone++;
      this.log.info({ epoch, ...summary, peers: this.node.activePeers().length }, 'setup done');
      return summary;
    } catch (e) {
      this.stats.setupsFailed++;
      this.metrics.observe('whanau_setup_seconds', (this.clock.now() - started) / 1000, { result: 'failed' });
      throw e;
    } finally {
      if (this.setupRunning === run) this.setupRunning = undefined;
    }
  }

  /** Section 4.6: wait until UTC is a multiple of p, run SETUP for that epoch, repeat. */
  private scheduleNext(): void {
    if (this.closed) return;
    const p = this.node.params.periodMs;
    const now = this.clock.wallNow();
    const epoch = Math.floor(now / p) + 1;
    this.timer = this.clock.setTimer(epoch * p - now, () => {
      this.scheduleNext();
      if (this.closed) return;
      this.setup(epoch).catch((e) => this.log.warn({ epoch, err: (e as Error).message }, 'setup failed'));
    });
  }

  /**
   * LOOKUP(key) (Figure A-2) of a WhanauSIP identity, returning the record
   * only if it passes the checker here (signature, key hash, expiry): the
   * DHT guarantees availability, the record its own integrity (section 3.2.1).
   */
  async lookupRecord(hash: string): Promise<RecordLookup> {
    this.stats.lookups++;
    const key = hash.toLowerCase();
    if (key === this.hash) {
      const own = this.node.records.get(key) ?? encodeLocationRecord(this.publishOwnRecord());
      const r = checkLocationRecord(key, own, this.clock.wallNow());
      return { record: r.ok ? r.value : null, messages: 0, tries: 0, notReady: false };
    }
    if (!this.node.published) return { record: null, messages: 0, tries: 0, notReady: true };
    const out = await this.node.lookup(key);
    let record: LocationRecord | null = null;
    if (out.value !== null) {
      const r = checkLocationRecord(key, out.value, this.clock.wallNow());
      if (r.ok) record = r.value;
      else this.log.warn({ key: key.slice(0, 8), why: r.error }, 'record dropped');
    }
    this.metrics.observe('whanau_lookup_messages', out.messages, { result: record ? 'found' : 'not-found' });
    return { record, messages: out.messages, tries: out.tries, notReady: false };
  }

  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    this.timer?.cancel();
    this.relays?.stop();
    await this.endpoint.close();
    this.book.close();
  }
}
