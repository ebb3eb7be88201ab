/**
 * Reflection and amplification through response routing (response-route.ts). A stranger's request names a victim
 * in its top Via (`maddr`, a sent-by on another address, a TCP sent-protocol): responses must still go only to
 * where the request came from, the final response is retransmitted a bounded number of times, and no TCP
 * connection is opened towards a Via-named address. Counted at real sockets bound where the victim would be.
 */
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { createSocket, type Socket as UdpSocket } from 'node:dgram';
import { once } from 'node:events';
import { connect, createServer, type Server } from 'node:net';
import { after, describe, it } from 'node:test';
import { defaultParams } from '../../src/dht/whanau/params.ts';
import { startWhanauSip } from '../../src/whanausip/daemon.ts';
import { type IncomingRequest, SipElement } from '../../src/sip/element.ts';
import { UNAUTHENTICATED_RETRANSMISSIONS } from '../../src/sip/response-route.ts';
import { TransportStack } from '../../src/sip/transport-stack.ts';
import { SystemClock } from '../../src/util/clock.ts';
import { DaemonPair } from '../secp2psip/daemon-pair.ts';
import { type Running, startRegistrar, stop } from './e2e-helpers.ts';

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

/** A UDP socket that counts what reaches it. */
async function counter(host: string): Promise<{ sock: UdpSocket; port: number; datagrams: number; bytes: number }> {
  const sock = createSocket('udp4');
  sock.bind(0, host);
  await once(sock, 'listening');
  const c = { sock, port: sock.address().port, datagrams: 0, bytes: 0 };
  sock.on('message', (buf) => {
    c.datagrams++;
    c.bytes += buf.length;
  });
  return c;
}

function invite(transport: 'UDP' | 'TCP', victimHost: string, victimPort: number, target: number): string {
  const tag = randomBytes(4).toString('hex');
  return (
    `INVITE sip:nobody@127.0.0.1:${target} SIP/2.0\r\n` +
    `Via: SIP/2.0/${transport} ${victimHost}:${victimPort};branch=z9hG4bK${randomBytes(6).toString('hex')};rport;maddr=${victimHost}\r\n` +
    'Max-Forwards: 70\r\n' +
    `From: <sip:mallory@example.com>;tag=${tag}\r\nTo: <sip:nobody@127.0.0.1>\r\n` +
    `Call-ID: ${tag}@amplification\r\nCSeq: 1 INVITE\r\n` +
    'Contact: <sip:mallory@127.0.0.1>\r\nContent-Type: application/sdp\r\n' +
    'Content-Length: 0\r\n\r\n'
  );
}

/** An element answering every INVITE 404 a little later (as an adapter does after a lookup), with short timers. */
async function element(markAuthenticated: boolean) {
  const stack = await TransportStack.listen({ host: '127.0.0.1', port: 0 });
  // T1 = 10 ms: Timer H (64*T1) passes in 0.64 s, with as many Timer G retransmissions as with the defaults.
  const el = new SipElement({ transport: stack, clock: new SystemClock() }, { timers: { T1: 10, T2: 80, T4: 100 } });
  el.handle({
    onRequest: (inc: IncomingRequest) => {
      if (markAuthenticated) inc.authenticated = true;
      setTimeout(() => inc.respond(404, 'Not Found'), 50);
    },
  });
  return { stack, el };
}

describe('no amplification through the top Via', () => {
  let registrar: Running | undefined;
  const closers: Array<() => Promise<unknown>> = [];
  after(async () => {
    await stop(registrar);
    for (const c of closers.reverse()) await c().catch(() => {});
  });

  it('a spoofed maddr INVITE to the registrar, an adapter or a WhanauSIP gateway sends nothing to the victim', async () => {
    registrar = await startRegistrar();
    const pair = await DaemonPair.start('amplification-');
    closers.push(() => pair.close());
    const adapter = await pair.adapter('adapter', { openRegistration: false });
    const gateway = await startWhanauSip({
      role: 'gateway',
      sipHost: '127.0.0.1',
      sipPort: 0,
      dhtHost: '127.0.0.1',
      dhtPort: 0,
      params: defaultParams(2, { periodMs: 3600_000 }),
      schedule: false,
    });
    closers.push(() => gateway.close());
    const targets = [
      { name: 'registrar', port: registrar.port },
      { name: 'adapter', port: Number(adapter.sipAddr.split(':')[1]) },
      { name: 'whanausip gateway', port: Number(gateway.sip.element.hostport.split(':')[1]) },
    ];
    const runs = await Promise.all(
      targets.map(async (t) => {
        const victim = await counter('127.0.0.2');
        const source = await counter('127.0.0.1');
        source.sock.send(invite('UDP', '127.0.0.2', victim.port, t.port), t.port, '127.0.0.1');
        return { t, victim, source };
      }),
    );
    // Default timers: the 100, the final response and its retransmissions at 0.5, 1.5 and 3.5 s would have
    // reached the victim by now.
    await sleep(4_000);
    for (const { t, victim, source } of runs) {
      victim.sock.close();
      source.sock.close();
      assert.equal(victim.datagrams, 0, `${t.name}: nothing reaches the address the Via names`);
      assert.ok(source.datagrams >= 1, `${t.name}: the source got its answer (${source.datagrams})`);
      assert.ok(source.datagrams <= 2 + UNAUTHENTICATED_RETRANSMISSIONS, `${t.name}: bounded (${source.datagrams})`);
    }
  });

  it('bytes answered per unauthenticated request datagram are bounded and go to the source only (ratio measured)', async (t) => {
    const measure = async (authenticated: boolean) => {
      const { el, stack } = await element(authenticated);
      const victim = await counter('127.0.0.2');
      const source = await counter('127.0.0.1');
      const req = invite('UDP', '127.0.0.2', victim.port, stack.local.port);
      source.sock.send(req, stack.local.port, '127.0.0.1');
      await sleep(1_200); // past Timer H
      victim.sock.close();
      source.sock.close();
      await el.close();
      return { victim, source, requestBytes: Buffer.byteLength(req) };
    };
    // An authenticated request keeps RFC 3261 18.2.2 routing (maddr followed, every Timer G retransmission):
    // what an unauthenticated one used to get.
    const followed = await measure(true);
    const guarded = await measure(false);
    const ratio = (n: number, d: number) => (n / d).toFixed(2);
    t.diagnostic(
      `Via followed: ${followed.victim.datagrams} datagrams, ${followed.victim.bytes} bytes at the victim ` +
        `(${ratio(followed.victim.bytes, followed.requestBytes)}x the request)`,
    );
    t.diagnostic(
      `unauthenticated: ${guarded.victim.datagrams} at the victim; ${guarded.source.datagrams} datagrams, ` +
        `${guarded.source.bytes} bytes at the source (${ratio(guarded.source.bytes, guarded.requestBytes)}x)`,
    );
    assert.ok(followed.victim.datagrams >= 8, 'control: following the Via does reach the victim, many times');
    assert.equal(guarded.victim.datagrams, 0);
    assert.equal(guarded.source.datagrams, 2 + UNAUTHENTICATED_RETRANSMISSIONS, '100, 404 and the bounded copies');
    // The old amplification: a 100, the final response and every Timer G copy RFC 3261 17.2.1 schedules before
    // Timer H (T1 doubling to T2) with these timers. Counted from the schedule rather than from the control run,
    // whose count depends on how late a loaded machine fires its timers.
    let copies = 0;
    for (let at = 10, step = 10; at < 64 * 10; step = Math.min(step * 2, 80), at += step) copies++;
    const perDatagram = followed.victim.bytes / followed.victim.datagrams;
    assert.ok(
      guarded.source.bytes < (perDatagram * (2 + copies)) / 2,
      'at most half the old amplification, to the source',
    );
    assert.ok(guarded.source.bytes <= 6 * guarded.requestBytes, 'a small constant factor of the request');
  });

  it('a TCP Via with maddr never makes the element connect out; the response is dropped once its connection is gone', async () => {
    const dialled = async (authenticated: boolean) => {
      const { el, stack } = await element(authenticated);
      let connections = 0;
      const victim: Server = createServer((s) => {
        connections++;
        s.on('error', () => {});
        s.destroy();
      });
      victim.listen(0, '127.0.0.2');
      await once(victim, 'listening');
      const vport = (victim.address() as { port: number }).port;
      const c = connect({ port: stack.local.port, host: '127.0.0.1' });
      c.on('error', () => {});
      await once(c, 'connect');
      c.write(invite('TCP', '127.0.0.2', vport, stack.local.port));
      await sleep(20);
      c.destroy(); // the 404 comes 50 ms later, after its connection is gone
      await sleep(400);
      const errors = stack.stats.sendErrors;
      victim.close();
      await el.close();
      return { connections, errors };
    };
    const followed = await dialled(true);
    assert.equal(followed.connections, 1, 'control: an authenticated request is answered on a new connection (18.2.2)');
    const guarded = await dialled(false);
    assert.equal(guarded.connections, 0, 'no connection to the Via-named address');
    assert.ok(guarded.errors >= 1, 'the response was dropped and counted');
  });
});
