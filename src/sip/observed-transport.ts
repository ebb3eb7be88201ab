/**
 * A SipTransport that counts what passes through it (requests by method,
 * responses by CSeq method and status, both directions) into a Metrics port,
 * and otherwise hands everything to the transport it wraps. The transaction
 * layer above and the sockets below do not know it is there.
 */
import type { Metrics } from '../util/metrics.ts';
import { getHeader, type SipMessage, type SipResponse } from './message.ts';
import type { InboundMessage, Peer, SendErrorHandler, SipTransport } from './transport.ts';

/** Known methods keep their name; anything else is one label value, so a hostile peer cannot grow the series. */
const METHODS = new Set([
  'INVITE',
  'ACK',
  'BYE',
  'CANCEL',
  'REGISTER',
  'OPTIONS',
  'INFO',
  'PRACK',
  'SUBSCRIBE',
  'NOTIFY',
  'UPDATE',
  'MESSAGE',
  'REFER',
  'PUBLISH',
]);

function methodLabel(m: string | undefined): string {
  return m !== undefined && METHODS.has(m) ? m : 'other';
}

function cseqMethod(resp: SipResponse): string {
  const v = getHeader(resp, 'CSeq');
  return methodLabel(v?.trim().split(/\s+/)[1]);
}

export class ObservedTransport implements SipTransport {
  constructor(
    private readonly inner: SipTransport,
    private readonly metrics: Metrics,
  ) {}

  get local() {
    return this.inner.local;
  }

  get stats() {
    return this.inner.stats;
  }

  private seen(msg: SipMessage, direction: 'in' | 'out'): void {
    if (msg.kind === 'request')
      this.metrics.count('sip_requests_total', { direction, method: methodLabel(msg.method) });
    else
      this.metrics.count('sip_responses_total', {
        direction,
        method: cseqMethod(msg),
        status: String(msg.status),
      });
  }

  send(msg: SipMessage, to: Peer, onError?: SendErrorHandler): void {
    this.seen(msg, 'out');
    this.inner.send(msg, to, onError);
  }

  sendResponse(resp: SipResponse, to: Peer, onError?: SendErrorHandler): void {
    this.seen(resp, 'out');
    this.inner.sendResponse(resp, to, onError);
  }

  onMessage(handler: (m: InboundMessage) => void): void {
    this.inner.onMessage((m) => {
      this.seen(m.msg, 'in');
      handler(m);
    });
  }

  close(): Promise<void> {
    return this.inner.close();
  }

  isOpen(to: Peer): boolean {
    return this.inner.isOpen?.(to) ?? true;
  }

  sentBytes(resp: SipResponse): Uint8Array | undefined {
    return this.inner.sentBytes?.(resp);
  }

  resendBytes(bytes: Uint8Array, to: Peer): void {
    this.inner.resendBytes?.(bytes, to);
  }
}

/** The transport itself when nothing is counted (no wrapper on the hot path). */
export function observeTransport(t: SipTransport, metrics: Metrics | undefined): SipTransport {
  return metrics ? new ObservedTransport(t, metrics) : t;
}
