/**
 * Resource exhaustion over SIP/TCP without authentication (transport-tcp.ts limits): slowloris connections,
 * connection floods from one address and from many, and unfinished headers that hold memory. The server must
 * refuse or close them, count each refusal, and keep answering a well-behaved phone.
 */
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { once } from 'node:events';
import { connect, type Socket } from 'node:net';
import { describe, it } from 'node:test';
import { SipElement } from '../../src/sip/element.ts';
import { type TransportInit, TransportStack } from '../../src/sip/transport-stack.ts';
import { SystemClock } from '../../src/util/clock.ts';

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

async function server(init: Partial<TransportInit> = {}) {
  const stack = await TransportStack.listen({ host: '127.0.0.1', port: 0, ...init });
  const el = new SipElement({ transport: stack, clock: new SystemClock() });
  el.handle({ onRequest: (inc) => void inc.respond(200, 'OK') });
  return { stack, el };
}

function options(port: number): string {
  const id = randomBytes(6).toString('hex');
  return (
    `OPTIONS sip:x@127.0.0.1:${port} SIP/2.0\r\n` +
    `Via: SIP/2.0/TCP 127.0.0.1:5060;branch=z9hG4bK${id}\r\nMax-Forwards: 70\r\n` +
    `From: <sip:a@example.com>;tag=${id}\r\nTo: <sip:x@127.0.0.1>\r\nCall-ID: ${id}\r\nCSeq: 1 OPTIONS\r\n` +
    'Content-Length: 0\r\n\r\n'
  );
}

/** Open a connection from `localAddress`; resolves once connected (or closed at once by the server). */
async function open(port: number, localAddress = '127.0.0.1'): Promise<Socket> {
  const s = connect({ port, host: '127.0.0.1', localAddress });
  s.on('error', () => {});
  s.on('data', () => {});
  await once(s, 'connect');
  return s;
}

/** A well-behaved phone from 127.0.0.1 still gets its answer. */
async function phoneAnswered(port: number): Promise<void> {
  const s = await open(port);
  s.write(options(port));
  const [buf] = (await once(s, 'data')) as [Buffer];
  assert.match(buf.toString(), /^SIP\/2\.0 200 OK\r\n/);
  s.destroy();
}

describe('SIP over TCP under connection-exhaustion attacks', () => {
  it('caps connections per source address (default) and counts the refusals; other addresses still get in', async () => {
    const { stack, el } = await server();
    const held: Socket[] = [];
    try {
      for (let i = 0; i < 200; i++) held.push(await open(stack.local.port, '127.0.0.2'));
      await sleep(200);
      const open2 = held.filter((s) => !s.destroyed).length;
      assert.ok(stack.stats.tcpConnections <= 64, `at most 64 held from one address (${stack.stats.tcpConnections})`);
      assert.ok(open2 <= 64, `the rest were closed (${open2} open)`);
      assert.equal(stack.stats.tcpRefusedPerAddress, 200 - stack.stats.tcpConnections);
      await phoneAnswered(stack.local.port);
    } finally {
      for (const s of held) s.destroy();
      await el.close();
    }
  });

  it('caps connections in total across addresses', async () => {
    const { stack, el } = await server({ tcpMaxConnections: 20, tcpMaxConnectionsPerAddress: 8 });
    const held: Socket[] = [];
    try {
      for (let a = 2; a < 6; a++) for (let i = 0; i < 8; i++) held.push(await open(stack.local.port, `127.0.0.${a}`));
      await sleep(200);
      assert.equal(stack.stats.tcpConnections, 20);
      assert.equal(stack.stats.tcpRefusedTotal, 12);
      for (const s of held) s.destroy();
      await sleep(200);
      await phoneAnswered(stack.local.port);
    } finally {
      for (const s of held) s.destroy();
      await el.close();
    }
  });

  it('closes a slowloris connection whose header does not complete in time, and an idle stranger too', async () => {
    const { stack, el } = await server({ tcpMessageTimeoutMs: 500 });
    const slow = await open(stack.local.port, '127.0.0.2');
    const silent = await open(stack.local.port, '127.0.0.2');
    const head = options(stack.local.port).replace(/\r\n\r\n$/, '\r\n');
    let at = 0;
    const trickle = setInterval(() => {
      if (at < head.length && !slow.destroyed) slow.write(head.slice(at, ++at));
    }, 50);
    try {
      const closed = Promise.all([once(slow, 'close'), once(silent, 'close')]);
      await Promise.race([closed, sleep(3_000).then(() => assert.fail('slowloris connections still open after 3 s'))]);
      assert.equal(stack.stats.tcpClosedIncomplete, 2);
      await phoneAnswered(stack.local.port);
      // A phone whose messages each arrive promptly is never cut off, however long it stays.
      const phone = await open(stack.local.port);
      for (let i = 0; i < 4; i++) {
        phone.write(options(stack.local.port));
        await sleep(250);
      }
      assert.equal(phone.destroyed, false);
      phone.destroy();
    } finally {
      clearInterval(trickle);
      slow.destroy();
      silent.destroy();
      await el.close();
    }
  });

  it('bounds the bytes held for unfinished headers over all connections', async () => {
    const cap = 256 * 1024;
    const { stack, el } = await server({ tcpMaxBufferedBytes: cap, tcpMaxConnectionsPerAddress: 100 });
    const held: Socket[] = [];
    const filler = `OPTIONS sip:x@127.0.0.1 SIP/2.0\r\nX-Pad: ${'a'.repeat(60_000)}`;
    try {
      for (let i = 0; i < 20; i++) {
        const s = await open(stack.local.port, '127.0.0.2');
        s.write(filler);
        held.push(s);
      }
      await sleep(300);
      const stillOpen = held.filter((s) => !s.destroyed).length;
      assert.ok(stack.stats.tcpClosedBuffer >= 20 - Math.ceil(cap / 60_000), JSON.stringify(stack.stats));
      assert.ok(stillOpen <= Math.ceil(cap / 60_000), `at most the cap's worth held (${stillOpen})`);
      await phoneAnswered(stack.local.port);
    } finally {
      for (const s of held) s.destroy();
      await el.close();
    }
  });
});
