/**
 * Circuit relays (as libp2p's circuit relay v2): a node that cannot be dialled
 * (behind a NAT without a port forward) keeps links to a few public nodes that
 * agreed to relay for it, and others reach it *through* them.
 *
 * What a relay carries is a byte stream, not requests: the caller runs the same
 * TLS 1.3 handshake with mutual authentication and the pinned key it would run
 * over TCP (tls-endpoint.ts), end to end with the client, and the relay only
 * moves the ciphertext. So a relay learns what an on-path router would (who
 * talks to whom, when, how much) and can change nothing: an altered, dropped,
 * replayed or reordered record fails TLS's AEAD check and the connection
 * closes; the caller's key is proven to the client by TLS, not asserted by the
 * relay. Everything above (Chord, SECP2PSIP, the SIP the adapters carry)
 * runs on that connection unchanged, so messages signed or sealed end to end
 * stay so.
 *
 * Protocol (RPC methods on the links both ends opened to the relay):
 * - `relay.register` client -> relay: serve me; refused past `maxClients`.
 * - `relay.open {to, circ}` caller -> relay: a circuit to the client with key
 *   `to`; the relay asks the client (`relay.incoming {circ}`) over the link
 *   the client opened, then answers. Bounded per second.
 * - `relay.data {circ, seq, b}` either end -> relay -> the other end; bounded
 *   per second per circuit end, counted in bytes.
 * - `relay.close {circ}` either end -> relay -> the other end.
 *
 * A client's address is `relay:<addr>~<key>|...` (formatRelayAddr): each relay's
 * ring address and key, base64url; its NodeRef keeps its own key, which the TLS
 * handshake over the circuit pins.
 */
import type { Duplex } from 'node:stream';
import type { Socket } from 'node:net';
import type { Clock } from '../util/clock.ts';
import { OverlayError } from '../util/errors.ts';
import { type Logger, silentLogger } from '../util/log.ts';
import { TokenBuckets } from '../util/token-bucket.ts';
import { CircuitStream, FORWARD_TIMEOUT_MS, MAX_CHUNK, parseRelayAddr } from './relay-circuit.ts';
import { hostOf, PUNCH_MS, pickPort, simultaneousOpen } from './relay-punch.ts';
import { keyHex } from './tls-dial.ts';
import type { Caller, NodeRef, Payload, RequestHandler } from './types.ts';

export const RELAY_METHOD = {
  REGISTER: 'relay.register',
  OPEN: 'relay.open',
  INCOMING: 'relay.incoming',
  DATA: 'relay.data',
  CLOSE: 'relay.close',
  PUNCH: 'relay.punch',
} as const;

export { CircuitStream, formatRelayAddr, isRelayAddr, parseRelayAddr, RELAY_PREFIX } from './relay-circuit.ts';
export { PUNCH_MS } from './relay-punch.ts';

export interface RelayLimits {
  /** Clients one relay serves at once. */
  maxClients: number;
  /** Circuits opened through this relay per second (a burst of twice as many). */
  opensPerSecond: number;
  /** Data messages relayed per second per circuit end (a burst of twice as many). */
  messagesPerSecond: number;
  /** Circuits one client may have open at once. */
  maxCircuitsPerClient: number;
}

export const DEFAULT_RELAY_LIMITS: Readonly<RelayLimits> = Object.freeze({
  maxClients: 64,
  opensPerSecond: 50,
  messagesPerSecond: 2000,
  maxCircuitsPerClient: 64,
});

export interface RelayStats {
  /** Relay side. */
  clients: number;
  registrationsRefused: number;
  circuitsOpened: number;
  circuitsRefused: number;
  messagesRelayed: number;
  bytesRelayed: number;
  messagesRefused: number;
  /** Client and caller side. */
  circuitsDialled: number;
  circuitsAccepted: number;
  /** Direct connections by TCP simultaneous open, made or failed (then the circuit is used). */
  punchedDirect: number;
  punchFailed: number;
  /** Relay side: punches coordinated. */
  punchesCoordinated: number;
}

/** What the relay needs of its endpoint: requests that use only an open link to a key, never a new connection. */
export interface RelayHost {
  readonly self: NodeRef;
  readonly clock: Clock;
  request(
    to: NodeRef,
    method: string,
    payload: Payload,
    opts?: { timeoutMs?: number; linkOnly?: boolean },
  ): Promise<Payload>;
  /** Run the server side of TLS over a circuit that reached us (we are the client behind a NAT). */
  acceptStream(stream: Duplex): void;
}

interface Circuit {
  /** Hex keys of both ends. */
  a: string;
  c: string;
  aKey: Uint8Array;
  cKey: Uint8Array;
}

/** The circuit id the end at `toA` (the caller) or the client knows (see RelayService.resolve). */
function wireCirc(id: string, toA: boolean): string {
  return toA ? id.slice(id.indexOf(':') + 1) : id;
}

function hexOf(caller: Caller): string {
  return keyHex(caller.key);
}

function field<T>(p: Payload, name: string, check: (v: unknown) => v is T): T | undefined {
  const v = typeof p === 'object' && p !== null ? (p as Record<string, unknown>)[name] : undefined;
  return check(v) ? v : undefined;
}
const isBytes = (v: unknown): v is Uint8Array => v instanceof Uint8Array;
const isStr = (v: unknown): v is string => typeof v === 'string' && v.length > 0 && v.length <= 64;
const isNum = (v: unknown): v is number => typeof v === 'number' && Number.isInteger(v) && v >= 0;

/**
 * Both roles of the relay protocol on one endpoint: the relay (for nodes that
 * registered with us) and the ends of circuits (ours as a client behind a NAT,
 * or as a caller reaching one).
 */
export class RelayService {
  readonly stats: RelayStats = {
    clients: 0,
    registrationsRefused: 0,
    circuitsOpened: 0,
    circuitsRefused: 0,
    messagesRelayed: 0,
    bytesRelayed: 0,
    messagesRefused: 0,
    circuitsDialled: 0,
    circuitsAccepted: 0,
    punchedDirect: 0,
    punchFailed: 0,
    punchesCoordinated: 0,
  };
  /** Try a direct connection by TCP simultaneous open before a circuit (default true). */
  punch: boolean;
  readonly limits: Readonly<RelayLimits>;
  /** Whether this node relays for others (a public ring member); a client behind a NAT does not. */
  serving: boolean;
  /** Relay side: registered clients by key hex, and their circuits. */
  private readonly clients = new Map<string, { key: Uint8Array; circuits: Set<string>; addr: string }>();
  private readonly circuits = new Map<string, Circuit>();
  /** Our circuit ends, by `<relay key hex>/<circ>`. */
  private readonly ends = new Map<string, CircuitStream>();
  /** Client side: the relays we registered with (key hex), the only ones whose circuits we take. */
  private readonly myRelays = new Set<string>();
  private readonly opens: TokenBuckets;
  private readonly data: TokenBuckets;
  private readonly log: Logger;
  private nextCirc = 0;

  constructor(
    private readonly host: RelayHost,
    o: { serving?: boolean; punch?: boolean; limits?: Partial<RelayLimits>; logger?: Logger } = {},
  ) {
    this.limits = Object.freeze({ ...DEFAULT_RELAY_LIMITS, ...o.limits });
    this.serving = o.serving ?? true;
    this.punch = o.punch ?? true;
    this.opens = new TokenBuckets(
      host.clock,
      { burst: 2 * this.limits.opensPerSecond, perSecond: this.limits.opensPerSecond },
      1,
    );
    this.data = new TokenBuckets(host.clock, {
      burst: 2 * this.limits.messagesPerSecond,
      perSecond: this.limits.messagesPerSecond,
    });
    this.log = (o.logger ?? silentLogger).child({ component: 'relay' });
  }

  /** Circuits through this relay now. */
  get circuitCount(): number {
    return this.circuits.size;
  }

  /** The methods this service answers, for the endpoint's dispatch. */
  handles(method: string): boolean {
    return method.startsWith('relay.');
  }

  handle: RequestHandler = (method, payload, caller) => {
    switch (method) {
      case RELAY_METHOD.REGISTER:
        return this.register(caller);
      case RELAY_METHOD.OPEN:
        return this.open(payload, caller);
      case RELAY_METHOD.INCOMING:
        return this.incoming(payload, caller);
      case RELAY_METHOD.DATA:
        return this.onData(payload, caller);
      case RELAY_METHOD.CLOSE:
        return this.onClose(payload, caller);
      case RELAY_METHOD.PUNCH:
        return this.onPunch(payload, caller);
      default:
        throw new OverlayError('RPC_MALFORMED', `unknown method ${method}`);
    }
  };

  // ---- client side ----

  /** Ask `relay` to serve us; true when it agreed. */
  async registerWith(relay: NodeRef, timeoutMs = 3000): Promise<boolean> {
    try {
      const a = await this.host.request(relay, RELAY_METHOD.REGISTER, {}, { timeoutMs });
      if (field(a, 'ok', (v): v is boolean => v === true)) {
        this.myRelays.add(keyHex(relay.key));
        return true;
      }
    } catch (e) {
      this.log.info({ relay: relay.addr, err: (e as Error).message }, 'relay refused or unreachable');
    }
    return false;
  }

  private incoming(payload: Payload, caller: Caller): Payload {
    const circ = field(payload, 'circ', isStr);
    if (!circ) throw new OverlayError('RPC_MALFORMED', 'relay.incoming without circ');
    if (!this.myRelays.has(hexOf(caller))) throw new OverlayError('RPC_REFUSED', 'not one of our relays');
    const stream = this.endFor(caller.key, circ);
    this.stats.circuitsAccepted++;
    // We are the one dialled: the server side of TLS runs here, as on an accepted TCP connection.
    this.host.acceptStream(stream);
    return { ok: true };
  }

  // ---- caller side ----

  /** A byte stream to the client `to` (its address names its relays), through the first relay that opens one. */
  async dialThrough(to: NodeRef, timeoutMs: number): Promise<Duplex> {
    const relays = parseRelayAddr(to.addr);
    if (!relays.ok) throw new OverlayError('RPC_UNREACHABLE', relays.error);
    let last = 'no relay';
    for (const relay of relays.value) {
      if (keyHex(relay.key) === keyHex(this.host.self.key)) continue;
      const circ = `${keyHex(this.host.self.key).slice(0, 8)}-${this.nextCirc++}`;
      const stream = this.endFor(relay.key, circ, relay);
      try {
        await this.host.request(relay, RELAY_METHOD.OPEN, { to: to.key, circ }, { timeoutMs });
        this.stats.circuitsDialled++;
        return stream;
      } catch (e) {
        this.ends.delete(`${keyHex(relay.key)}/${circ}`);
        last = `${relay.addr}: ${(e as Error).message}`;
      }
    }
    throw new OverlayError('RPC_UNREACHABLE', `no relay opened a circuit (${last})`);
  }

  private endFor(relayKey: Uint8Array, circ: string, relay?: NodeRef): CircuitStream {
    const ref: NodeRef = relay ?? { id: '', addr: '', key: relayKey };
    const k = `${keyHex(relayKey)}/${circ}`;
    const stream = new CircuitStream(
      (seq, b) =>
        this.host.request(ref, RELAY_METHOD.DATA, { circ, seq, b }, { timeoutMs: FORWARD_TIMEOUT_MS, linkOnly: true }),
      () => {
        this.host
          .request(ref, RELAY_METHOD.CLOSE, { circ }, { timeoutMs: FORWARD_TIMEOUT_MS, linkOnly: true })
          .catch(() => {});
      },
    );
    stream.on('close', () => this.ends.delete(k));
    this.ends.set(k, stream);
    return stream;
  }

  /** Data or close for one of our ends (`caller` is the relay), or, as a relay, for a circuit through us. */
  private onData(payload: Payload, caller: Caller): Payload {
    const circ = field(payload, 'circ', isStr);
    const seq = field(payload, 'seq', isNum);
    const b = field(payload, 'b', isBytes);
    if (!circ || seq === undefined || !b || b.length > MAX_CHUNK)
      throw new OverlayError('RPC_MALFORMED', 'bad relay.data');
    const end = this.ends.get(`${hexOf(caller)}/${circ}`);
    if (end) {
      end.deliver(seq, b);
      return {};
    }
    return this.forward(circ, caller, RELAY_METHOD.DATA, { circ, seq, b }, b.length);
  }

  private onClose(payload: Payload, caller: Caller): Payload {
    const circ = field(payload, 'circ', isStr);
    if (!circ) throw new OverlayError('RPC_MALFORMED', 'bad relay.close');
    const end = this.ends.get(`${hexOf(caller)}/${circ}`);
    if (end) {
      end.remoteClosed();
      return {};
    }
    const r = this.resolve(circ, hexOf(caller));
    if (r) {
      this.dropCircuit(r.id, r.c);
      const toA = r.c.c === hexOf(caller);
      this.host
        .request(
          { id: '', addr: '', key: toA ? r.c.aKey : r.c.cKey },
          RELAY_METHOD.CLOSE,
          { circ: wireCirc(r.id, toA) },
          { linkOnly: true },
        )
        .catch(() => {});
    }
    return {};
  }

  // ---- direct connections: TCP simultaneous open, coordinated through a relay ----

  /**
   * A direct TCP connection to the client `to`, by simultaneous open: through a relay, each side learns the
   * address the other's NAT shows (the relay saw it on their links) and a port the other picked, then both dial
   * each other at once from the port they picked, so each NAT sees the other's SYN as the answer to its own
   * outgoing one. Works through NATs that keep the source port (Linux MASQUERADE does when it is free) and let a
   * SYN answer a SYN; fails (undefined) otherwise, within `timeoutMs`.
   */
  async punchThrough(to: NodeRef, timeoutMs: number): Promise<Socket | undefined> {
    const relays = parseRelayAddr(to.addr);
    if (!this.punch || !relays.ok) return undefined;
    const relay = relays.value.find((r) => keyHex(r.key) !== keyHex(this.host.self.key));
    if (!relay) return undefined;
    const port = pickPort();
    try {
      const a = await this.host.request(relay, RELAY_METHOD.PUNCH, { to: to.key, port }, { timeoutMs });
      const ip = field(a, 'ip', isStr);
      const theirs = field(a, 'port', isNum);
      if (!ip || !theirs) throw new Error('no address');
      const sock = await simultaneousOpen(port, ip, theirs, timeoutMs);
      this.stats.punchedDirect++;
      this.log.info(
        { to: `${ip}:${theirs}`, from: port },
        'direct connection to a node behind a NAT (TCP simultaneous open)',
      );
      return sock;
    } catch (e) {
      this.stats.punchFailed++;
      this.log.info({ err: (e as Error).message }, 'no direct connection; using a relay circuit');
      return undefined;
    }
  }

  private async onPunch(payload: Payload, caller: Caller): Promise<Payload> {
    const port = field(payload, 'port', isNum);
    if (port === undefined || port < 1024 || port > 65535) throw new OverlayError('RPC_MALFORMED', 'bad relay.punch');
    const to = field(payload, 'to', isBytes);
    const ip = field(payload, 'ip', isStr);
    if (ip !== undefined) {
      // We are the client: dial back at once from a port of ours, and serve TLS on what connects.
      if (!this.myRelays.has(hexOf(caller))) throw new OverlayError('RPC_REFUSED', 'not one of our relays');
      const mine = pickPort();
      simultaneousOpen(mine, ip, port, PUNCH_MS).then(
        (sock) => {
          this.stats.punchedDirect++;
          this.log.info(
            { to: `${ip}:${port}`, from: mine },
            'direct connection from behind our NAT (TCP simultaneous open)',
          );
          this.host.acceptStream(sock);
        },
        () => this.stats.punchFailed++,
      );
      return { port: mine };
    }
    // We are the relay: tell the client where the caller is, and the caller where the client is.
    const client = to?.length === 32 ? this.clients.get(keyHex(to)) : undefined;
    if (!client || !to) throw new OverlayError('RPC_REFUSED', 'no such client here');
    if (!this.opens.take('')) throw new OverlayError('RPC_REFUSED', 'too many circuits per second');
    const callerIp = hostOf(caller.addr);
    const a = await this.host.request(
      { id: '', addr: '', key: to },
      RELAY_METHOD.PUNCH,
      { ip: callerIp, port },
      { timeoutMs: FORWARD_TIMEOUT_MS, linkOnly: true },
    );
    const theirs = field(a, 'port', isNum);
    if (theirs === undefined) throw new OverlayError('RPC_REFUSED', 'client did not answer the punch');
    this.stats.punchesCoordinated++;
    return { ip: hostOf(client.addr), port: theirs };
  }

  // ---- relay side ----

  private register(caller: Caller): Payload {
    const k = hexOf(caller);
    if (!this.serving) throw new OverlayError('RPC_REFUSED', 'this node does not relay');
    const known = this.clients.get(k);
    // Its NAT's mapping for the link may have changed (a new link): the address punches are aimed at follows it.
    if (known) known.addr = caller.addr;
    if (!known) {
      if (this.clients.size >= this.limits.maxClients) {
        this.stats.registrationsRefused++;
        throw new OverlayError('RPC_REFUSED', `relay full (${this.limits.maxClients} clients)`);
      }
      this.clients.set(k, { key: caller.key, circuits: new Set(), addr: caller.addr });
      this.stats.clients = this.clients.size;
      this.log.info({ client: k.slice(0, 12), from: caller.addr }, 'relaying for a client');
    }
    return { ok: true };
  }

  private async open(payload: Payload, caller: Caller): Promise<Payload> {
    const to = field(payload, 'to', isBytes);
    const circ = field(payload, 'circ', isStr);
    if (to?.length !== 32 || !circ) throw new OverlayError('RPC_MALFORMED', 'bad relay.open');
    const client = this.clients.get(keyHex(to));
    const refuse = (why: string): never => {
      this.stats.circuitsRefused++;
      throw new OverlayError('RPC_REFUSED', why);
    };
    if (!client) return refuse('no such client here');
    if (!this.opens.take('')) return refuse('too many circuits per second');
    if (client.circuits.size >= this.limits.maxCircuitsPerClient) return refuse('client has too many circuits');
    const id = `${hexOf(caller).slice(0, 8)}:${circ}`;
    if (this.circuits.has(id)) return refuse('circuit exists');
    // The circuit id on the wire is the relay's, so two callers cannot collide on one.
    try {
      await this.host.request(
        { id: '', addr: '', key: to },
        RELAY_METHOD.INCOMING,
        { circ: id },
        { timeoutMs: FORWARD_TIMEOUT_MS, linkOnly: true },
      );
    } catch (e) {
      // The client's link is gone: it is no longer ours to serve until it registers again.
      this.clients.delete(keyHex(to));
      this.stats.clients = this.clients.size;
      return refuse(`client unreachable: ${(e as Error).message}`);
    }
    this.circuits.set(id, { a: hexOf(caller), c: keyHex(to), aKey: caller.key, cKey: to });
    client.circuits.add(id);
    this.stats.circuitsOpened++;
    // The caller's end goes by the caller's own circ id; map it to ours.
    this.alias.set(`${hexOf(caller)}/${circ}`, id);
    return { ok: true };
  }

  /** Caller-side circuit ids -> the relay's. */
  private readonly alias = new Map<string, string>();

  private async forward(
    circ: string,
    caller: Caller,
    method: string,
    p: { circ: string; seq?: number; b?: Uint8Array },
    bytes: number,
  ): Promise<Payload> {
    const from = hexOf(caller);
    const r = this.resolve(circ, from);
    if (!r) throw new OverlayError('RPC_REFUSED', 'no such circuit');
    const { id, c } = r;
    if (!this.data.take(`${from}/${id}`)) {
      this.stats.messagesRefused++;
      throw new OverlayError('RPC_REFUSED', 'circuit over its rate');
    }
    const toA = c.c === from;
    this.stats.messagesRelayed++;
    this.stats.bytesRelayed += bytes;
    await this.host.request(
      { id: '', addr: '', key: toA ? c.aKey : c.cKey },
      method,
      { ...p, circ: wireCirc(id, toA) },
      { timeoutMs: FORWARD_TIMEOUT_MS, linkOnly: true },
    );
    return {};
  }

  /** A circuit through us as one of its ends names it: the client by our id, the caller by the one it chose. */
  private resolve(circ: string, from: string): { id: string; c: Circuit } | undefined {
    const id = this.circuits.has(circ) ? circ : this.alias.get(`${from}/${circ}`);
    const c = id === undefined ? undefined : this.circuits.get(id);
    return c && id !== undefined && (c.a === from || c.c === from) ? { id, c } : undefined;
  }

  private dropCircuit(id: string, c: Circuit): void {
    this.circuits.delete(id);
    this.clients.get(c.c)?.circuits.delete(id);
    this.alias.delete(`${c.a}/${id.slice(id.indexOf(':') + 1)}`);
  }

  /**
   * Relay side: every link to the node with this key closed. A client must register again; circuits it was an
   * end of (as client or caller) are gone with the link, and their other end is told.
   */
  peerGone(key: Uint8Array): void {
    const k = keyHex(key);
    for (const [id, c] of this.circuits) {
      if (c.a !== k && c.c !== k) continue;
      this.dropCircuit(id, c);
      const toA = c.c === k;
      this.host
        .request(
          { id: '', addr: '', key: toA ? c.aKey : c.cKey },
          RELAY_METHOD.CLOSE,
          { circ: wireCirc(id, toA) },
          { linkOnly: true },
        )
        .catch(() => {});
    }
    if (this.clients.delete(k)) this.stats.clients = this.clients.size;
  }
}
