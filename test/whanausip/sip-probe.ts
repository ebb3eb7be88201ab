import { randomBytes } from 'node:crypto';
import { createSocket } from 'node:dgram';
import { parseMessage } from '../../src/sip/parser.ts';
import { getHeader, getHeaders, type SipResponse } from '../../src/sip/message.ts';

export interface ProbeAnswer {
  status: number;
  reason: string;
  contacts: string[];
  response: SipResponse;
}

/**
 * Send one request over UDP from a fresh socket and resolve with its final
 * response (provisional ones are skipped). A non-2xx final answer to an
 * INVITE is acknowledged (RFC 3261 17.1.1.3) so the server stops resending it.
 */
export function sipRequest(
  port: number,
  method: string,
  uri: string,
  opts: { host?: string; to?: string; timeoutMs?: number } = {},
): Promise<ProbeAnswer> {
  const host = opts.host ?? '127.0.0.1';
  const sock = createSocket('udp4');
  const branch = `z9hG4bK${randomBytes(8).toString('hex')}`;
  const tag = randomBytes(4).toString('hex');
  const callId = `${randomBytes(8).toString('hex')}@probe`;
  const to = opts.to ?? uri;
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => {
      sock.close();
      reject(new Error(`no final answer to ${method} ${uri}`));
    }, opts.timeoutMs ?? 60_000);
    sock.on('message', (buf) => {
      const m = parseMessage(buf);
      if (!m.ok || m.value.kind !== 'response' || m.value.status < 200) return;
      const resp = m.value;
      clearTimeout(timer);
      const done = () => {
        sock.close();
        resolve({ status: resp.status, reason: resp.reason, contacts: getHeaders(resp, 'Contact'), response: resp });
      };
      if (method === 'INVITE' && resp.status >= 300) {
        const local = sock.address().port;
        const ack = [
          `ACK ${uri} SIP/2.0`,
          `Via: SIP/2.0/UDP 127.0.0.1:${local};branch=${branch};rport`,
          'Max-Forwards: 70',
          `From: <sip:probe@127.0.0.1>;tag=${tag}`,
          `To: ${getHeader(resp, 'To')}`,
          `Call-ID: ${callId}`,
          'CSeq: 1 ACK',
          'Content-Length: 0',
          '',
          '',
        ].join('\r\n');
        sock.send(ack, port, host, done);
      } else done();
    });
    sock.bind(0, '127.0.0.1', () => {
      const local = sock.address().port;
      const req = [
        `${method} ${uri} SIP/2.0`,
        `Via: SIP/2.0/UDP 127.0.0.1:${local};branch=${branch};rport`,
        'Max-Forwards: 70',
        `From: <sip:probe@127.0.0.1>;tag=${tag}`,
        `To: <${to}>`,
        `Call-ID: ${callId}`,
        `CSeq: 1 ${method}`,
        `Contact: <sip:probe@127.0.0.1:${local}>`,
        'Content-Length: 0',
        '',
        '',
      ].join('\r\n');
      sock.send(req, port, host);
    });
  });
}
