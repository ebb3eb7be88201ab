/**
 * UDP sends resolve IP literals at once and names through the system resolver: a response routed by a Via
 * maddr that is a host name (RFC 3261 18.2.2) of an authenticated request still arrives.
 */
import assert from 'node:assert/strict';
import { createSocket } from 'node:dgram';
import { once } from 'node:events';
import { test } from 'node:test';
import { SipElement } from '../../src/sip/element.ts';
import { TransportStack } from '../../src/sip/transport-stack.ts';
import { SystemClock } from '../../src/util/clock.ts';

test('a response routed to a Via maddr given as a host name is resolved and delivered', {
  timeout: 10_000,
}, async () => {
  const stack = await TransportStack.listen({ host: '127.0.0.1', port: 0 });
  const element = new SipElement({ transport: stack, clock: new SystemClock() });
  // maddr is followed only for a request the application authenticated (response-route.ts).
  element.handle({
    onRequest: (inc) => {
      inc.authenticated = true;
      inc.respond(200, 'OK');
    },
  });
  // The answer must come to `u` through the maddr name; the request leaves from another address (`w`), where
  // the `received` route would send it instead.
  const u = createSocket('udp4');
  u.bind(0, '127.0.0.1');
  await once(u, 'listening');
  const w = createSocket('udp4');
  w.bind(0, '127.0.0.3');
  await once(w, 'listening');
  const lp = u.address().port;
  try {
    const req =
      'OPTIONS sip:reg@127.0.0.1 SIP/2.0\r\n' +
      `Via: SIP/2.0/UDP 192.0.2.7:${lp};branch=z9hG4bKmaddr1;maddr=localhost\r\n` +
      'From: <sip:a@example.com>;tag=f1\r\nTo: <sip:reg@127.0.0.1>\r\n' +
      'Call-ID: maddr-1\r\nCSeq: 1 OPTIONS\r\nMax-Forwards: 70\r\nContent-Length: 0\r\n\r\n';
    const got = once(u, 'message');
    w.send(req, stack.local.port, '127.0.0.1');
    const [buf] = (await got) as [Buffer];
    assert.match(buf.toString(), /^SIP\/2\.0 200 OK\r\n/);
    assert.equal(stack.stats.sendErrors, 0);
  } finally {
    u.close();
    w.close();
    await element.close();
  }
});

test('datagrams sent in one turn leave together, in order, and closing right after sending still sends them', {
  timeout: 10_000,
}, async () => {
  const stack = await TransportStack.listen({ host: '127.0.0.1', port: 0 });
  const u = createSocket('udp4');
  u.bind(0, '127.0.0.1');
  await once(u, 'listening');
  const got: string[] = [];
  const all = new Promise<void>((resolve) =>
    u.on('message', (b: Buffer) => {
      got.push(/^SIP\/2\.0 (\d+)/.exec(b.toString())?.[1] ?? '?');
      if (got.length === 3) resolve();
    }),
  );
  const to = { transport: 'UDP' as const, address: '127.0.0.1', port: u.address().port };
  const response = (status: number) => ({
    kind: 'response' as const,
    version: 'SIP/2.0',
    status,
    reason: 'R',
    headers: [{ name: 'Call-ID', value: `batch-${status}` }],
    body: new Uint8Array(0),
  });
  try {
    for (const status of [180, 200, 202]) stack.send(response(status), to);
    // Nothing has been written yet in this turn: the datagrams go out together at its end, or at close.
    await stack.close();
    await all;
    assert.deepEqual(got, ['180', '200', '202']);
    assert.equal(stack.stats.sent, 3);
    assert.equal(stack.stats.sendErrors, 0);
  } finally {
    u.close();
  }
});
