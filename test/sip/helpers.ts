import { parseMessage } from '../../src/sip/parser.ts';
import type { Header, SipMessage, SipRequest, SipResponse } from '../../src/sip/message.ts';
import {
  emptyTransportStats,
  type InboundMessage,
  type Peer,
  type SipTransport,
  stampTopVia,
} from '../../src/sip/transport.ts';

/** Build a request object directly (no parser), for transaction and registrar cores. */
export function req(
  method: string,
  opts: { branch?: string; cseq?: number; callId?: string; extra?: Header[] } = {},
): SipRequest {
  const branch = opts.branch ?? 'z9hG4bK-test-1';
  const cseq = opts.cseq ?? 1;
  return {
    kind: 'request',
    method,
    uri: 'sip:bob@example.com',
    version: 'SIP/2.0',
    headers: [
      { name: 'Via', value: `SIP/2.0/UDP 192.0.2.1:5060;branch=${branch}` },
      { name: 'Max-Forwards', value: '70' },
      { name: 'From', value: '<sip:alice@example.com>;tag=a1' },
      { name: 'To', value: '<sip:bob@example.com>' },
      { name: 'Call-ID', value: opts.callId ?? 'call-1@192.0.2.1' },
      { name: 'CSeq', value: `${cseq} ${method === 'ACK' || method === 'CANCEL' ? method : method}` },
      ...(opts.extra ?? []),
    ],
    body: new Uint8Array(0),
  };
}

export function resp(status: number, request: SipRequest, reason = 'Reason'): SipResponse {
  const headers = request.headers
    .filter((h) => ['via', 'from', 'to', 'call-id', 'cseq'].includes(h.name.toLowerCase()))
    .map((h) => (h.name === 'To' && status > 100 ? { name: 'To', value: `${h.value};tag=b1` } : { ...h }));
  return { kind: 'response', status, reason, version: 'SIP/2.0', headers, body: new Uint8Array(0) };
}

/** In-memory SipTransport: records what is sent, lets a test inject wire text as if it arrived. */
export class MemoryTransport implements SipTransport {
  readonly local = { host: '127.0.0.1', port: 5060 };
  readonly stats = emptyTransportStats();
  readonly sent: Array<{ msg: SipMessage; to: Peer }> = [];
  private handler: (m: InboundMessage) => void = () => {};

  send(msg: SipMessage, to: Peer): void {
    this.sent.push({ msg, to });
  }

  sendResponse(resp: SipResponse, source: Peer): void {
    this.sent.push({ msg: resp, to: source });
  }

  onMessage(handler: (m: InboundMessage) => void): void {
    this.handler = handler;
  }

  inject(text: string, source: Peer = { transport: 'UDP', address: '192.0.2.1', port: 5060 }): void {
    const r = parseMessage(Buffer.from(text.replace(/\r?\n/g, '\r\n')));
    if (!r.ok) throw new Error(`test message does not parse: ${r.error}`);
    if (r.value.kind === 'request') stampTopVia(r.value, source);
    this.handler({ msg: r.value, source });
  }

  /** Status codes of the responses sent so far, in order. */
  statuses(): number[] {
    return this.sent.flatMap((s) => (s.msg.kind === 'response' ? [s.msg.status] : []));
  }

  clear(): void {
    this.sent.length = 0;
  }

  close(): Promise<void> {
    return Promise.resolve();
  }
}

/** Wire text of a request, for `MemoryTransport.inject`. */
export function wire(
  method: string,
  opts: {
    uri?: string;
    branch?: string;
    cseq?: number;
    callId?: string;
    to?: string;
    headers?: string[];
    cseqMethod?: string;
  } = {},
): string {
  return [
    `${method} ${opts.uri ?? 'sip:bob@example.com'} SIP/2.0`,
    `Via: SIP/2.0/UDP 192.0.2.1:5060;branch=${opts.branch ?? 'z9hG4bK-w1'}`,
    'Max-Forwards: 70',
    'From: <sip:alice@example.com>;tag=a1',
    `To: ${opts.to ?? '<sip:bob@example.com>'}`,
    `Call-ID: ${opts.callId ?? 'call-w1'}`,
    `CSeq: ${opts.cseq ?? 1} ${opts.cseqMethod ?? method}`,
    ...(opts.headers ?? []),
    'Content-Length: 0',
    '',
    '',
  ].join('\r\n');
}
