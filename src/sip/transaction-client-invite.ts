import { getHeader, getHeaders, type Header, type SipRequest, type SipResponse } from './message.ts';
import { TransactionBase, type TransactionDeps } from './transaction-base.ts';
import { timerA, timerB, timerD } from './timers.ts';

export type InviteClientState = 'calling' | 'proceeding' | 'completed' | 'accepted' | 'terminated';

export interface ClientEvents {
  /** Every response the transaction passes up to the TU. */
  onResponse?: (resp: SipResponse) => void;
  /** Timer B / Timer F fired without a final response (17.1.1.2, 17.1.2.2). */
  onTimeout?: () => void;
  /** The transport reported a failure (17.1.4). */
  onTransportError?: () => void;
}

/**
 * INVITE client transaction, RFC 3261 section 17.1.1 (Figure 5), with the
 * Accepted state of RFC 6026 section 7.2 so 2xx retransmissions still reach the TU.
 */
export class InviteClientTransaction extends TransactionBase<InviteClientState> {
  readonly request: SipRequest;
  private readonly events: ClientEvents;
  private aInterval = 0;
  private ack: SipRequest | undefined;

  constructor(key: string, request: SipRequest, deps: TransactionDeps, events: ClientEvents = {}) {
    super(key, deps, 'calling');
    this.request = request;
    this.events = events;
  }

  /** 17.1.1.2: "The initial state, 'calling', MUST be entered when the TU initiates a new client transaction with an INVITE request." */
  start(): void {
    this.sendFn(this.request);
    // "If an unreliable transport is being used, the client transaction MUST start timer A with a value of T1."
    if (!this.reliable) {
      this.aInterval = timerA(this.t);
      this.startTimer('A', this.aInterval, () => this.fireA());
    }
    // "For any transport, the client transaction MUST start timer B with a value of 64*T1 seconds."
    this.startTimer('B', timerB(this.t), () => this.fireB());
  }

  receiveResponse(resp: SipResponse): void {
    const s = resp.status;
    if (this._state === 'calling' || this._state === 'proceeding') {
      if (s < 200) {
        // 17.1.1.2: "If the client transaction receives a provisional response while in the 'Calling' state, it
        // transitions to the 'Proceeding' state. In the 'Proceeding' state, the client transaction SHOULD NOT
        // retransmit the request any longer. Furthermore, the provisional response MUST be passed to the TU."
        this._state = 'proceeding';
        this.stopTimer('A');
        this.events.onResponse?.(resp);
        return;
      }
      if (s < 300) {
        // RFC 6026 7.2 (replacing 17.1.1.2): "a 2xx response ... MUST be passed up to the TU and the client
        // transaction MUST enter the 'Accepted' state", Timer M = 64*T1.
        this._state = 'accepted';
        this.stopTimer('A');
        this.stopTimer('B');
        this.startTimer('M', 64 * this.t.T1, () => this.terminate());
        this.events.onResponse?.(resp);
        return;
      }
      // 17.1.1.2: "When in either the 'Calling' or 'Proceeding' states, reception of a response with status
      // code from 300-699 MUST cause the client transaction to transition to 'Completed'. The client
      // transaction MUST pass the received response up to the TU, and the client transaction MUST generate
      // an ACK request, even if the transport is reliable". "The client transaction SHOULD start timer D".
      this._state = 'completed';
      this.stopTimer('A');
      this.stopTimer('B');
      this.ack = buildAckForNonSuccess(this.request, resp);
      this.sendFn(this.ack);
      const d = timerD(this.t, this.reliable);
      if (d === 0) this.terminate();
      else this.startTimer('D', d, () => this.terminate());
      this.events.onResponse?.(resp);
      return;
    }
    if (this._state === 'completed' && s >= 300) {
      // 17.1.1.2: "Any retransmissions of the final response that are received while in the 'Completed' state
      // MUST cause the ACK to be re-passed to the transport layer for retransmission, but the newly received
      // response MUST NOT be passed up to the TU."
      if (this.ack) this.sendFn(this.ack);
      return;
    }
    if (this._state === 'accepted' && s >= 200 && s < 300) {
      // RFC 6026 7.2: "any 2xx responses that match this client transaction ... MUST be passed up to the TU."
      this.events.onResponse?.(resp);
    }
  }

  /** 17.1.4: a transport failure: inform the TU and go to Terminated. */
  transportError(): void {
    if (this.terminated) return;
    this.terminate();
    this.events.onTransportError?.();
  }

  private fireA(): void {
    if (this._state !== 'calling') return;
    // 17.1.1.2: "When timer A fires, the client transaction MUST retransmit the request by passing it to the
    // transport layer, and MUST reset the timer with a value of 2*T1." (doubling each time, no cap)
    this.sendFn(this.request);
    this.aInterval *= 2;
    this.startTimer('A', this.aInterval, () => this.fireA());
  }

  private fireB(): void {
    if (this._state !== 'calling') return;
    // 17.1.1.2: "If the client transaction is still in the 'Calling' state when timer B fires, the client
    // transaction SHOULD inform the TU that a timeout has occurred."
    this.terminate();
    this.events.onTimeout?.();
  }
}

const copy = (h: Header): Header => ({ name: h.name, value: h.value });

/**
 * 17.1.1.3: the ACK for a non-2xx final response. Same Request-URI, Call-ID, From, CSeq number (method ACK)
 * as the INVITE; To from the response (it carries the tag); a single Via equal to the INVITE's top Via; the
 * INVITE's Route headers.
 */
export function buildAckForNonSuccess(invite: SipRequest, resp: SipResponse): SipRequest {
  const headers: Header[] = [];
  const via = invite.headers.find((h) => h.name.toLowerCase() === 'via');
  if (via) headers.push(copy(via));
  for (const h of invite.headers) if (h.name.toLowerCase() === 'route') headers.push(copy(h));
  const from = getHeader(invite, 'From');
  if (from !== undefined) headers.push({ name: 'From', value: from });
  headers.push({ name: 'To', value: getHeader(resp, 'To') ?? getHeader(invite, 'To') ?? '' });
  const callId = getHeader(invite, 'Call-ID');
  if (callId !== undefined) headers.push({ name: 'Call-ID', value: callId });
  headers.push({ name: 'CSeq', value: `${cseqNumber(invite)} ACK` });
  headers.push({ name: 'Max-Forwards', value: '70' });
  return { kind: 'request', method: 'ACK', uri: invite.uri, version: 'SIP/2.0', headers, body: new Uint8Array(0) };
}

/**
 * 9.1: CANCEL for a pending INVITE. Request-URI, Call-ID, To, From and CSeq number as in the INVITE (method
 * CANCEL); a single Via equal to the INVITE's top Via (same branch, so it matches the server transaction); Route.
 */
export function buildCancel(invite: SipRequest): SipRequest {
  const headers: Header[] = [];
  const via = invite.headers.find((h) => h.name.toLowerCase() === 'via');
  if (via) headers.push(copy(via));
  for (const h of invite.headers) if (h.name.toLowerCase() === 'route') headers.push(copy(h));
  for (const name of ['From', 'To', 'Call-ID']) {
    const v = getHeader(invite, name);
    if (v !== undefined) headers.push({ name, value: v });
  }
  headers.push({ name: 'CSeq', value: `${cseqNumber(invite)} CANCEL` });
  headers.push({ name: 'Max-Forwards', value: '70' });
  return { kind: 'request', method: 'CANCEL', uri: invite.uri, version: 'SIP/2.0', headers, body: new Uint8Array(0) };
}

function cseqNumber(req: SipRequest): string {
  const v = getHeaders(req, 'CSeq')[0] ?? '';
  return v.trim().split(/\s+/)[0] ?? '0';
}
