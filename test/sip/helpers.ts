import type { Header, SipRequest, SipResponse } from '../../src/sip/message.ts';

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
