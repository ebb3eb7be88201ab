import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import net from 'node:net';
import { after, test } from 'node:test';
import tls from 'node:tls';
import { fileURLToPath } from 'node:url';
import { createCa, createNodeCertificate } from '../../src/identity/certificates.ts';
import { issueAdmission } from '../../src/identity/admission.ts';
import { Identity } from '../../src/identity/identity.ts';
import { nodeIdFromKey } from '../../src/identity/fingerprint.ts';
import type { TlsRpcEndpoint } from '../../src/rpc/tls-endpoint.ts';
import { admissionVerifyRef } from '../../src/rpc/verify-ref.ts';
import type { Caller, NodeRef } from '../../src/rpc/types.ts';
import { SystemClock } from '../../src/util/clock.ts';
import { isOverlayError, OverlayError } from '../../src/util/errors.ts';
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

const code = (c: string) => (e: unknown) => isOverlayError(e) && e.code === c;

test('request/response with mutual authentication: callee learns the caller key and NodeRef', async () => {
  const a = await node();
  const b = await node();
  let seen: Caller | undefined;
  b.onRequest((method, payload, caller) => {
    seen = caller;
    return { method, echo: payload };
  });
  const res = await a.request(b.self, 'echo', { x: 1, bytes: new Uint8Array([9, 8]) });
  assert.deepEqual(res, { method: 'echo', echo: { x: 1, bytes: new Uint8Array([9, 8]) } });
  assert.ok(seen);
  assert.deepEqual(seen.key, a.self.key);
  assert.deepEqual(seen.ref, a.self);
  assert.equal(a.self.id, nodeIdFromKey(a.self.key));
  assert.equal(a.stats.requestsSent, 1);
  assert.equal(a.stats.responsesOk, 1);
  assert.equal(b.stats.requestsReceived, 1);
});

test('async handlers, handler errors travel back as RPC_REFUSED with message and code', async () => {
  const a = await node();
  const b = await node();
  b.onRequest(async (method) => {
    await Promise.resolve();
    if (method === 'boom') throw new Error('kaputt');
    if (method === 'typed') throw new OverlayError('DHT_NOT_FOUND', 'no such key');
    if (method === 'void') return undefined;
    if (method === 'fn') return () => 1;
    return 'fine';
  });
  await assert.rejects(a.request(b.self, 'ok', { f: () => 1 }), code('RPC_MALFORMED'));
  await assert.rejects(a.request(b.self, 'fn', null), code('RPC_REFUSED'));
  assert.equal(await a.request(b.self, 'ok', null), 'fine');
  assert.equal(await a.request(b.self, 'void', null), null);
  await assert.rejects(
    a.request(b.self, 'boom', null),
    (e) => code('RPC_REFUSED')(e) && /kaputt/.test((e as Error).message),
  );
  await assert.rejects(
    a.request(b.self, 'typed', null),
    (e) => code('RPC_REFUSED')(e) && (e as OverlayError).detail?.remoteCode === 'DHT_NOT_FOUND',
  );
  assert.equal(b.stats.refused, 3);
});

test('many concurrent requests share one connection; dials are deduplicated', async () => {
  const a = await node(undefined, { limits: { maxInFlightPerPeer: 1000 } });
  const b = await node(undefined, { limits: { maxServingPerConnection: 1000 } });
  b.onRequest((_m, p) => (p as number) * 2);
  const n = 500;
  const results = await Promise.all(Array.from({ length: n }, (_, i) => a.request(b.self, 'double', i)));
  assert.deepEqual(
    results,
    Array.from({ length: n }, (_, i) => i * 2),
  );
  assert.equal(a.stats.connectionsDialed, 1);
  assert.equal(b.stats.connectionsAccepted, 1);
  // The callee reuses the inbound link to call back the caller (it sent its NodeRef).
  a.onRequest(() => 'back');
  assert.equal(await b.request(a.self, 'hi', null), 'back');
  assert.equal(b.stats.connectionsDialed, 0);
});

test('IPv6 loopback addresses work ([addr]:port)', async () => {
  const a = await node(undefined, { host: '::1' });
  const b = await node(undefined, { host: '::1' });
  b.onRequest((_m, _p, caller) => caller.addr.startsWith('[::1]:'));
  assert.match(b.self.addr, /^\[::1\]:\d+$/);
  assert.equal(await a.request(b.self, 'v6', null), true);
});

test('timeout rejects with RPC_TIMEOUT and a late answer is ignored', async () => {
  const a = await node();
  const b = await node();
  let release: (() => void) | undefined;
  b.onRequest(() => new Promise((r) => (release = () => r('late'))));
  await assert.rejects(a.request(b.self, 'slow', null, { timeoutMs: 30 }), code('RPC_TIMEOUT'));
  assert.equal(a.stats.timeouts, 1);
  await until(() => release !== undefined, 'request reached the handler');
  release?.();
  await until(() => a.stats.lateResponses === 1, 'late response counted');
  b.onRequest(() => 'quick');
  assert.equal(await a.request(b.self, 'fast', null), 'quick');
});

test('unreachable peers fail fast with RPC_UNREACHABLE', async () => {
  const a = await node();
  const other = await makeNode();
  // A port with nothing listening: take a free port and release it.
  const srv = net.createServer();
  await new Promise<void>((r) => srv.listen(0, '127.0.0.1', r));
  const port = (srv.address() as net.AddressInfo).port;
  await new Promise<void>((r) => srv.close(() => r()));
  const ref: NodeRef = { id: nodeIdFromKey(other.key), addr: `127.0.0.1:${port}`, key: other.key };
  await assert.rejects(a.request(ref, 'x', null), code('RPC_UNREACHABLE'));
  await assert.rejects(a.request({ ...ref, addr: 'not-an-address' }, 'x', null), code('RPC_UNREACHABLE'));
  // A listener that accepts TCP but never speaks TLS: the connect timeout applies.
  const muted: net.Socket[] = [];
  const mute = net.createServer((s) => muted.push(s));
  await new Promise<void>((r) => mute.listen(0, '127.0.0.1', r));
  const mutePort = (mute.address() as net.AddressInfo).port;
  await assert.rejects(
    a.request({ ...ref, addr: `127.0.0.1:${mutePort}` }, 'x', null, { timeoutMs: 50 }),
    code('RPC_UNREACHABLE'),
  );
  for (const s of muted) s.destroy();
  await new Promise<void>((r) => mute.close(() => r()));
});

test('dialing with a wrong pinned key is refused with RPC_PEER_KEY_MISMATCH', async () => {
  const a = await node();
  const b = await node();
  b.onRequest(() => 'should not run');
  const stranger = await makeNode();
  await assert.rejects(a.request({ ...b.self, key: stranger.key }, 'x', null), code('RPC_PEER_KEY_MISMATCH'));
  assert.equal(a.stats.peerKeyMismatches, 1);
  assert.equal(b.stats.requestsReceived, 0);
  // The right key still works afterwards.
  assert.equal(await a.request(b.self, 'x', null), 'should not run');
});

test('a node presenting another node id with its own key is refused', async () => {
  const victim = await node();
  const b = await node();
  b.onRequest((_m, _p, caller) => caller.ref?.id ?? 'none');
  const impostorKeys = await makeNode();
  const impostor = await node(impostorKeys, { self: { id: victim.self.id } });
  await assert.rejects(impostor.request(b.self, 'whoami', null), code('RPC_REFUSED'));
  assert.equal(b.stats.connectionsRefused, 1);
  assert.equal(b.stats.requestsReceived, 0);
  // The real owner of the id is served, and the verifyRef hook can admit assigned ids.
  assert.equal(await victim.request(b.self, 'whoami', null), victim.self.id);
  const assigned = 'c'.repeat(40);
  const admitted = await node(undefined, { self: { id: assigned, admission: new Uint8Array([1]) } });
  await assert.rejects(admitted.request(b.self, 'whoami', null), code('RPC_REFUSED'));
  b.verifyRef = (ref) => ref.id === nodeIdFromKey(ref.key) || (ref.id === assigned && ref.admission?.[0] === 1);
  const admitted2 = await node(undefined, { self: { id: assigned, admission: new Uint8Array([1]) } });
  assert.equal(await admitted2.request(b.self, 'whoami', null), assigned);
});

test('in-flight bounds: caller side rejects at once, callee side answers busy', async () => {
  const a = await node(undefined, { limits: { maxInFlightPerPeer: 4 } });
  const b = await node(undefined, { limits: { maxServingPerConnection: 2 } });
  const waiting: Array<() => void> = [];
  b.onRequest(() => new Promise((r) => waiting.push(() => r('done'))));
  const first = [0, 1, 2, 3].map(() => a.request(b.self, 'hold', null));
  await assert.rejects(a.request(b.self, 'hold', null), code('RPC_TOO_MANY_IN_FLIGHT'));
  // b serves two; the other two are answered busy.
  const settled = await Promise.allSettled(first.slice(2));
  for (const s of settled) assert.ok(s.status === 'rejected' && code('RPC_TOO_MANY_IN_FLIGHT')(s.reason));
  await until(() => waiting.length === 2, 'two requests being served');
  for (const w of waiting) w();
  assert.deepEqual(await Promise.all(first.slice(0, 2)), ['done', 'done']);
  assert.equal(b.stats.refused, 2);
});

test('idle connections are closed and re-dialed on demand', async () => {
  const a = await node(undefined, { limits: { idleTimeoutMs: 40 } });
  const b = await node();
  b.onRequest(() => 1);
  await a.request(b.self, 'x', null);
  assert.equal(a.connectionCount, 1);
  await until(() => a.connectionCount === 0 && b.connectionCount === 0, 'idle link closed on both sides');
  assert.equal(await a.request(b.self, 'x', null), 1);
  assert.equal(a.stats.connectionsDialed, 2);
});

test('close() rejects pending requests, refuses new ones, and frees the port', async () => {
  const a = await listen();
  const b = await node();
  b.onRequest(() => new Promise(() => {}));
  const pending = a.request(b.self, 'never', null);
  await until(() => b.stats.requestsReceived === 1, 'request arrived');
  await a.close();
  await assert.rejects(pending, code('RPC_UNREACHABLE'));
  await assert.rejects(a.request(b.self, 'x', null), code('RPC_UNREACHABLE'));
  await until(() => b.connectionCount === 0, 'peer saw the close');
  // The port is free again.
  const srv = net.createServer();
  await new Promise<void>((resolve, reject) => {
    srv.once('error', reject);
    srv.listen(a.port, '127.0.0.1', resolve);
  });
  await new Promise<void>((r) => srv.close(() => r()));
});

test('the caller refuses a peer that only speaks TLS 1.2, even with the right key', async () => {
  const a = await node();
  const legacy = await makeNode();
  const srv = tls.createServer({
    cert: legacy.cert.certPem,
    key: legacy.cert.keyPem,
    maxVersion: 'TLSv1.2',
    requestCert: true,
    rejectUnauthorized: false,
  });
  srv.on('tlsClientError', () => {});
  await new Promise<void>((r) => srv.listen(0, '127.0.0.1', r));
  const ref: NodeRef = {
    id: nodeIdFromKey(legacy.key),
    addr: `127.0.0.1:${(srv.address() as net.AddressInfo).port}`,
    key: legacy.key,
  };
  await assert.rejects(a.request(ref, 'x', null), code('RPC_UNREACHABLE'));
  await new Promise<void>((r) => srv.close(() => r()));
});

test('a process using endpoints exits by itself after close() (no dangling handles)', () => {
  const script = `
    import { generateKeyPairSync } from 'node:crypto';
    import { TlsRpcEndpoint } from './src/rpc/tls-endpoint.ts';
    const a = await TlsRpcEndpoint.listen({ keyPair: generateKeyPairSync('ed25519') });
    const b = await TlsRpcEndpoint.listen({ keyPair: generateKeyPairSync('ed25519') });
    b.onRequest(() => new Promise(() => {}));
    a.onRequest(() => 'ok');
    const hanging = a.request(b.self, 'hang', null).catch((e) => e.code);
    await b.request(a.self, 'x', null);
    await Promise.all([a.close(), b.close()]);
    console.log(await hanging);
  `;
  const r = spawnSync(process.execPath, ['--import', 'tsx', '--input-type=module', '-e', script], {
    cwd: fileURLToPath(new URL('../..', import.meta.url)),
    encoding: 'utf8',
    timeout: 20_000,
  });
  assert.equal(r.signal, null, 'child had to be killed: something kept it alive');
  assert.equal(r.status, 0, r.stderr);
  assert.equal(r.stdout.trim(), 'RPC_UNREACHABLE');
});

test('certificates from the identity layer work, and an issuer-signed certificate needs that issuer configured', async () => {
  const ca = await createCa({ subject: 'CN=admission' });
  const serverId = Identity.generate();
  const keyPair = (i: Identity) => ({ privateKey: i.signingKey, publicKey: i.publicSigningKey });
  const b = await node(undefined, {
    keyPair: keyPair(serverId),
    certificate: await createNodeCertificate(serverId.signingKeyPair),
    trustedIssuers: [ca.publicKey],
  });
  b.onRequest((_m, _p, caller) => caller.ref?.id);
  assert.equal(b.self.id, serverId.id);
  // A caller whose certificate is signed by the configured admission CA.
  const callerId = Identity.generate();
  const a = await node(undefined, {
    keyPair: keyPair(callerId),
    certificate: await createNodeCertificate(callerId.signingKeyPair, { issuer: ca }),
  });
  assert.equal(await a.request(b.self, 'who', null), callerId.id);
  // The same kind of certificate is refused by a node that does not trust that CA.
  const c = await node();
  c.onRequest(() => 'served');
  await assert.rejects(a.request(c.self, 'x', null, { timeoutMs: 2000 }), code('RPC_UNREACHABLE'));
  assert.equal(c.stats.connectionsRefused, 1);
  // And as a server: a caller that does not trust the CA refuses it as a key mismatch.
  const d = await node(undefined, { trustedIssuers: [] });
  assert.equal(await d.request(b.self, 'who', null), d.self.id); // b's own cert is self-signed: accepted
  await assert.rejects(d.request(a.self, 'who', null), code('RPC_PEER_KEY_MISMATCH'));
});

test('admissionVerifyRef: an assigned id needs an admission for exactly that id and key', async () => {
  const bootstrap = Identity.generate();
  const rogue = Identity.generate();
  const b = await node(undefined, { verifyRef: admissionVerifyRef(bootstrap.publicSigningKey, new SystemClock()) });
  b.onRequest((_m, _p, caller) => caller.ref?.id);
  const assigned = 'd'.repeat(40);
  const member = await makeNode();
  const admission = issueAdmission(bootstrap, member.key, assigned, 60_000);
  const ok = await node(member, { self: { id: assigned, admission } });
  assert.equal(await ok.request(b.self, 'who', null), assigned);
  // Someone else replays the member's admission with its own key.
  const thief = await node(undefined, { self: { id: assigned, admission } });
  await assert.rejects(thief.request(b.self, 'who', null), code('RPC_REFUSED'));
  // An admission signed by someone other than the bootstrap.
  const other = await makeNode();
  const forged = issueAdmission(rogue, other.key, assigned, 60_000);
  const forger = await node(other, { self: { id: assigned, admission: forged } });
  await assert.rejects(forger.request(b.self, 'who', null), code('RPC_REFUSED'));
  // Derived ids need no admission.
  const plain = await node();
  assert.equal(await plain.request(b.self, 'who', null), plain.self.id);
  assert.equal(b.stats.connectionsRefused, 2);
});

/**
 * A TCP relay in front of a listener. `freeze()` stops forwarding on every
 * connection open now, in both directions, without closing anything: bytes
 * are held as a cut network holds them behind TCP's retransmission backoff.
 * Connections opened later pass.
 */
async function relay(target: string): Promise<{ addr: string; freeze(): void; close(): Promise<void> }> {
  const [host, port] = [target.slice(0, target.lastIndexOf(':')), Number(target.slice(target.lastIndexOf(':') + 1))];
  const pairs: { frozen: boolean; a: net.Socket; b: net.Socket }[] = [];
  const srv = net.createServer((a) => {
    const b = net.connect(port, host);
    const pair = { frozen: false, a, b };
    pairs.push(pair);
    a.on('data', (d) => {
      if (!pair.frozen) b.write(d);
    });
    b.on('data', (d) => {
      if (!pair.frozen) a.write(d);
    });
    for (const [x, y] of [
      [a, b],
      [b, a],
    ])
      x.on('close', () => {
        if (!pair.frozen) y.destroy();
      });
    a.on('error', () => {});
    b.on('error', () => {});
  });
  await new Promise<void>((r) => srv.listen(0, '127.0.0.1', r));
  const addr = `127.0.0.1:${(srv.address() as net.AddressInfo).port}`;
  return {
    addr,
    freeze: () => {
      for (const p of pairs) p.frozen = true;
    },
    close: async () => {
      for (const p of pairs) {
        p.a.destroy();
        p.b.destroy();
      }
      await new Promise<void>((r) => srv.close(() => r()));
    },
  };
}

test('a link silent with requests unanswered is closed and the next request dials afresh', async () => {
  const a = await node(undefined, { limits: { requestTimeoutMs: 100, deadLinkSilenceMs: 400 } });
  const b = await node();
  b.onRequest(() => 'pong');
  const r = await relay(b.self.addr);
  try {
    const via = { ...b.self, addr: r.addr };
    // The dials get a loaded machine's handshake time (a dial is bounded by its request's timeout); the request
    // that must go unanswered keeps the short one.
    const dialing = { timeoutMs: 10_000 };
    assert.equal(await a.request(via, 'ping', null, dialing), 'pong');
    assert.equal(a.stats.connectionsDialed, 1);
    r.freeze();
    await assert.rejects(a.request(via, 'ping', null), code('RPC_TIMEOUT'));
    assert.equal(a.stats.deadLinksClosed, 0, 'one timeout alone does not close the link');
    await until(() => a.stats.deadLinksClosed === 1, 'the silent link was closed');
    assert.equal(await a.request(via, 'ping', null, dialing), 'pong', 'answered over a fresh link');
    assert.equal(a.stats.connectionsDialed, 2);
  } finally {
    await r.close();
  }
});

test('a late answer inside the silence limit is ignored and keeps the link', async () => {
  const a = await node(undefined, { limits: { deadLinkSilenceMs: 2000 } });
  const b = await node();
  b.onRequest(() => new Promise((res) => setTimeout(() => res('late'), 150)));
  await assert.rejects(a.request(b.self, 'slow', null, { timeoutMs: 30 }), code('RPC_TIMEOUT'));
  await until(() => a.stats.lateResponses === 1, 'late response counted');
  b.onRequest(() => 'quick');
  assert.equal(await a.request(b.self, 'fast', null), 'quick');
  assert.equal(a.stats.connectionsDialed, 1, 'the same link');
  assert.equal(a.stats.deadLinksClosed, 0);
});
