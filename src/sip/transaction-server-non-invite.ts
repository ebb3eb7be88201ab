import type { SipRequest, SipResponse } from './message.ts';
import { TransactionBase, type TransactionDeps } from './transaction-base.ts';
import { timerJ } from './timers.ts';

export type NonInviteServerState = 'trying' | 'proceeding' | 'completed' | 'terminated';

/** Non-INVITE server transaction, RFC 3261 section 17.2.2 (Figure 8). */
export class NonInviteServerTransaction extends TransactionBase<NonInviteServerState> {
  private pendingRequest: SipRequest | undefined;
  /** To tag used in this transaction's responses (8.2.6.2), chosen by the layer. */
  toTag = '';
  /**
   * Set by the TU once it has authenticated the request: only then may responses follow the top Via away from the
   * request's source (`maddr`, a new connection). See response-route.ts.
   */
  authenticated = false;
  private lastResponse: SipResponse | undefined;

  constructor(key: string, request: SipRequest, deps: TransactionDeps) {
    // 17.2.2: "The state machine is initialized in the 'Trying' state and is passed a request other than INVITE or ACK."
    super(key, deps, 'trying');
    this.pendingRequest = request;
  }

  get finalSent(): boolean {
    return this.lastResponse !== undefined && this.lastResponse.status >= 200;
  }

  get lastStatus(): number | undefined {
    return this.lastResponse?.status;
  }

  /**
   * The request that created the transaction, until a final response went out. It is released then: a completed
   * transaction lingers (Timer J, or G/H/I) and needs only its last response.
   */
  get request(): SipRequest | undefined {
    return this.pendingRequest;
  }

  respond(resp: SipResponse): void {
    if (this._state === 'trying' || this._state === 'proceeding') {
      this.lastResponse = resp;
      if (resp.status >= 200) this.pendingRequest = undefined;
      this.sendFn(resp);
      if (resp.status < 200) {
        // 17.2.2: "While in the 'Trying' state, if the TU passes a provisional response to the server
        // transaction, the server transaction MUST enter the 'Proceeding' state."
        this._state = 'proceeding';
        return;
      }
      // 17.2.2: "If the TU passes a final response (status codes 200-699) to the server while in the
      // 'Proceeding' state, the transaction MUST enter the 'Completed' state". "When the server transaction
      // enters the 'Completed' state, it MUST set Timer J to fire in 64*T1 seconds for unreliable transports,
      // and zero seconds for reliable transports."
      this._state = 'completed';
      const j = timerJ(this.t, this.reliable);
      // The Completed state only answers retransmissions: its owner may keep just the bytes (TransactionDeps.linger).
      if (j === 0 || this.linger?.(resp, j)) this.terminate();
      else this.startTimer('J', j, () => this.terminate());
    }
    // 17.2.2: "Any other final responses passed by the TU to the server transaction MUST be discarded while
    // in the 'Completed' state."
  }

  receiveRequest(_req: SipRequest): void {
    // 17.2.2: "Once in the 'Trying' state, any further request retransmissions are discarded."
    if (this._state === 'trying') return;
    // 17.2.2: "If a retransmission of the request is received while in the 'Proceeding' state, the most
    // recently sent provisional response MUST be passed to the transport layer for retransmission."
    // "While in the 'Completed' state, the server transaction MUST pass the final response to the transport
    // layer for retransmission whenever a retransmission of the request is received."
    if ((this._state === 'proceeding' || this._state === 'completed') && this.lastResponse)
      this.sendFn(this.lastResponse);
  }

  /** 17.2.4: a transport failure while sending: Terminated. */
  transportError(): void {
    this.terminate();
  }
}
