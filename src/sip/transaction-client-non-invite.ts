import type { SipRequest, SipResponse } from './message.ts';
import { TransactionBase, type TransactionDeps } from './transaction-base.ts';
import type { ClientEvents } from './transaction-client-invite.ts';
import { timerE, timerF, timerK } from './timers.ts';

export type NonInviteClientState = 'trying' | 'proceeding' | 'completed' | 'terminated';

/** Non-INVITE client transaction, RFC 3261 section 17.1.2 (Figure 6). */
export class NonInviteClientTransaction extends TransactionBase<NonInviteClientState> {
  readonly request: SipRequest;
  private readonly events: ClientEvents;
  private eInterval = 0;

  constructor(key: string, request: SipRequest, deps: TransactionDeps, events: ClientEvents = {}) {
    super(key, deps, 'trying');
    this.request = request;
    this.events = events;
  }

  start(): void {
    // 17.1.2.2: "The 'Trying' state is entered when the TU initiates a new client transaction with a request.
    // When entering this state, the client transaction SHOULD set timer F to fire in 64*T1 seconds. The
    // request MUST be passed to the transport layer for transmission. If an unreliable transport is in use,
    // the client transaction MUST set timer E to fire in T1 seconds."
    this.sendFn(this.request);
    this.startTimer('F', timerF(this.t), () => this.fireF());
    if (!this.reliable) {
      this.eInterval = timerE(this.t);
      this.startTimer('E', this.eInterval, () => this.fireE());
    }
  }

  receiveResponse(resp: SipResponse): void {
    if (this._state !== 'trying' && this._state !== 'proceeding') return;
    if (resp.status < 200) {
      // 17.1.2.2: "If a provisional response is received while in the 'Trying' state, the response MUST be
      // passed to the TU, and then the client transaction SHOULD move to the 'Proceeding' state."
      this._state = 'proceeding';
      this.events.onResponse?.(resp);
      return;
    }
    // 17.1.2.2: "If a final response (status codes 200-699) is received while in the 'Trying' [or 'Proceeding']
    // state, the response MUST be passed to the TU, and the client transaction MUST transition to the
    // 'Completed' state." "Once the client transaction enters the 'Completed' state, it MUST set Timer K to
    // fire in T4 seconds for unreliable transports, and zero seconds for reliable transports."
    this._state = 'completed';
    this.stopTimer('E');
    this.stopTimer('F');
    const k = timerK(this.t, this.reliable);
    if (k === 0) this.terminate();
    else this.startTimer('K', k, () => this.terminate());
    this.events.onResponse?.(resp);
  }

  transportError(): void {
    if (this.terminated) return;
    this.terminate();
    this.events.onTransportError?.();
  }

  private fireE(): void {
    if (this._state === 'trying') {
      // 17.1.2.2: "If timer E fires while still in this state, the timer is reset, but this time with a value
      // of MIN(2*T1, T2). When the timer fires again, it is reset to a MIN(4*T1, T2)."
      this.eInterval = Math.min(this.eInterval * 2, this.t.T2);
    } else if (this._state === 'proceeding') {
      // 17.1.2.2: "If Timer E fires while in the 'Proceeding' state, the request MUST be passed to the
      // transport layer for retransmission, and Timer E MUST be reset with a value of T2 seconds."
      this.eInterval = this.t.T2;
    } else return;
    this.sendFn(this.request);
    this.startTimer('E', this.eInterval, () => this.fireE());
  }

  private fireF(): void {
    if (this._state !== 'trying' && this._state !== 'proceeding') return;
    // 17.1.2.2: "If Timer F fires while the client transaction is still in the 'Trying' state, the client
    // transaction SHOULD inform the TU about the timeout, and then it SHOULD enter the 'Terminated' state."
    this.terminate();
    this.events.onTimeout?.();
  }
}
