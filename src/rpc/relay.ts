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
 *
 * This file is the circuit's ends (a client's, a caller's) and the dispatch;
 * the relay's side is relay-server.ts, the method names, limits and counters
 * relay-protocol.ts, the byte stream and addresses relay-circuit.ts, the
 * simultaneous open relay-punch.ts.
 */
import type { Socket } from 'node:net';
import type { Duplex } from 'node:stream';
import { OverlayError } from '../util/errors.ts';
import { type Logger, silentLogger } from '../util/log.ts';
import { CircuitStream, FORWARD_TIMEOUT_MS, MAX_CHUNK, parseRelayAddr } from './relay-circuit.ts';
import {
  DEFAULT_RELAY_LIMITS,
  field,
  hexOf,
  isBytes,
  isNum,
  isStr,
  newRelayStats,
  RELAY_METHOD,
  type RelayHost,
  type RelayLimits,
  type RelayStats,
} from './relay-protocol.ts';
import { RelayServer } from './relay-server.ts';
import { PUNCH_MS, pickPort, simultaneousOpen } from './relay-punch.ts';
import { keyHex } from './tls-dial.ts';
import type { Caller, NodeRef, Payload, RequestHandler } from './types.ts';

export { CircuitStream, formatRelayAddr, isRelayAddr, parseRelayAddr, RELAY_PREFIX } from './relay-circuit.ts';
export {
  DEFAULT_RELAY_LIMITS,
  RELAY_METHOD,
  type RelayHost,
  type RelayLimits,
  type RelayStats,
} from './relay-protocol.ts';
export { PUNCH_MS } from './relay-punch.ts';

/**
 * Both roles of the relay protocol on one endpoint: the relay (for nodes that
 * registered with us) and the ends of circuits (ours as a client behind a NAT,
 * or as a caller reaching one).
 */
export class RelayService {
  readonly stats: RelayStats = newRelayStats();
  /** Try a direct connection by TCP simultaneous open before a circuit (default true). */
  punch: boolean;
  readonly limits: Readonly<RelayLimits>;
  /** The relay side: clients that registered with us and the circuits through us. */
  private readonly server: RelayServer;
  /** Our circuit ends, by `<relay key hex>/<circ>`. */
  private readonly ends = new Map<string, CircuitStream>();
  /** Client side: the relays we registered with (key hex), the only ones whose circuits we take. */
  private readonly myRelays = new Set<string>();
  private readonly log: Logger;
  private nextCirc = 0;

  constructor(
    private readonly host: RelayHost,
    o: { serving?: boolean; punch?: boolean; limits?: Partial<RelayLimits>; logger?: Logger } = {},
  ) {
    this.limits = Object.freeze({ ...DEFAULT_RELAY_LIMITS, ...o.limits });
    this.punch = o.punch ?? true;
    this.log = (o.logger ?? silentLogger).child({ component: 'relay' });
    this.server = new RelayServer(host, this.limits, this.stats, this.log, o.serving ?? true);
  }

  /** Whether this node relays for others (a public ring member); a client behind a NAT does not. */
  get serving(): boolean {
    return this.server.serving;
  }

  set serving(v: boolean) {
    this.server.serving = v;
  }

  /** Circuits through this relay now. */
  get circuitCount(): number {
    return this.server.circuitCount;
  }

  /** The methods this service answers, for the endpoint's dispatch. */
  handles(method: string): boolean {
    return method.startsWith('relay.');
  }

  handle: RequestHandler = (method, payload, caller) => {
    switch (method) {
      case RELAY_METHOD.REGISTER:
        return this.server.register(caller);
      case RELAY_METHOD.OPEN:
        return this.server.open(payload, caller);
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
    return this.server.forward(circ, caller, RELAY_METHOD.DATA, { circ, seq, b }, b.length);
  }

  private onClose(payload: Payload, caller: Caller): Payload {
    const circ = field(payload, 'circ', isStr);
    if (!circ) throw new OverlayError('RPC_MALFORMED', 'bad relay.close');
    const end = this.ends.get(`${hexOf(caller)}/${circ}`);
    if (end) {
      end.remoteClosed();
      return {};
    }
    this.server.close(circ, caller);
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
    // We are the relay.
    return this.server.coordinatePunch(to, port, caller);
  }

  /**
   * Every link to the node with this key closed. As its relay: it must register again, and circuits it was an end
   * of are gone with the link (their other end is told).
   */
  peerGone(key: Uint8Array): void {
    this.server.peerGone(key);
  }
}
