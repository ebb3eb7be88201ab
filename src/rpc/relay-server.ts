/**
 * The relay's side of the relay protocol (rpc/relay.ts): the clients behind NATs that registered with us, the
 * circuits between them and their callers, and the punches coordinated for them. A relay moves the bytes of a
 * circuit without reading them (TLS runs end to end over it) and bounds what it does: clients served, circuits
 * opened per second and per client, messages per second per circuit end.
 */
import type { Logger } from '../util/log.ts';
import { OverlayError } from '../util/errors.ts';
import { TokenBuckets } from '../util/token-bucket.ts';
import { FORWARD_TIMEOUT_MS } from './relay-circuit.ts';
import {
  field,
  hexOf,
  isBytes,
  isNum,
  isStr,
  RELAY_METHOD,
  type RelayHost,
  type RelayLimits,
  type RelayStats,
} from './relay-protocol.ts';
import { hostOf } from './relay-punch.ts';
import { keyHex } from './tls-dial.ts';
import type { Caller, Payload } from './types.ts';

interface Circuit {
  /** Hex keys of both ends. */
  a: string;
  c: string;
  aKey: Uint8Array;
  cKey: Uint8Array;
}

/** The circuit id the end at `toA` (the caller) or the client knows (see RelayServer.resolve). */
function wireCirc(id: string, toA: boolean): string {
  return toA ? id.slice(id.indexOf(':') + 1) : id;
}

export class RelayServer {
  /** Whether this node relays for others (a public ring member); a client behind a NAT does not. */
  serving: boolean;
  /** Registered clients by key hex, and their circuits. */
  private readonly clients = new Map<string, { key: Uint8Array; circuits: Set<string>; addr: string }>();
  private readonly circuits = new Map<string, Circuit>();
  /** Caller-side circuit ids -> the relay's. */
  private readonly alias = new Map<string, string>();
  private readonly opens: TokenBuckets;
  private readonly data: TokenBuckets;

  constructor(
    private readonly host: RelayHost,
    private readonly limits: Readonly<RelayLimits>,
    private readonly stats: RelayStats,
    private readonly log: Logger,
    serving: boolean,
  ) {
    this.serving = serving;
    this.opens = new TokenBuckets(
      host.clock,
      { burst: 2 * limits.opensPerSecond, perSecond: limits.opensPerSecond },
      1,
    );
    this.data = new TokenBuckets(host.clock, {
      burst: 2 * limits.messagesPerSecond,
      perSecond: limits.messagesPerSecond,
    });
  }

  /** Circuits through this relay now. */
  get circuitCount(): number {
    return this.circuits.size;
  }

  register(caller: Caller): Payload {
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

  async open(payload: Payload, caller: Caller): Promise<Payload> {
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

  /** Data (or another message) from one end of a circuit through us, passed to the other end within its rate. */
  async forward(
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

  /** Forget the circuit and tell its other end (`toA`: the caller's) that it is closed. */
  private closeCircuit(id: string, c: Circuit, toA: boolean): void {
    this.circuits.delete(id);
    this.clients.get(c.c)?.circuits.delete(id);
    this.alias.delete(`${c.a}/${id.slice(id.indexOf(':') + 1)}`);
    this.host
      .request(
        { id: '', addr: '', key: toA ? c.aKey : c.cKey },
        RELAY_METHOD.CLOSE,
        { circ: wireCirc(id, toA) },
        { linkOnly: true },
      )
      .catch(() => {});
  }

  /** `relay.close` from one end of a circuit through us: it is gone, and the other end is told. */
  close(circ: string, caller: Caller): void {
    const r = this.resolve(circ, hexOf(caller));
    if (r) this.closeCircuit(r.id, r.c, r.c.c === hexOf(caller));
  }

  /** `relay.punch` from a caller: tell the client where the caller is, and the caller where the client is. */
  async coordinatePunch(to: Uint8Array | undefined, port: number, caller: Caller): Promise<Payload> {
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

  /**
   * Every link to the node with this key closed. A client must register again; circuits it was an
   * end of (as client or caller) are gone with the link, and their other end is told.
   */
  peerGone(key: Uint8Array): void {
    const k = keyHex(key);
    for (const [id, c] of this.circuits) if (c.a === k || c.c === k) this.closeCircuit(id, c, c.c === k);
    if (this.clients.delete(k)) this.stats.clients = this.clients.size;
  }
}
