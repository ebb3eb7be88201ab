import type { SipRequest, SipResponse } from './message.ts';
import { TransactionBase, type TransactionDeps } from './transaction-base.ts';
import { backoff, timerG, timerH, timerI } from './timers.ts';

export type InviteServerState = 'proceeding' | 'completed' | 'confirmed' | 'accepted' | 'terminated';

export interface InviteServerEvents {
  /** Timer H fired: no ACK for a non-2xx final response (17.2.1). The TU learns the transaction failed. */
  onTimeout?: () => void;
}

/**
 * INVITE server transaction, RFC 3261 section 17.2.1 (Figure 7), with the
 * Accepted state of RFC 6026 section 7.1 so that retransmitted INVITEs after
 * a 2xx are absorbed instead of starting a new transaction.
 */
export class InviteServerTransaction extends TransactionBase<InviteServerState> {
  private pendingRequest: SipRequest | undefined;
  /** To tag used in this transaction's responses (8.2.6.2), chosen by the layer. */
  toTag = '';
  /**
   * Set by the TU once it has authenticated the request: only then may responses follow the top Via away from the
   * request's source (`maddr`, a new connection). See response-route.ts.
   */
  authenticated = false;
  /** The last response, while it is needed as a message (until a final response kept as bytes, see `retain`). */
  private lastResponse: SipResponse | undefined;
  /** Status of the last response sent (0: none yet). */
  private status = 0;
  /** Sends the final response's bytes again, when the transport kept them (TransactionDeps.retain). */
  private resendFinal: (() => void) | undefined;
  private gInterval = 0;
  private gCount = 0;
  /** The deferred 100 Trying (deferTrying), until a response goes out. */
  private trying: (() => SipResponse) | undefined;
  private readonly events: InviteServerEvents;

  constructor(key: string, request: SipRequest, deps: TransactionDeps, events: InviteServerEvents = {}) {
    // 17.2.1: "When a server transaction is constructed for a request, it enters the 'Proceeding' state."
    super(key, deps, 'proceeding');
    this.pendingRequest = request;
    this.events = events;
  }

  /** The final response sent, if any (for CANCEL handling: 9.2). */
  get finalSent(): boolean {
    return this.status >= 200;
  }

  get lastStatus(): number | undefined {
    return this.status === 0 ? undefined : this.status;
  }

  /**
   * The request that created the transaction, until a final response went out. It is released then: a completed
   * transaction lingers (Timer J, or G/H/I) and needs only its last response.
   */
  get request(): SipRequest | undefined {
    return this.pendingRequest;
  }

  /** Whether any response (provisional or final) has gone out from the TU or the layer. */
  get responded(): boolean {
    return this.status !== 0;
  }

  /**
   * 17.2.1: "the server transaction MUST generate a 100 (Trying) response unless it knows that the TU will
   * generate a provisional or final response within 200 ms". Called when the TU has not answered yet: the 100
   * goes out after `ms` unless a response from the TU came first (so a TU answering at once costs one datagram).
   */
  deferTrying(ms: number, trying: () => SipResponse): void {
    if (this._state !== 'proceeding' || this.status !== 0) return;
    if (ms <= 0) this.respond(trying());
    else {
      this.trying = trying;
      this.startTimer('100', ms, () => {
        if (this._state === 'proceeding' && this.status === 0) this.respond(trying());
      });
    }
  }

  /** A response from the TU. */
  respond(resp: SipResponse): void {
    if (this._state === 'accepted' && resp.status >= 200 && resp.status < 300) {
      // RFC 6026 7.1: "2xx responses received from the TU in the Accepted state are passed to the transport."
      this.sendFn(resp);
      return;
    }
    if (this._state !== 'proceeding') return;
    if (this.trying !== undefined) {
      this.trying = undefined;
      this.stopTimer('100');
    }
    this.lastResponse = resp;
    this.status = resp.status;
    if (resp.status >= 200) this.pendingRequest = undefined;
    if (resp.status < 200) {
      // 17.2.1: "The TU passes any number of provisional responses to the server transaction. So long as
      // the server transaction is in the 'Proceeding' state, each of these MUST be passed to the transport."
      this.sendFn(resp);
      return;
    }
    if (resp.status < 300) {
      // RFC 6026 7.1 (replacing 17.2.1): a 2xx from the TU is passed to the transport and the
      // transaction moves to 'Accepted', starting Timer L (64*T1); 2xx retransmission is the TU's job (13.3.1.4).
      this.sendFn(resp);
      this._state = 'accepted';
      this.startTimer('L', 64 * this.t.T1, () => this.terminate());
      return;
    }
    // 17.2.1: "While in the 'Proceeding' state, if the TU passes a response with status code from 300 to 699
    // to the server transaction, the response MUST be passed to the transport layer for transmission, and
    // the state machine MUST enter the 'Completed' state. For unreliable transports, timer G is set to fire
    // in T1 seconds, and is not set to fire for reliable transports."
    this.sendFn(resp);
    this._state = 'completed';
    if (!this.reliable) {
      // Completed lasts until the ACK or Timer H (32 s): keep the bytes sent, not the message (TransactionDeps.retain).
      const resend = this.retain?.(resp);
      if (resend !== undefined) {
        this.resendFinal = resend;
        this.lastResponse = undefined;
      }
      this.gInterval = timerG(this.t);
      this.startTimer('G', this.gInterval, () => this.fireG());
    }
    // 17.2.1: "When the 'Completed' state is entered, timer H MUST be set to fire in 64*T1 seconds for all transports."
    this.startTimer('H', timerH(this.t), () => this.fireH());
  }

  /** A request matched to this transaction (17.2.3): a retransmitted INVITE or the ACK. */
  receiveRequest(req: SipRequest): void {
    if (req.method === 'ACK') {
      if (this._state === 'completed') {
        // 17.2.1: "If an ACK is received while the server transaction is in the 'Completed' state, the server
        // transaction MUST transition to the 'Confirmed' state. As Timer G is ignored in this state, any
        // retransmissions of the response will cease." Timer I: T4 for unreliable, zero for reliable.
        this._state = 'confirmed';
        this.resendFinal = undefined;
        this.lastResponse = undefined;
        this.stopTimer('G');
        this.stopTimer('H');
        const i = timerI(this.t, this.reliable);
        // Confirmed only absorbs ACKs and INVITEs: its owner may take that over (TransactionDeps.linger).
        if (i === 0 || this.linger?.(undefined, i)) this.terminate();
        else this.startTimer('I', i, () => this.terminate());
      }
      // 17.2.1: the 'Confirmed' state absorbs further ACKs.
      return;
    }
    if (this._state === 'proceeding') {
      // 17.2.1: "If a request retransmission is received while in the 'Proceeding' state, the most recent
      // provisional response that was received from the TU MUST be passed to the transport layer."
      if (this.lastResponse) this.sendFn(this.lastResponse);
      // No response yet but a deferred 100 waiting: the client is retransmitting, so the 100 goes now.
      else if (this.trying !== undefined) this.respond(this.trying());
    } else if (this._state === 'completed') {
      // 17.2.1: "while in the 'Completed' state, if a request retransmission is received, the server SHOULD
      // pass the response to the transport for retransmission."
      this.resendLast();
    }
    // 'accepted' (RFC 6026 7.1) and 'confirmed': retransmitted INVITEs are absorbed.
  }

  /** 17.2.4: a transport failure while sending a response: the transaction goes to Terminated. */
  transportError(): void {
    this.terminate();
  }

  /** The final response once more, from its bytes when they were kept. */
  private resendLast(): void {
    if (this.resendFinal !== undefined) this.resendFinal();
    else if (this.lastResponse !== undefined) this.sendFn(this.lastResponse);
  }

  private fireG(): void {
    if (this._state !== 'completed' || (this.resendFinal === undefined && this.lastResponse === undefined)) return;
    // 17.2.1: "If timer G fires, the response is passed to the transport layer once more for retransmission,
    // and timer G is set to fire in MIN(2*T1, T2) seconds. From then on, when timer G fires, the response is
    // passed to the transport again for transmission, and timer G is reset with a value that doubles, unless
    // that value exceeds T2, in which case it is reset with the value of T2."
    // Bounded for a request nobody authenticated (its source may be forged): Timer H alone runs on.
    if (this.mayRetransmit && !this.mayRetransmit(++this.gCount)) return;
    this.resendLast();
    this.gInterval = backoff(this.gInterval, this.t, true);
    this.startTimer('G', this.gInterval, () => this.fireG());
  }

  private fireH(): void {
    if (this._state !== 'completed') return;
    // 17.2.1: "If timer H fires while in the 'Completed' state, it implies that the ACK was never received.
    // In this case, the server transaction MUST transition to the 'Terminated' state, and MUST indicate to
    // the TU that a transaction failure has occurred."
    this.terminate();
    this.events.onTimeout?.();
  }
}
