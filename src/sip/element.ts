import type { AdmissionControl } from './admission.ts';
import { randomBytes } from 'node:crypto';
import type { Clock } from '../util/clock.ts';
import { silentLogger, type Logger } from '../util/log.ts';
import type { Result } from '../util/errors.ts';
import { getHeader, type Header, type SipRequest, type SipResponse, type SipUri } from './message.ts';
import { buildResponse } from './response.ts';
import type { TimerValues } from './timers.ts';
import type { ClientEvents } from './transaction-client-invite.ts';
import { type ClientTransaction, MAGIC_COOKIE, type ServerTransaction, TransactionLayer } from './transaction-layer.ts';
import type { InviteServerTransaction } from './transaction-server-invite.ts';
import { type Peer, type SipTransport, type TransportName, uriHost } from './transport.ts';
import { parseRequestUri } from './uri.ts';

export interface RespondOptions {
  headers?: Header[];
  body?: Uint8Array;
}

/**
 * A request handed to the application, with its server transaction. An INVITE has had its 100 Trying (or has it
 * deferred, ElementInit.tryingDelayMs);
 * the application may answer at once or later (asynchronously), and learns about a CANCEL through `onCancel`.
 */
export class IncomingRequest {
  readonly request: SipRequest;
  readonly source: Peer;
  readonly transaction: ServerTransaction;
  /** Server header value added to the responses built here (RFC 3261 20.35); set by the front door. */
  serverName: string | undefined = undefined;
  private cancelListeners: Array<() => void> | undefined = undefined;
  private _cancelled = false;

  constructor(request: SipRequest, source: Peer, transaction: ServerTransaction) {
    this.request = request;
    this.source = source;
    this.transaction = transaction;
  }

  get method(): string {
    return this.request.method;
  }

  private parsedUri: Result<SipUri> | undefined = undefined;

  /**
   * The Request-URI parsed (parseRequestUri), once per request however many of the server's steps look at it
   * (a relay check, the lookup, the loop check of a redirect). Treated as immutable.
   */
  get requestUri(): Result<SipUri> {
    this.parsedUri ??= parseRequestUri(this.request.uri);
    return this.parsedUri;
  }

  /**
   * Whether the application has authenticated the sender (e.g. by digest, RFC 3261 section 22). Until it sets
   * this, every response goes back only where the request came from (the UDP source, or the TCP connection it
   * arrived on: never a new connection) and the top Via's `maddr` is ignored; set it before responding to let the
   * responses be routed by the Via as RFC 3261 18.2.2 says (response-route.ts).
   */
  get authenticated(): boolean {
    return this.transaction.authenticated;
  }

  set authenticated(yes: boolean) {
    this.transaction.authenticated = yes;
  }

  get cancelled(): boolean {
    return this._cancelled;
  }

  get finalSent(): boolean {
    return this.transaction.finalSent;
  }

  /** Called once a final response went out (the element stops tracking the request for CANCEL). */
  onFinal: () => void = noop;

  /** Build (8.2.6) and send a response; the To tag is the transaction's. Ignored by the transaction once final. */
  respond(status: number, reason?: string, opts: RespondOptions = {}): SipResponse {
    const headers =
      this.serverName === undefined ? opts.headers : [...(opts.headers ?? []), serverHeader(this.serverName)];
    const resp = buildResponse(this.request, status, reason, {
      toTag: this.transaction.toTag,
      headers,
      body: opts.body,
    });
    this.sendResponse(resp);
    return resp;
  }

  /**
   * Pass a ready-made response to the transaction. One the server built itself gets its Server header here; a
   * relayed one (a proxy's) does not, since the front door leaves `serverName` unset for requests it relays.
   */
  sendResponse(resp: SipResponse): void {
    if (this.serverName !== undefined && getHeader(resp, 'Server') === undefined)
      resp.headers.push(serverHeader(this.serverName));
    this.transaction.respond(resp);
    if (resp.status >= 200) this.onFinal();
  }

  onCancel(fn: () => void): void {
    if (this._cancelled) fn();
    else (this.cancelListeners ??= []).push(fn);
  }

  /** @internal called by the element when a CANCEL matched this INVITE. */
  cancel(): void {
    if (this._cancelled) return;
    this._cancelled = true;
    const ls = this.cancelListeners;
    this.cancelListeners = undefined;
    if (ls) for (const fn of ls) fn();
  }
}

export interface ElementHooks {
  /** Every new request except ACK and CANCEL. May return a promise; a throw or rejection before a final response gets 500. */
  onRequest(inc: IncomingRequest): void | Promise<void>;
  /** ACK outside any transaction (the ACK for a 2xx). */
  onAck?(req: SipRequest, source: Peer): void;
  onStrayResponse?(resp: SipResponse, source: Peer): void;
}

export interface ElementInit {
  timers?: TimerValues;
  /**
   * Defer the 100 Trying of an INVITE server transaction this long (RFC 3261 17.2.1 allows none when the TU
   * answers within 200 ms): a server that answers from memory then sends one datagram per INVITE. Without it the
   * 100 goes out before the application sees the INVITE.
   */
  tryingDelayMs?: number;
  /** Admission control in front of the transaction layer (admission.ts): new requests beyond capacity get 503. */
  admission?: AdmissionControl;
  /** Server / User-Agent header value. */
  product?: string;
  /**
   * The address others reach this element at, for Via sent-by and Contact (util/advertise.ts): required in effect
   * when the transport is bound to a wildcard; the port defaults to the bound one (a NAT may forward another).
   */
  advertise?: { host: string; port?: number };
}

/**
 * A SIP element: one transport, the transaction layer above it, and an application's request handler on top.
 * The SecP2PSIP adapter, the WhanauSIP gateway, the registrar and the user agent all build on it.
 */
export class SipElement {
  readonly transport: SipTransport;
  readonly layer: TransactionLayer;
  readonly clock: Clock;
  readonly log: Logger;
  readonly product: string;
  private readonly advertise: { host: string; port?: number } | undefined;
  /** Requests whose handler threw or rejected (answered 500). */
  readonly stats = { handlerErrors: 0 };
  private hooks: ElementHooks | undefined;
  private readonly pending = new Map<InviteServerTransaction, IncomingRequest>();

  constructor(components: { transport: SipTransport; clock: Clock; logger?: Logger }, init: ElementInit = {}) {
    this.transport = components.transport;
    this.clock = components.clock;
    this.log = components.logger ?? silentLogger;
    this.product = init.product ?? 'secp2psip';
    this.advertise = init.advertise;
    this.layer = new TransactionLayer(
      { transport: this.transport, clock: this.clock, newTag: () => newToken(8), logger: this.log },
      { timers: init.timers, tryingDelayMs: init.tryingDelayMs, admission: init.admission },
    );
    if (init.admission) this.transport.admitWith?.(init.admission);
    this.layer.setUser({
      onRequest: (req, tx, source) => this.dispatch(req, tx, source),
      onAck: (req, source) => this.hooks?.onAck?.(req, source),
      onStrayResponse: (resp, source) => this.hooks?.onStrayResponse?.(resp, source),
      onCancel: (invite) => this.cancelInvite(invite),
    });
  }

  handle(hooks: ElementHooks): void {
    this.hooks = hooks;
  }

  /** `host:port` others reach this element at, for Via and Contact: the advertised address, else the bound one. */
  get hostport(): string {
    const a = this.advertise;
    if (a) return `${uriHost(a.host)}:${a.port ?? this.transport.local.port}`;
    return `${uriHost(this.transport.local.host)}:${this.transport.local.port}`;
  }

  /** A fresh RFC 3261 branch (8.1.1.7): magic cookie plus 64 random bits. */
  newBranch(): string {
    return `${MAGIC_COOKIE}${newToken(12)}`;
  }

  /** The Via value this element puts on a request it sends over `transport` (with rport, RFC 3581 section 3). */
  via(transport: TransportName, branch = this.newBranch()): string {
    return `SIP/2.0/${transport} ${this.hostportOf(transport)};branch=${branch};rport`;
  }

  /** `host:port` where this element takes `transport` (TLS, WS and WSS listen on ports of their own). */
  hostportOf(transport: TransportName): string {
    if (transport === 'UDP' || transport === 'TCP') return this.hostport;
    const port = this.transport.portOf?.(transport) ?? this.transport.local.port;
    // Never a wildcard: a listener bound to one advertises what the element advertises.
    const own = this.transport.hostOf?.(transport);
    const host = this.advertise?.host ?? (own && own !== '0.0.0.0' && own !== '::' ? own : this.transport.local.host);
    return `${uriHost(host)}:${port}`;
  }

  /** Start a client transaction. The request must carry its top Via (see `via`). */
  request(req: SipRequest, dest: Peer, events: ClientEvents = {}): ClientTransaction {
    return this.layer.sendRequest(req, dest, events);
  }

  /** Send a request with no transaction (the ACK for a 2xx, 13.2.2.4). */
  sendStateless(req: SipRequest, dest: Peer): void {
    this.transport.send(req, dest);
  }

  close(): Promise<void> {
    return this.transport.close();
  }

  private dispatch(req: SipRequest, tx: ServerTransaction, source: Peer): void {
    const inc = new IncomingRequest(req, source, tx);
    if (req.method === 'INVITE') {
      const itx = tx as InviteServerTransaction;
      this.pending.set(itx, inc);
      // Closures on the per-request path are assigned, not declared: the TypeScript loader names declared
      // ones with a property definition each, which is measurable at thousands of requests per second.
      inc.onFinal = () => this.pending.delete(itx);
      itx.onTerminated(inc.onFinal);
    }
    if (!this.hooks) {
      inc.respond(503, 'Service Unavailable');
      return;
    }
    try {
      const r = this.hooks.onRequest(inc);
      if (r && typeof (r as Promise<void>).then === 'function')
        (r as Promise<void>).catch((e: unknown) => this.handlerFailed(inc, e));
    } catch (e) {
      this.handlerFailed(inc, e);
    }
  }

  /** A request handler threw or rejected: counted, logged, and answered 500 if nothing final went out yet. */
  private handlerFailed(inc: IncomingRequest, e: unknown): void {
    this.stats.handlerErrors++;
    this.log.warn({ err: (e as Error)?.message, method: inc.request.method }, 'request handler failed');
    if (!inc.transaction.finalSent) inc.respond(500, 'Server Internal Error');
  }

  private cancelInvite(invite: InviteServerTransaction): void {
    const inc = this.pending.get(invite);
    if (inc) {
      try {
        inc.cancel();
      } catch (e) {
        this.log.warn({ err: (e as Error).message }, 'cancel listener failed');
      }
    }
    // 9.2: "the UAS ... SHOULD respond to the INVITE with a 487 (Request Terminated)" unless a listener answered.
    const req = invite.request;
    if (req && !invite.finalSent) invite.respond(buildResponse(req, 487, undefined, { toTag: invite.toTag }));
  }
}

function noop(): void {}

/** The last Server header made: every response of a server carries the same one (headers are not mutated). */
let lastServer: Header = { name: 'Server', value: '' };

function serverHeader(value: string): Header {
  if (lastServer.value !== value) lastServer = { name: 'Server', value };
  return lastServer;
}

const POOL_SIZE = 4096;
let pool = randomBytes(POOL_SIZE);
let poolAt = 0;

/**
 * Random hex token for tags and branches (19.3: tags and branches must be unique and hard to guess). Drawn from a
 * pooled buffer of cryptographic randomness so a busy element does not make one system call per token.
 */
export function newToken(bytes: number): string {
  if (poolAt + bytes > POOL_SIZE) {
    pool = randomBytes(POOL_SIZE);
    poolAt = 0;
  }
  const s = pool.toString('hex', poolAt, poolAt + bytes);
  poolAt += bytes;
  return s;
}
