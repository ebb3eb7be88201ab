import assert from 'node:assert/strict';
import { after, test } from 'node:test';
import type { TlsRpcEndpoint } from '../../src/rpc/tls-endpoint.ts';
import type { Caller } from '../../src/rpc/types.ts';
import { bytesEqual } from '../../src/util/bytes.ts';
import { isOverlayError } from '../../src/util/errors.ts';
import { listen, makeNode, until } from './tls-helpers.ts';

const open: TlsRpcEndpoint[] = [];
async function node(...args: Parameters<typeof listen>): Promise<TlsRpcEndpoint> {
  const ep = await listen(...args);
  open.push(ep);
  return ep;
}
after(async () => {
  await Promise.all(open.map((e) => e.close()));
});

test('a re-dial resumes the TLS session, and both sides still see the pinned keys', async () => {
  // Idle links close after two 10 ms sweeps, so the second request must dial again.
  const a = await node(undefined, { limits: { idleTimeoutMs: 20 } });
  const b = await node(undefined, { limits: { idleTimeoutMs: 20 } });
  const callers: Caller[] = [];
  b.onRequest((_m, p, caller) => {
    callers.push(caller);
    return p;
  });
  assert.equal(await a.request(b.self, 'echo', 1), 1);
  await until(() => a.connectionCount === 0 && b.connectionCount === 0, 'idle link closed');
  assert.equal(await a.request(b.self, 'echo', 2), 2);
  assert.equal(a.stats.connectionsDialed, 2);
  assert.equal(a.sessions.counters.offered, 1);
  assert.equal(a.sessions.counters.resumed, 1, 'the second dial resumed');
  // The callee read the caller's key from the resumed session (the certificate the ticket carries) and the
  // caller's HELLO was checked against it: the same key as on the full handshake.
  assert.equal(callers.length, 2);
  for (const c of callers) {
    assert.ok(bytesEqual(c.key, a.self.key));
    assert.equal(c.ref?.id, a.self.id);
  }
});

test('a ticket is never taken for another key: a new node at the same address fails the pin', async () => {
  const a = await node(undefined, { limits: { idleTimeoutMs: 20 } });
  const b = await node();
  b.onRequest((_m, p) => p);
  assert.equal(await a.request(b.self, 'echo', 1), 1);
  await until(() => a.sessions.get(b.self) !== undefined, 'ticket stored');
  await until(() => a.connectionCount === 0, 'idle link closed');
  const port = b.port;
  await b.close();
  // Another node (another key) takes the port: the old ticket is offered for b's pinned key, the new server
  // cannot open it, runs a full handshake with its own certificate, and the pin check refuses it.
  const c = await node(await makeNode(), { port });
  c.onRequest((_m, p) => p);
  await assert.rejects(a.request(b.self, 'echo', 2), (e) => isOverlayError(e, 'RPC_PEER_KEY_MISMATCH'));
  assert.equal(a.sessions.counters.resumed, 0);
  assert.equal(a.sessions.get(b.self), undefined, 'the unused ticket is dropped');
});

test('kept links stay open past the idle sweep and missing ones are dialed in the background', async () => {
  const a = await node(undefined, { limits: { idleTimeoutMs: 20 } });
  const b = await node();
  const c = await node(undefined, { limits: { idleTimeoutMs: 20 } });
  for (const x of [a, b, c]) x.onRequest((_m, p) => p);
  // a keeps b (not c); the link to b comes up with no request sent.
  a.keepLinks([b.self]);
  await until(() => a.connectionCount === 1, 'background dial to b');
  assert.equal(a.stats.requestsSent, 0);
  assert.equal(await a.request(c.self, 'echo', 1), 1);
  assert.equal(a.connectionCount, 2);
  // Well past the idle period: the link to c is closed, the one to b is not.
  await until(() => a.connectionCount === 1, 'idle link to c closed');
  await new Promise((r) => setTimeout(r, 100));
  assert.equal(a.connectionCount, 1);
  const dials = a.stats.connectionsDialed;
  assert.equal(await a.request(b.self, 'echo', 2), 2);
  assert.equal(a.stats.connectionsDialed, dials, 'the request used the kept link');
  // Dropped from the set: closed at the next idle sweeps.
  a.keepLinks([]);
  await until(() => a.connectionCount === 0, 'link to b closed once no longer kept');
});

test('a kept link the peer closes (idle on its side) is dialed again at once, resuming the session', async () => {
  const a = await node(undefined, { limits: { idleTimeoutMs: 20 } });
  const b = await node(undefined, { limits: { idleTimeoutMs: 20 } });
  b.onRequest((_m, p) => p);
  a.keepLinks([b.self]);
  // b does not keep a: it closes the idle inbound link after four 10 ms sweeps, and a dials again.
  await until(() => a.stats.connectionsDialed >= 3, 'two re-dials');
  await until(() => a.connectionCount === 1, 'link up again');
  assert.ok(a.sessions.counters.resumed >= 1);
  assert.equal(await a.request(b.self, 'echo', 1), 1);
});

test('a kept peer that is down is dialed again only after the retry delay', async () => {
  const a = await node();
  const b = await node();
  const ref = b.self;
  await b.close();
  a.keepLinks([ref]);
  await until(() => a.keeper.counters.failed === 1, 'first background dial failed');
  a.keepLinks([ref]);
  a.keepLinks([ref]);
  await new Promise((r) => setTimeout(r, 50));
  assert.equal(a.keeper.counters.dials, 1);
});
