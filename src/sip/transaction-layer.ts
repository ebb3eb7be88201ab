import type { Clock } from '../util/clock.ts';
import type { AdmissionControl } from './admission.ts';
import { silentLogger, type Logger } from '../util/log.ts';
import { getTag, getTo, parseNameAddr, parseVia } from './header-values.ts';
import { getHeader, type SipMessage, type SipRequest, type SipResponse, type Via } from './message.ts';
import { buildResponse } from './response.ts';
import type { TransactionDeps } from './transaction-base.ts';
import type { TimerValues } from './timers.ts';
import { type ClientEvents, InviteClientTransaction } from './transaction-client-invite.ts';
import { NonInviteClientTransaction } from './transaction-client-non-invite.ts';
import { type InviteServerEvents, InviteServerTransaction } from './transaction-server-invite.ts';
import { NonInviteServerTransaction } from './transaction-server-non-invite.ts';
import { type InboundMessage, isStream, type Peer, type SipTransport } from './transport.ts';
import { Lingering } from './transaction-lingering.ts';
import { TimerQueue } from './timer-queue.ts';
import { responseRoutes, SATURATED_RETRANSMISSIONS, UNAUTHENTICATED_RETRANSMISSIONS } from './response-route.ts';

export type ServerTransaction = InviteServerTransaction | NonInviteServerTransaction;
export type ClientTransaction = InviteClientTransaction | NonInviteClientTransaction;

/** RFC 3261 8.1.1.7: branches of RFC 3261 elements start with this. */
export const MAGIC_COOKIE = 'z9hG4bK';

/** What the layer hands upward: the transaction user (element, registrar, proxy) implements these. */
export interface TransactionUser {
  /**
   * A request that created a new server transaction. An INVITE has had its 100 Trying already, unless the layer
   * defers it (`tryingDelayMs`): then it goes out only if the TU has not answered within that time (17.2.1).
   */
  onRequest(req: SipRequest, tx: ServerTransaction, source: Peer): void;
  /** An ACK matching no transaction: the ACK for a 2xx, which is its own transaction-less request (17.2.3, 13.3.1.4). */
  onAck?(req: SipRequest, source: Peer): void;
  /** A CANCEL matched the INVITE server transaction `invite` with no final response yet (9.2). Already answered 200. */
  onCancel?(invite: InviteServerTransaction, cancel: SipRequest): void;
  /** A response matching no client transaction (18.1.2 says the core may handle it, e.g. 2xx retransmissions). */
  onStrayResponse?(resp: SipResponse, source: Peer): void;
  /** Timer H fired on an INVITE server transaction (17.2.1): the ACK never came. */
  onServerTimeout?(tx: InviteServerTransaction): void;
}

export interface LayerStats {
  serverTransactions: number;
  clientTransactions: number;
  retransmissionsAbsorbed: number;
  strayResponses: number;
  strayCancels: number;
}

const paramOf = (v: Via, k: string): string | null | undefined => v.params.find(([n]) => n === k)?.[1];

/**
 * 17.2.3: the key a request matches server transactions by. With the magic cookie: branch, sent-by and method
 * (ACK counted as INVITE). Otherwise the RFC 2543 rule: Request-URI, From tag, Call-ID, CSeq number, top Via and
 * method class, plus the To tag for methods other than INVITE/ACK/CANCEL (the ACK's To tag is checked separately).
 */
export function serverKey(req: SipRequest, method = req.method, topVia?: Via): string | undefined {
  const top = getHeader(req, 'Via');
  if (top === undefined) return undefined;
  const via = topVia ? { ok: true as const, value: topVia } : parseVia(top);
  if (!via.ok) return undefined;
  const m = method === 'ACK' ? 'INVITE' : method;
  const branch = paramOf(via.value, 'branch');
  if (branch?.startsWith(MAGIC_COOKIE)) return `${branch}|${via.value.host}:${via.value.port ?? ''}|${m}`;
  const from = parseNameAddr(getHeader(req, 'From') ?? '');
  const fromTag = from.ok ? getTag(from.value) : undefined;
  const cseqNum = (getHeader(req, 'CSeq') ?? '').trim().split(/\s+/)[0];
  let toTag = '';
  if (m !== 'INVITE' && m !== 'CANCEL') {
    const to = getTo(req);
    toTag = (to.ok ? getTag(to.value) : undefined) ?? '';
  }
  const viaKey = top.replace(/;(received|rport)=[^;]*/g, '');
  return `2543|${req.uri}|${fromTag ?? ''}|${toTag}|${getHeader(req, 'Call-ID') ?? ''}|${cseqNum}|${viaKey}|${m}`;
}

/** 17.1.3: a response matches a client transaction by the top Via branch and the CSeq method. */
export function clientKey(msg: SipMessage): string | undefined {
  const top = getHeader(msg, 'Via');
  const via = top === undefined ? undefined : parseVia(top);
  if (!via?.ok) return undefined;
  const branch = paramOf(via.value, 'branch');
  const method = (getHeader(msg, 'CSeq') ?? '').trim().split(/\s+/)[1];
  if (!branch || !method) return undefined;
  return `${branch}|${method}`;
}

/**
 * The transaction layer: subscribes to a transport, matches messages to transactions (17.1.3, 17.2.3), creates
 * server transactions for new requests, answers CANCEL (9.2) and passes the rest to the transaction user.
 */
export class TransactionLayer {
  private readonly transport: SipTransport;
  private readonly clock: Clock;
  private readonly timers?: TimerValues;
  private readonly tryingDelayMs: number | undefined;
  private readonly admission: AdmissionControl | undefined;
  private readonly log: Logger;
  private readonly server = new Map<string, ServerTransaction>();
  /** Server transactions in their last phase, reduced to the response bytes (see TransactionDeps.linger). */
  private readonly lingering: Lingering;
  /** The timers of every transaction of the layer, on one clock timer. */
  private readonly timerQueue: TimerQueue;
  private readonly client = new Map<string, ClientTransaction>();
  private tu: TransactionUser | undefined;
  private readonly newTag: () => string;
  readonly stats: LayerStats = {
    serverTransactions: 0,
    clientTransactions: 0,
    retransmissionsAbsorbed: 0,
    strayResponses: 0,
    strayCancels: 0,
  };

  constructor(
    components: { transport: SipTransport; clock: Clock; newTag: () => string; logger?: Logger },
    init: { timers?: TimerValues; tryingDelayMs?: number; admission?: AdmissionControl } = {},
  ) {
    this.transport = components.transport;
    this.clock = components.clock;
    this.newTag = components.newTag;
    this.log = components.logger ?? silentLogger;
    this.timers = init.timers;
    this.tryingDelayMs = init.tryingDelayMs;
    this.admission = init.admission;
    this.lingering = new Lingering(this.clock);
    this.timerQueue = new TimerQueue(this.clock);
    this.transport.onMessage((m) => this.handleMessage(m));
  }

  /** Sends a lingering transaction's response bytes again (Lingering.resend). */
  private readonly resendBytes = (bytes: Buffer, to: Peer): void => this.transport.resendBytes?.(bytes, to);

  setUser(tu: TransactionUser): void {
    this.tu = tu;
  }

  /** Server transactions not yet terminated, including those reduced to their response bytes. */
  get activeServer(): number {
    return this.server.size + this.lingering.size;
  }

  get activeClient(): number {
    return this.client.size;
  }

  /** Start a client transaction for a request that already carries its top Via with a fresh branch (8.1.1.7). */
  sendRequest(req: SipRequest, dest: Peer, events: ClientEvents = {}): ClientTransaction {
    const key = clientKey(req) ?? `no-branch-${this.stats.clientTransactions}`;
    const deps = {
      clock: this.clock,
      reliable: isStream(dest.transport),
      timers: this.timers,
      timerQueue: this.timerQueue,
      send: (m: SipMessage) => this.transport.send(m, dest, () => tx.transportError()),
    };
    const tx: ClientTransaction =
      req.method === 'INVITE'
        ? new InviteClientTransaction(key, req, deps, events)
        : new NonInviteClientTransaction(key, req, deps, events);
    this.client.set(key, tx);
    this.stats.clientTransactions++;
    tx.onTerminated(() => {
      if (this.client.get(key) === tx) this.client.delete(key);
    });
    tx.start();
    return tx;
  }

  handleMessage({ msg, source, topVia, admission: verdict }: InboundMessage): void {
    if (msg.kind === 'response') {
      const key = clientKey(msg);
      const tx = key === undefined ? undefined : this.client.get(key);
      if (tx) tx.receiveResponse(msg);
      else {
        this.stats.strayResponses++;
        this.tu?.onStrayResponse?.(msg, source);
      }
      return;
    }
    const key = serverKey(msg, msg.method, topVia);
    if (key === undefined) return; // the transport only passes requests with a readable Via
    const existing = this.server.get(key);
    if (existing === undefined && this.lingering.size > 0) {
      const done = this.lingering.find(key);
      if (done >= 0) {
        // 17.2.2 Completed: a retransmitted request gets the final response again; 17.2.1 Confirmed absorbs.
        this.stats.retransmissionsAbsorbed++;
        if (msg.method !== 'ACK') this.admission?.noteRetransmission();
        this.lingering.resend(done, this.resendBytes);
        return;
      }
    }
    if (existing && !(msg.method === 'ACK' && !ackMatches(msg, existing))) {
      this.stats.retransmissionsAbsorbed++;
      if (msg.method !== 'ACK') this.admission?.noteRetransmission();
      existing.receiveRequest(msg);
      return;
    }
    if (msg.method === 'ACK') {
      this.tu?.onAck?.(msg, source);
      return;
    }
    // Admission control (admission.ts): a new transaction beyond what the process can serve is refused before any
    // state exists. A CANCEL concerns a transaction already admitted and is always taken.
    // The transport may have decided already, before parsing (UDP); otherwise it is decided here.
    const admission = this.admission;
    if (admission !== undefined && msg.method !== 'CANCEL') {
      const decided = verdict ?? admission.classify();
      if (decided !== 'admit') {
        // 21.5.4 503 Service Unavailable with Retry-After (20.33), sent statelessly: no Timer G or J behind it.
        // A retransmission of the request meets the same decision again.
        if (decided === 'reject')
          this.transport.sendResponse(
            buildResponse(msg, 503, 'Service Unavailable', {
              headers: [{ name: 'Retry-After', value: String(admission.retryAfterS) }],
            }),
            source,
          );
        return;
      }
    }
    const tx = this.createServer(key, msg, source, topVia);
    if (msg.method === 'CANCEL') {
      this.handleCancel(msg, tx as NonInviteServerTransaction);
      return;
    }
    if (!(tx instanceof InviteServerTransaction)) {
      this.tu?.onRequest(msg, tx, source);
      return;
    }
    // 17.2.1: "the server transaction MUST generate a 100 (Trying) response unless it knows that the TU will
    // generate a provisional or final response within 200 ms". Without a deferral the 100 goes first; with one,
    // a TU that answers in time (a redirect server answering from memory) sends its final response alone.
    const delay = this.tryingDelayMs;
    if (delay === undefined) tx.respond(buildResponse(msg, 100));
    this.tu?.onRequest(msg, tx, source);
    if (delay !== undefined && !tx.responded) tx.deferTrying(delay, () => buildResponse(msg, 100));
  }

  private createServer(key: string, req: SipRequest, source: Peer, topVia: Via | undefined): ServerTransaction {
    const deps: TransactionDeps = {
      clock: this.clock,
      reliable: isStream(source.transport),
      timers: this.timers,
      timerQueue: this.timerQueue,
      send,
    };
    // Where responses go is decided here, per response: the request's source until the TU marks the request
    // authenticated, the top Via (maddr, a new connection) only after that (response-route.ts).
    const routes = responseRoutes(req, source, topVia);
    // The closures are assigned rather than declared: the TypeScript loader names each declared one with a
    // property definition, which is measurable at thousands of requests per second.
    const admission = this.admission;
    deps.mayRetransmit = (n) =>
      tx.authenticated ||
      n <= (admission?.queueIsBounded ? SATURATED_RETRANSMISSIONS : UNAUTHENTICATED_RETRANSMISSIONS);
    deps.send = (m: SipMessage) =>
      this.transport.sendResponse(m as SipResponse, tx.authenticated ? routes.via : routes.source, () =>
        tx.transportError(),
      );
    // An INVITE's final response over UDP is resent from the bytes sent (Completed, 17.2.1): no message kept, and
    // nothing serialised again, until the ACK or Timer H.
    const transport = this.transport;
    if (req.method === 'INVITE' && transport.sentBytes && transport.resendBytes) {
      deps.retain = (final) => {
        const bytes = transport.sentBytes?.(final as SipResponse);
        if (bytes === undefined) return undefined;
        const to = tx.authenticated ? routes.via : routes.source;
        return () => transport.resendBytes?.(bytes, to);
      };
    }
    // Timer H of an INVITE server transaction tells the TU (17.2.1).
    const events: InviteServerEvents = {};
    if (req.method === 'INVITE') events.onTimeout = () => this.tu?.onServerTimeout?.(tx as InviteServerTransaction);
    // Completed and Confirmed server transactions are kept as their response bytes alone when the transport can
    // give them (RFC 2543-style keys keep the full transaction: their ACK matching needs its To tag).
    if (transport.sentBytes && transport.resendBytes && !key.startsWith('2543|')) {
      deps.linger = (final, ms) => {
        const bytes = final === undefined ? undefined : transport.sentBytes?.(final as SipResponse);
        if (final !== undefined && bytes === undefined) return false;
        const to = tx.authenticated ? routes.via : routes.source;
        return this.lingering.add(key, bytes, to, req.method === 'INVITE' ? tx.toTag : undefined, ms);
      };
    }
    const tx: ServerTransaction =
      req.method === 'INVITE'
        ? new InviteServerTransaction(key, req, deps, events)
        : new NonInviteServerTransaction(key, req, deps);
    // The To tag of the responses: a fresh one, unless the request's To already has a tag (8.2.6.2: the response
    // keeps it). An RFC 2543 ACK is matched by that tag (17.2.3), so it must be the one the responses carried.
    tx.toTag = (key.startsWith('2543|') && existingToTag(req)) || this.newTag();
    this.server.set(key, tx);
    this.stats.serverTransactions++;
    tx.onTerminated(() => {
      if (this.server.get(key) === tx) this.server.delete(key);
    });
    return tx;
  }

  private handleCancel(cancel: SipRequest, tx: NonInviteServerTransaction): void {
    // 9.2: "the CANCEL ... matches a transaction [by] the same ... procedure as with other requests, except the
    // method of the request to match is INVITE".
    const inviteKey = serverKey(cancel, 'INVITE');
    const invite = inviteKey === undefined ? undefined : this.server.get(inviteKey);
    if (!(invite instanceof InviteServerTransaction)) {
      const done = inviteKey === undefined ? -1 : this.lingering.find(inviteKey);
      const toTag = done >= 0 ? this.lingering.toTag(done) : undefined;
      if (toTag !== undefined) {
        // The INVITE transaction is Confirmed (kept as its key alone): a final response went out, so 200 and no effect.
        tx.respond(buildResponse(cancel, 200, undefined, { toTag }));
        return;
      }
      // 9.2: "If the UAS did not find a matching transaction for the CANCEL ... it SHOULD respond to the CANCEL
      // with a 481 (Call Leg/Transaction Does Not Exist)."
      this.stats.strayCancels++;
      tx.respond(buildResponse(cancel, 481, undefined, { toTag: tx.toTag }));
      return;
    }
    // 9.2: "Regardless of the method of the original request, as long as the CANCEL matched an existing
    // transaction, the UAS answers the CANCEL request itself with a 200 (OK) response." The To tag SHOULD match
    // the one of the response to the original request.
    tx.respond(buildResponse(cancel, 200, undefined, { toTag: invite.toTag }));
    // "If it has [already sent a final response], the CANCEL request has no effect on the processing of the
    // original request".
    if (!invite.finalSent) this.tu?.onCancel?.(invite, cancel);
    else this.log.debug({ status: invite.lastStatus }, 'CANCEL after final response: no effect');
  }
}

/** Placeholder sender of a transaction's deps until the real one is assigned. */
function send(): void {}

/** The tag of the request's To header field, if it has one. */
function existingToTag(req: SipRequest): string | undefined {
  const to = getTo(req);
  return to.ok ? getTag(to.value) : undefined;
}

/** 17.2.3 (RFC 2543 rule): the ACK's To tag must match the To tag of the response sent by the transaction. */
function ackMatches(ack: SipRequest, tx: ServerTransaction): boolean {
  const key = tx.key;
  if (!key.startsWith('2543|')) return true;
  const to = getTo(ack);
  const tag = to.ok ? getTag(to.value) : undefined;
  return tag === undefined || tag === tx.toTag;
}
