import assert from 'node:assert/strict';
import { createSocket } from 'node:dgram';
import { once } from 'node:events';
import { connect, type Socket } from 'node:net';
import { after, before, describe, it } from 'node:test';
import { SipElement } from '../../src/sip/element.ts';
import { RedirectServer } from '../../src/sip/redirect-server.ts';
import { Registrar } from '../../src/sip/registrar.ts';
import { TransportStack } from '../../src/sip/transport-stack.ts';
import { SystemClock } from '../../src/util/clock.ts';
import { SeededRandom } from '../../src/util/random.ts';

/**
 * Random mutations of valid messages, over real UDP and over TCP in random chunkings. The server must neither
 * throw (an exception out of a socket handler would crash this process) nor stop answering valid traffic.
 */

const rnd = new SeededRandom(0x5eed);

function corpus(port: number, transport: 'UDP' | 'TCP'): string[] {
  const via = `Via: SIP/2.0/${transport} 127.0.0.1:${port};branch=z9hG4bK-fz${rnd.int(1e9)};rport`;
  const common = [via, 'Max-Forwards: 70', 'From: "Alice" <sip:alice@example.com>;tag=fa', 'Call-ID: fz@127.0.0.1'];
  const sdp = 'v=0\r\no=- 1 1 IN IP4 127.0.0.1\r\ns=-\r\nc=IN IP4 127.0.0.1\r\nt=0 0\r\nm=audio 4000 RTP/AVP 0\r\n';
  const msg = (start: string, headers: string[], body = ''): string =>
    `${start}\r\n${headers.join('\r\n')}\r\nContent-Length: ${Buffer.byteLength(body)}\r\n\r\n${body}`;
  return [
    msg('REGISTER sip:127.0.0.1 SIP/2.0', [
      ...common,
      'To: <sip:bob@127.0.0.1>',
      'CSeq: 7 REGISTER',
      'Contact: <sip:bob@127.0.0.1:5999>;expires=300, <sip:bob@[::1]:5998>;q=0.4',
      'Expires: 300',
    ]),
    msg(
      'INVITE sip:bob@127.0.0.1 SIP/2.0',
      [
        ...common,
        'To: <sip:bob@127.0.0.1>',
        'CSeq: 1 INVITE',
        'Contact: <sip:alice@127.0.0.1:5997>',
        'Content-Type: application/sdp',
      ],
      sdp,
    ),
    msg('OPTIONS sip:127.0.0.1 SIP/2.0', [
      ...common,
      't: <sip:x@127.0.0.1>',
      'CSeq: 2 OPTIONS',
      'Accept: application/sdp',
    ]),
    msg('CANCEL sip:bob@127.0.0.1 SIP/2.0', [...common, 'To: <sip:bob@127.0.0.1>', 'CSeq: 1 CANCEL']),
    msg('ACK sip:bob@127.0.0.1 SIP/2.0', [...common, 'To: <sip:bob@127.0.0.1>;tag=x', 'CSeq: 1 ACK']),
    msg('SIP/2.0 180 Ringing', [via, 'From: <sip:a@b>;tag=1', 'To: <sip:c@d>;tag=2', 'Call-ID: r', 'CSeq: 1 INVITE']),
  ];
}

const NASTY = [
  '\r\n',
  '\n',
  '\r',
  ':',
  ';',
  ',',
  '<',
  '>',
  '"',
  '\\',
  '\x00',
  '\xff',
  ' ',
  'z9hG4bK',
  '%',
  '[',
  ']',
  '@',
  '999999999999',
];

function mutate(s: string): Buffer {
  let b = Buffer.from(s, 'latin1');
  const n = 1 + rnd.int(6);
  for (let i = 0; i < n; i++) {
    const at = rnd.int(Math.max(1, b.length));
    switch (rnd.int(8)) {
      case 0: // flip a byte
        b = Buffer.from(b);
        b[at] = rnd.int(256);
        break;
      case 1: // delete a span
        b = Buffer.concat([b.subarray(0, at), b.subarray(at + rnd.int(40))]);
        break;
      case 2: // insert a nasty token
        b = Buffer.concat([b.subarray(0, at), Buffer.from(NASTY[rnd.int(NASTY.length)], 'latin1'), b.subarray(at)]);
        break;
      case 3: // duplicate a span
        b = Buffer.concat([b.subarray(0, at), b.subarray(at, at + rnd.int(80)), b.subarray(at)]);
        break;
      case 4: // truncate
        b = b.subarray(0, at);
        break;
      case 5: // wrong Content-Length
        b = Buffer.from(
          b.toString('latin1').replace(/Content-Length: \d+/, `Content-Length: ${rnd.int(100_000)}`),
          'latin1',
        );
        break;
      case 6: // random bytes
        b = Buffer.concat([
          b.subarray(0, at),
          Buffer.from(Array.from({ length: rnd.int(30) }, () => rnd.int(256))),
          b.subarray(at),
        ]);
        break;
      default: // long header value
        b = Buffer.concat([b.subarray(0, at), Buffer.alloc(rnd.int(3000), 0x61), b.subarray(at)]);
    }
  }
  return b;
}

function options(transport: 'UDP' | 'TCP', port: number, branch: string): string {
  return (
    `OPTIONS sip:127.0.0.1 SIP/2.0\r\nVia: SIP/2.0/${transport} 127.0.0.1:${port};branch=${branch};rport\r\n` +
    'From: <sip:probe@127.0.0.1>;tag=p\r\nTo: <sip:127.0.0.1>\r\nCall-ID: probe-' +
    `${branch}\r\nCSeq: 1 OPTIONS\r\nMax-Forwards: 70\r\nContent-Length: 0\r\n\r\n`
  );
}

describe('transport fuzz', { timeout: 60_000 }, () => {
  let stack: TransportStack;
  let element: SipElement;
  before(async () => {
    stack = await TransportStack.listen({ host: '127.0.0.1', port: 0, maxMessageBytes: 16_384 });
    const clock = new SystemClock();
    element = new SipElement({ transport: stack, clock });
    new RedirectServer({ element, registrar: new Registrar({ clock }) });
  });
  after(() => stack.close());

  async function udpStillAnswers(): Promise<void> {
    const u = createSocket('udp4');
    u.bind(0, '127.0.0.1');
    await once(u, 'listening');
    const got = once(u, 'message');
    u.send(options('UDP', u.address().port, `z9hG4bK-probe${rnd.int(1e9)}`), stack.local.port, '127.0.0.1');
    const [buf] = (await got) as [Buffer];
    assert.match(buf.toString(), /^SIP\/2\.0 200 OK\r\n/);
    assert.match(buf.toString(), /Allow: INVITE/);
    u.close();
  }

  async function tcpStillAnswers(): Promise<void> {
    const t = connect(stack.local.port, '127.0.0.1');
    await once(t, 'connect');
    t.write(options('TCP', t.localPort ?? 0, `z9hG4bK-probe${rnd.int(1e9)}`));
    const [buf] = (await once(t, 'data')) as [Buffer];
    assert.match(buf.toString(), /^SIP\/2\.0 200 OK\r\n/);
    t.destroy();
  }

  it('mutated datagrams never stop the server answering valid UDP traffic', async () => {
    const u = createSocket('udp4');
    u.bind(0, '127.0.0.1');
    await once(u, 'listening');
    u.on('message', () => {});
    const base = corpus(u.address().port, 'UDP');
    for (let i = 0; i < 3000; i++) {
      u.send(mutate(base[rnd.int(base.length)]), stack.local.port, '127.0.0.1');
      if (i % 100 === 99) await new Promise((r) => setImmediate(r));
    }
    await new Promise((r) => setTimeout(r, 200));
    u.close();
    await udpStillAnswers();
    assert.ok(stack.stats.malformedDropped + stack.stats.malformedAnswered > 100, JSON.stringify(stack.stats));
    assert.equal(stack.stats.inboundErrors, 0, 'no exception escaped the layers above the transport');
  });

  it('mutated TCP streams in random chunkings never stop the server answering valid traffic', async () => {
    const framingBefore = stack.stats.framingErrors;
    for (let c = 0; c < 40; c++) {
      const t: Socket = connect(stack.local.port, '127.0.0.1');
      t.on('error', () => {});
      t.on('data', () => {});
      await once(t, 'connect');
      const base = corpus(t.localPort ?? 0, 'TCP');
      const stream = Buffer.concat(
        Array.from({ length: 20 }, () =>
          rnd.next() < 0.5 ? Buffer.from(base[rnd.int(base.length)]) : mutate(base[rnd.int(base.length)]),
        ),
      );
      for (let at = 0; at < stream.length && !t.destroyed; ) {
        const n = 1 + rnd.int(rnd.next() < 0.3 ? 8 : 1500);
        t.write(stream.subarray(at, at + n));
        at += n;
        if (rnd.next() < 0.2) await new Promise((r) => setImmediate(r));
      }
      await new Promise((r) => setTimeout(r, 5));
      t.destroy();
    }
    await new Promise((r) => setTimeout(r, 200));
    await tcpStillAnswers();
    await udpStillAnswers();
    assert.ok(stack.stats.framingErrors > framingBefore, 'some streams were broken beyond framing');
    assert.equal(stack.stats.inboundErrors, 0, 'no exception escaped the layers above the transport');
    assert.equal(element.stats.handlerErrors, 0, 'the registrar never failed on fuzzed input');
  });
});
