/**
 * One INVITE from inside a host of the test network (the root namespace cannot reach it), from a socket on every
 * address of the host: `node --import tsx test/whanausip/netns-probe.ts <host> <port> <uri>` prints the final
 * answer as JSON (`status` 0 when none came within 5 s). A 3xx is acknowledged (RFC 3261 17.1.1.3).
 */
import { randomBytes } from 'node:crypto';
import { createSocket } from 'node:dgram';
import { getHeader, getHeaders } from '../../src/sip/message.ts';
import { parseMessage } from '../../src/sip/parser.ts';

const [host, port, uri] = process.argv.slice(2);
const sock = createSocket('udp4');
const branch = `z9hG4bK${randomBytes(8).toString('hex')}`;
const callId = `${randomBytes(8).toString('hex')}@probe`;
const head = (method: string, local: string, to: string) =>
  [
    `${method} ${uri} SIP/2.0`,
    `Via: SIP/2.0/UDP ${local};branch=${branch};rport`,
    'Max-Forwards: 70',
    `From: <sip:probe@${local}>;tag=p1`,
    `To: ${to}`,
    `Call-ID: ${callId}`,
    `CSeq: 1 ${method}`,
    'Content-Length: 0',
    '',
    '',
  ].join('\r\n');
const timer = setTimeout(() => {
  process.stdout.write(`${JSON.stringify({ status: 0, reason: 'no final answer', contacts: [] })}\n`);
  sock.close();
}, 5000);
sock.on('message', (buf) => {
  const m = parseMessage(buf);
  if (!m.ok || m.value.kind !== 'response' || m.value.status < 200) return;
  const r = m.value;
  clearTimeout(timer);
  const out = () => {
    process.stdout.write(
      `${JSON.stringify({ status: r.status, reason: r.reason, contacts: getHeaders(r, 'Contact') })}\n`,
    );
    sock.close();
  };
  if (r.status >= 300) sock.send(head('ACK', local, getHeader(r, 'To') ?? `<${uri}>`), Number(port), host, out);
  else out();
});
let local = '';
sock.connect(Number(port), host, () => {
  local = `${sock.address().address}:${sock.address().port}`;
  sock.disconnect();
  sock.send(head('INVITE', local, `<${uri}>`), Number(port), host);
});
