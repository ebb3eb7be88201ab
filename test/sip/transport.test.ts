import assert from 'node:assert/strict';
import { createSocket, type Socket as UdpSocket } from 'node:dgram';
import { once } from 'node:events';
import { connect, type Socket } from 'node:net';
import { after, before, describe, it } from 'node:test';
import { SipElement } from '../../src/sip/element.ts';
import { TransportStack } from '../../src/sip/transport-stack.ts';
import { SystemClock } from '../../src/util/clock.ts';

function options(via: string, extra = ''): string {
  return (
    'OPTIONS sip:reg@127.0.0.1 SIP/2.0\r\n' +
    `Via: ${via}\r\n` +
    'From: <sip:a@example.com>;tag=f1\r\nTo: <sip:reg@127.0.0.1>\r\n' +
    `Call-ID: c-${Math.random()}\r\nCSeq: 1 OPTIONS\r\nMax-Forwards: 70\r\n${extra}Content-Length: 0\r\n\r\n`
  );
}

async function udpClient(family: 'udp4' | 'udp6', host: string): Promise<UdpSocket> {
  const s = createSocket(family);
  s.bind(0, host);
  await once(s, 'listening');
  return s;
}

async function exchangeUdp(s: UdpSocket, text: string, host: string, port: number): Promise<string> {
  const got = once(s, 'message');
  s.send(text, port, host);
  const [buf] = (await got) as [Buffer];
  return buf.toString();
}

async function readTcp(sock: Socket): Promise<string> {
  let acc = '';
  for (;;) {
    const [chunk] = (await once(sock, 'data')) as [Buffer];
    acc += chunk.toString();
    if (acc.includes('\r\n\r\n')) return acc;
  }
}

for (const [family, host] of [
  ['udp4', '127.0.0.1'],
  ['udp6', '::1'],
] as const) {
  describe(`TransportStack on ${host}`, () => {
    let stack: TransportStack;
    let el: SipElement;
    before(async () => {
      stack = await TransportStack.listen({ host, port: 0 });
      el = new SipElement({ transport: stack, clock: new SystemClock() });
      el.handle({ onRequest: (inc) => void inc.respond(200, 'OK') });
    });
    after(() => el.close());

    it('serves UDP and TCP on the same port', async () => {
      const u = await udpClient(family, host);
      const lp = u.address().port;
      const hp = host.includes(':') ? `[${host}]` : host;
      const r = await exchangeUdp(u, options(`SIP/2.0/UDP ${hp}:${lp};branch=z9hG4bKu1`), host, stack.local.port);
      assert.match(r, /^SIP\/2\.0 200 OK/);
      u.close();
      const t = connect(stack.local.port, host);
      await once(t, 'connect');
      t.write(options(`SIP/2.0/TCP ${hp}:${t.localPort};branch=z9hG4bKt1`));
      assert.match(await readTcp(t), /^SIP\/2\.0 200 OK/);
      t.destroy();
    });

    it('fills rport and received (RFC 3581) and answers the source port', async () => {
      const u = await udpClient(family, host);
      const lp = u.address().port;
      // The sent-by names another host and port: the answer must still reach the packet's source.
      const r = await exchangeUdp(
        u,
        options('SIP/2.0/UDP phone.invalid:4000;branch=z9hG4bKu2;rport'),
        host,
        stack.local.port,
      );
      assert.match(r, new RegExp(`Via: SIP/2.0/UDP phone.invalid:4000;branch=z9hG4bKu2;rport=${lp};received=${host}`));
      u.close();
    });
  });
}

describe('TransportStack Via handling and bad input', () => {
  let stack: TransportStack;
  let el: SipElement;
  before(async () => {
    stack = await TransportStack.listen({ host: '127.0.0.1', port: 0 });
    el = new SipElement({ transport: stack, clock: new SystemClock() });
    el.handle({ onRequest: (inc) => void inc.respond(200, 'OK') });
  });
  after(() => el.close());

  it('adds received when the sent-by host differs and routes by sent-by port (18.2.2)', async () => {
    const u = await udpClient('udp4', '127.0.0.1');
    const lp = u.address().port;
    const r = await exchangeUdp(
      u,
      options(`SIP/2.0/UDP 192.0.2.7:${lp};branch=z9hG4bKv1`),
      '127.0.0.1',
      stack.local.port,
    );
    assert.match(r, new RegExp(`Via: SIP/2.0/UDP 192.0.2.7:${lp};branch=z9hG4bKv1;received=127.0.0.1\\r\\n`));
    u.close();
  });

  it('leaves the Via alone when the sent-by is the source address and rport was not asked for', async () => {
    const u = await udpClient('udp4', '127.0.0.1');
    const lp = u.address().port;
    const r = await exchangeUdp(
      u,
      options(`SIP/2.0/UDP 127.0.0.1:${lp};branch=z9hG4bKv2`),
      '127.0.0.1',
      stack.local.port,
    );
    assert.match(r, new RegExp(`Via: SIP/2.0/UDP 127.0.0.1:${lp};branch=z9hG4bKv2\\r\\n`));
    u.close();
  });

  it('answers a request missing Call-ID with 400 naming the problem; drops garbage and counts it', async () => {
    const u = await udpClient('udp4', '127.0.0.1');
    const lp = u.address().port;
    const bad = options(`SIP/2.0/UDP 127.0.0.1:${lp};branch=z9hG4bKb1`).replace(/Call-ID: [^\r]*\r\n/, '');
    const r = await exchangeUdp(u, bad, '127.0.0.1', stack.local.port);
    assert.match(r, /^SIP\/2\.0 400 Bad Request: missing Call-ID\r\n/);
    const dropped = stack.stats.malformedDropped;
    u.send('\x00\x01garbage', stack.local.port, '127.0.0.1');
    const ok = await exchangeUdp(
      u,
      options(`SIP/2.0/UDP 127.0.0.1:${lp};branch=z9hG4bKb2`),
      '127.0.0.1',
      stack.local.port,
    );
    assert.match(ok, /^SIP\/2\.0 200 OK/);
    assert.equal(stack.stats.malformedDropped, dropped + 1);
    u.close();
  });

  it('closes only the TCP connection whose stream cannot be framed', async () => {
    const good = connect(stack.local.port, '127.0.0.1');
    const bad = connect(stack.local.port, '127.0.0.1');
    await Promise.all([once(good, 'connect'), once(bad, 'connect')]);
    const errors = stack.stats.framingErrors;
    bad.write(options('SIP/2.0/TCP 127.0.0.1:1;branch=z9hG4bKf1').replace('Content-Length: 0\r\n', ''));
    await once(bad, 'close');
    assert.equal(stack.stats.framingErrors, errors + 1);
    good.write(options(`SIP/2.0/TCP 127.0.0.1:${good.localPort};branch=z9hG4bKf2`));
    assert.match(await readTcp(good), /^SIP\/2\.0 200 OK/);
    good.destroy();
  });

  it('answers an RFC 5626 keep-alive ping on TCP with a pong', async () => {
    const t = connect(stack.local.port, '127.0.0.1');
    await once(t, 'connect');
    t.write('\r\n\r\n');
    const [pong] = (await once(t, 'data')) as [Buffer];
    assert.equal(pong.toString(), '\r\n');
    t.destroy();
  });
});
