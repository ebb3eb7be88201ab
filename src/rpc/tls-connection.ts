/**
 * One authenticated TLS link between two nodes, multiplexing requests in both
 * directions by request id. The peer's key was checked before this object
 * exists (tls-endpoint.ts); here live framing, request/response matching,
 * timeouts, bounds, write batching, and the handling of bad frames.
 *
 * Admission on an inbound link: the TLS handshake proves a key, not a place
 * in the overlay. No request is served before the caller's HELLO (its
 * NodeRef) was accepted by the endpoint's `verifyRef`; a request before it
 * is refused, counted (`requestsBeforeHello`) and the link is closed. Until
 * then a frame may be at most `maxHelloFrameBytes` long (a NodeRef with its
 * admission fits easily), and a link with no accepted HELLO after
 * `helloTimeoutMs` is closed, so an unauthenticated client holds neither
 * memory nor a slot for long. A node that is not admitted yet (an adapter
 * asking a bootstrap for ADMIT) sends a HELLO with a self-certified id
 * (SHA-1 of its key); whether that is enough is the endpoint's `verifyRef`
 * (the bootstrap accepts it) and then each method's (the bootstrap serves
 * only ADMIT to a self-certified ref, see bootstrap-server.ts).
 *
 * Dead links: a request that times out leaves its link open, so that a late
 * answer is simply ignored (a slow peer is not a dead one). But a link cut
 * in the network (a partition, a peer's host gone) never fails by itself:
 * TCP keeps retransmitting with a growing backoff, and after the network
 * heals every request on it waits behind that backoff (13-28 s between
 * retries were seen). So once a request has timed out and not one byte has
 * arrived on the link for `deadLinkSilenceMs` since the first request that
 * is still unanswered was sent, the link is closed and the next request
 * dials afresh. Any byte from the peer (a late answer, its own request)
 * shows the link alive and restarts the count.
 */
import type { TLSSocket } from 'node:tls';
import type { Clock, Timer } from '../util/clock.ts';
import { isOverlayError, OverlayError } from '../util/errors.ts';
import type { Logger } from '../util/log.ts';
import {
  decodeMessage,
  ERR_BUSY,
  ERR_HELLO_REFUSED,
  ERR_NO_HANDLER,
  ERR_REFUSED,
  encodeError,
  encodeHello,
  encodeRequest,
  encodeResponse,
  MSG_ERROR,
  MSG_HELLO,
  MSG_REQUEST,
  MSG_RESPONSE,
  type RpcMessage,
} from './codec.ts';
import { FrameDecoder } from './frame.ts';
import type { Caller, NodeRef, Payload, RequestHandler, RpcStats } from './types.ts';

export interface TlsRpcStats extends RpcStats {
  connectionsDialed: number;
  connectionsAccepted: number;
  /** Inbound connections refused: no or bad client certificate, or a NodeRef not bound to the key. */
  connectionsRefused: number;
  /** TLS handshakes that failed on the listening port (includes non-TLS garbage). */
  handshakeFailures: number;
  peerKeyMismatches: number;
  /** Responses for requests that had already timed out. */
  lateResponses: number;
  bytesSent: number;
  bytesReceived: number;
  /** Requests on an inbound link before its HELLO was accepted: refused, and the link closed. */
  requestsBeforeHello: number;
  /** Inbound links closed because no HELLO was accepted within helloTimeoutMs. */
  helloTimeouts: number;
  /** Inbound connections refused because their source address already held its share of slots. */
  perAddressRefused: number;
  /** Links closed because requests went unanswered and nothing at all arrived for deadLinkSilenceMs. */
  deadLinksClosed: number;
}

/** What a connection needs from the endpoint that owns it. */
export interface ConnectionHost {
  readonly stats: TlsRpcStats;
  readonly clock: Clock;
  readonly log: Logger;
  readonly maxFrameBytes: number;
  /** Largest frame accepted on an inbound link before its HELLO was accepted. */
  readonly maxHelloFrameBytes: number;
  /** An inbound link with no accepted HELLO after this long is closed. */
  readonly helloTimeoutMs: number;
  readonly maxServingPerConnection: number;
  /** Bytes of unsent output beyond which new requests from this peer are dropped unanswered. */
  readonly maxWriteBufferBytes: number;
  /** A link whose requests went unanswered with no byte received for this long is closed (see RpcConnection). */
  readonly deadLinkSilenceMs: number;
  handler: RequestHandler | null;
  /** A hello arrived; return false to refuse the connection. */
  acceptHello(conn: RpcConnection, ref: NodeRef): boolean;
  connectionClosed(conn: RpcConnection): void;
}

interface Pending {
  resolve: (v: Payload) => void;
  reject: (e: OverlayError) => void;
  deadline: number;
  method: string;
}

const schedule = setImmediate;

export class RpcConnection {
  readonly socket: TLSSocket;
  readonly peerKey: Uint8Array;
  readonly inbound: boolean;
  /** Remote transport address, `host:port`. */
  readonly remoteAddr: string;
  /** The peer's own NodeRef, once its hello was accepted. */
  peerRef: NodeRef | undefined;
  closed = false;
  /** Bumped on every frame in or out; the endpoint's idle sweep compares it between sweeps. */
  activity = 0;
  lastSeenActivity = 0;
  idleSweeps = 0;
  serving = 0;

  private readonly host: ConnectionHost;
  private readonly decoder: FrameDecoder;
  private readonly pending = new Map<number, Pending>();
  private nextId = 1;
  private framesIn = 0;
  private caller: Caller | null = null;
  private out: Buffer[] = [];
  private outBytes = 0;
  private flushScheduled = false;
  private refusedByPeer: OverlayError | null = null;
  private readonly flushBound = () => this.flush();
  private readonly onFrameBound = (body: Buffer) => this.onFrame(body);
  private timer: Timer | null = null;
  private timerAt = Number.POSITIVE_INFINITY;
  private readonly sweepBound = () => this.sweepTimeouts();
  private helloTimer: Timer | null = null;
  /** When the first request sent since the last byte received left; null once anything arrives. */
  private unheardSince: number | null = null;
  /** A request timed out with nothing received since unheardSince. */
  private timedOutUnheard = false;
  private silenceTimer: Timer | null = null;

  constructor(host: ConnectionHost, socket: TLSSocket, peerKey: Uint8Array, inbound: boolean) {
    this.host = host;
    this.socket = socket;
    this.peerKey = peerKey;
    this.inbound = inbound;
    const ra = socket.remoteAddress ?? '?';
    this.remoteAddr = ra.includes(':') ? `[${ra}]:${socket.remotePort}` : `${ra}:${socket.remotePort}`;
    this.decoder = new FrameDecoder(
      inbound ? Math.min(host.maxFrameBytes, host.maxHelloFrameBytes) : host.maxFrameBytes,
    );
    if (inbound)
      this.helloTimer = host.clock.setTimer(host.helloTimeoutMs, () => {
        this.helloTimer = null;
        if (this.closed || this.peerRef !== undefined) return;
        host.stats.helloTimeouts++;
        host.log.debug({ peer: this.remoteAddr }, 'no HELLO within the deadline; closing connection');
        this.close(new OverlayError('RPC_REFUSED', 'no HELLO within the deadline'));
      });
    socket.setNoDelay(true);
    socket.on('data', (chunk: Buffer) => this.onData(chunk));
    socket.on('end', () => this.onEnd());
    socket.on('error', (e) => {
      host.log.debug({ err: e.message, peer: this.remoteAddr }, 'rpc connection error');
      this.close(new OverlayError('RPC_UNREACHABLE', e.message));
    });
    socket.on('close', () => this.close());
  }

  /** Requests this side sent that await their response. */
  get inFlight(): number {
    return this.pending.size;
  }

  /** Send a request; the caller has already checked bounds and counted it. */
  request(method: string, payload: Payload, timeoutMs: number): Promise<Payload> {
    if (this.closed) return Promise.reject(this.closedError());
    let frame: Buffer;
    const id = this.allocId();
    try {
      frame = encodeRequest(id, method, payload);
    } catch (e) {
      return Promise.reject(new OverlayError('RPC_MALFORMED', `cannot encode request: ${(e as Error).message}`));
    }
    const now = this.host.clock.now();
    this.unheardSince ??= now;
    const deadline = now + timeoutMs;
    if (deadline < this.timerAt) this.armTimer(deadline);
    return new Promise<Payload>((resolve, reject) => {
      this.pending.set(id, { resolve, reject, deadline, method });
      this.send(frame);
    });
  }

  /**
   * Timeouts: one timer per connection, set for the earliest deadline, instead
   * of one per request. Requests usually share one timeout, so deadlines grow
   * and the timer is rarely moved; when it fires, the (bounded) pending table
   * is scanned once.
   */
  private armTimer(at: number): void {
    this.timer?.cancel();
    this.timerAt = at;
    this.timer = this.host.clock.setTimer(at - this.host.clock.now(), this.sweepBound);
  }

  private sweepTimeouts(): void {
    this.timer = null;
    this.timerAt = Number.POSITIVE_INFINITY;
    if (this.closed) return;
    // Timers have millisecond granularity: treat a deadline within 1 ms as reached.
    const now = this.host.clock.now() + 1;
    let next = Number.POSITIVE_INFINITY;
    for (const [id, p] of this.pending) {
      if (p.deadline <= now) {
        this.pending.delete(id);
        this.host.stats.timeouts++;
        if (this.unheardSince !== null) this.timedOutUnheard = true;
        p.reject(new OverlayError('RPC_TIMEOUT', p.method));
      } else if (p.deadline < next) next = p.deadline;
    }
    if (next !== Number.POSITIVE_INFINITY) this.armTimer(next);
    if (this.timedOutUnheard && this.silenceTimer === null) this.checkSilence();
  }

  /** Close the link once it has been silent for deadLinkSilenceMs with a request unanswered (module comment). */
  private checkSilence(): void {
    this.silenceTimer = null;
    if (this.closed || !this.timedOutUnheard || this.unheardSince === null) return;
    const silentMs = this.host.clock.now() - this.unheardSince;
    const left = this.host.deadLinkSilenceMs - silentMs;
    if (left > 1) {
      this.silenceTimer = this.host.clock.setTimer(left, () => this.checkSilence());
      return;
    }
    this.host.stats.deadLinksClosed++;
    this.host.log.debug({ peer: this.remoteAddr, silentMs }, 'requests unanswered and nothing received; closing link');
    this.close(new OverlayError('RPC_UNREACHABLE', `no answer from the peer for ${silentMs} ms`));
  }

  sendHello(ref: NodeRef): void {
    this.send(encodeHello(ref));
  }

  /** Refuse the peer: tell it why (best effort), then close once the reason is written. */
  refuse(reason: string): void {
    if (this.closed) return;
    this.host.stats.connectionsRefused++;
    this.host.stats.refused++;
    this.send(encodeError(0, ERR_HELLO_REFUSED, reason));
    this.flush();
    this.close(new OverlayError('RPC_REFUSED', reason), true);
  }

  /** Close the link; pending requests reject with `err` (default: RPC_UNREACHABLE). */
  close(err?: OverlayError, graceful = false): void {
    if (this.closed) return;
    this.closed = true;
    const e = err ?? this.closedError();
    this.timer?.cancel();
    this.timer = null;
    this.helloTimer?.cancel();
    this.helloTimer = null;
    this.silenceTimer?.cancel();
    this.silenceTimer = null;
    for (const p of this.pending.values()) p.reject(e);
    this.pending.clear();
    this.out = [];
    if (graceful) {
      this.socket.end();
      // A peer that never closes its side must not hold the socket open.
      this.host.clock.setTimer(1000, () => this.socket.destroy());
    } else {
      this.socket.destroy();
    }
    this.host.connectionClosed(this);
  }

  private closedError(): OverlayError {
    return this.refusedByPeer ?? new OverlayError('RPC_UNREACHABLE', 'connection closed');
  }

  private allocId(): number {
    let id = this.nextId;
    while (this.pending.has(id)) id = (id + 1) >>> 0 || 1;
    this.nextId = (id + 1) >>> 0 || 1;
    return id;
  }

  private send(frame: Buffer): void {
    this.activity++;
    this.out.push(frame);
    this.outBytes += frame.length;
    if (!this.flushScheduled) {
      this.flushScheduled = true;
      schedule(this.flushBound);
    }
  }

  /** Writes queued during one turn of the event loop leave as one TLS write (fewer records, fewer syscalls). */
  private flush(): void {
    this.flushScheduled = false;
    if (this.closed || this.out.length === 0) return;
    const data = this.out.length === 1 ? this.out[0] : Buffer.concat(this.out, this.outBytes);
    this.host.stats.bytesSent += data.length;
    this.out = [];
    this.outBytes = 0;
    this.socket.write(data);
  }

  private onData(chunk: Buffer): void {
    if (this.closed) return;
    this.host.stats.bytesReceived += chunk.length;
    this.unheardSince = null;
    this.timedOutUnheard = false;
    const err = this.decoder.push(chunk, this.onFrameBound);
    if (err !== null && !this.closed) {
      // Oversized or empty length: the stream cannot be resynchronised.
      this.host.stats.malformedDropped++;
      this.host.log.debug({ peer: this.remoteAddr, err }, 'bad frame; closing connection');
      this.close(new OverlayError('RPC_MALFORMED', `peer sent ${err} frame`));
    }
  }

  private onEnd(): void {
    if (this.decoder.partialBytes > 0) this.host.stats.malformedDropped++;
    this.close();
  }

  private onFrame(body: Buffer): void {
    if (this.closed) return;
    this.activity++;
    this.framesIn++;
    const m = decodeMessage(body);
    if (!m.ok) {
      this.host.stats.malformedDropped++;
      this.host.log.debug({ peer: this.remoteAddr, err: m.error }, 'undecodable frame dropped');
      return;
    }
    this.dispatch(m.value);
  }

  private dispatch(m: RpcMessage): void {
    switch (m.type) {
      case MSG_REQUEST:
        this.serve(m.id, m.method, m.payload);
        return;
      case MSG_RESPONSE: {
        const p = this.pending.get(m.id);
        if (p === undefined) {
          this.host.stats.lateResponses++;
          return;
        }
        this.pending.delete(m.id);
        this.host.stats.responsesOk++;
        p.resolve(m.payload);
        return;
      }
      case MSG_ERROR:
        this.onError(m.id, m.kind, m.message, m.code);
        return;
      case MSG_HELLO:
        // Only as the first frame of an inbound link, and only once.
        if (!this.inbound || this.framesIn !== 1) {
          this.host.stats.malformedDropped++;
          return;
        }
        if (!this.host.acceptHello(this, m.ref)) this.refuse('NodeRef not bound to the presented key');
        else {
          this.peerRef = m.ref;
          this.decoder.maxFrameBytes = this.host.maxFrameBytes;
          this.helloTimer?.cancel();
          this.helloTimer = null;
        }
        return;
    }
  }

  private onError(id: number, kind: number, message: string, code: string | undefined): void {
    if (kind === ERR_HELLO_REFUSED) {
      this.refusedByPeer = new OverlayError('RPC_REFUSED', `peer refused the connection: ${message}`);
      this.close(this.refusedByPeer);
      return;
    }
    const p = this.pending.get(id);
    if (p === undefined) {
      this.host.stats.lateResponses++;
      return;
    }
    this.pending.delete(id);
    if (kind === ERR_BUSY) p.reject(new OverlayError('RPC_TOO_MANY_IN_FLIGHT', `peer busy: ${message}`));
    else p.reject(new OverlayError('RPC_REFUSED', message, code === undefined ? undefined : { remoteCode: code }));
  }

  private serve(id: number, method: string, payload: Payload): void {
    const host = this.host;
    host.stats.requestsReceived++;
    if (this.inbound && this.peerRef === undefined) {
      // Not admitted: nothing is served, whatever the method (see the module comment).
      host.stats.requestsBeforeHello++;
      host.stats.refused++;
      host.log.debug({ peer: this.remoteAddr, method }, 'request before an accepted HELLO; closing connection');
      this.send(encodeError(id, ERR_REFUSED, 'no HELLO accepted on this link: send HELLO first', 'RPC_REFUSED'));
      this.flush();
      this.close(new OverlayError('RPC_REFUSED', 'request before HELLO'), true);
      return;
    }
    if (this.socket.writableLength + this.outBytes > host.maxWriteBufferBytes) {
      // The peer does not read its answers: answering more would only grow our
      // buffers. Drop (it will time out); its responses to us are still read.
      host.stats.refused++;
      return;
    }
    if (this.serving >= host.maxServingPerConnection) {
      host.stats.refused++;
      this.send(encodeError(id, ERR_BUSY, 'too many requests in flight'));
      return;
    }
    const handler = host.handler;
    if (handler === null) {
      host.stats.refused++;
      this.send(encodeError(id, ERR_NO_HANDLER, 'no handler'));
      return;
    }
    if (this.caller === null) {
      this.caller = Object.freeze({ key: this.peerKey, ref: this.peerRef, addr: this.remoteAddr });
    }
    this.serving++;
    let result: Payload;
    try {
      result = handler(method, payload, this.caller);
    } catch (e) {
      this.answerError(id, e);
      return;
    }
    if (result !== null && typeof result === 'object' && typeof (result as Promise<Payload>).then === 'function') {
      (result as Promise<Payload>).then(
        (v) => this.answer(id, v),
        (e) => this.answerError(id, e),
      );
    } else {
      this.answer(id, result);
    }
  }

  private answer(id: number, value: Payload): void {
    this.serving--;
    if (this.closed) return;
    let frame: Buffer;
    try {
      frame = encodeResponse(id, value);
    } catch (e) {
      this.host.stats.refused++;
      frame = encodeError(id, ERR_REFUSED, `response not encodable: ${(e as Error).message}`);
    }
    this.send(frame);
  }

  private answerError(id: number, e: unknown): void {
    this.serving--;
    this.host.stats.refused++;
    if (this.closed) return;
    const message = e instanceof Error ? e.message : String(e);
    this.send(encodeError(id, ERR_REFUSED, message, isOverlayError(e) ? e.code : undefined));
  }
}
