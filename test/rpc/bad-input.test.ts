import assert from 'node:assert/strict';
import net from 'node:net';
import { after, before, test } from 'node:test';
import tls from 'node:tls';
import { decodeMessage, encodeHello, encodeRequest, MSG_RESPONSE } from '../../src/rpc/codec.ts';
import { encodeFrame, FrameDecoder } from '../../src/rpc/frame.ts';
import { nodeIdFromKey } from '../../src/identity/fingerprint.ts';
import type { TlsRpcEndpoint } from '../../src/rpc/tls-endpoint.ts';
import { SeededRandom } from '../../src/util/random.ts';
import { listen, makeNode, type TestNode, until } from './tls-helpers.ts';

let target: TlsRpcEndpoint;
let friend: TlsRpcEndpoint;
let attacker: TestNode;

before(async () => {
  target = await listen(undefined, { limits: { maxFrameBytes: 64 * 1024, maxWriteBufferBytes: 256 * 1024 } });
  target.onRequest((_m, p) => ({ echo: p }));
  friend = await listen();
  attacker = await makeNode();
});
after(async () => {
  await target.close();
  await friend.close();
});

/** The node keeps serving an honest peer. */
async function stillServes(): Promise<void> {
  assert.deepEqual(await friend.request(target.self, 'ping', 1), { echo: 1 });
}

function tcp(): Promise<net.Socket> {
  return new Promise((resolve, reject) => {
    const s = net.connect(target.port, '127.0.0.1', () => resolve(s));
    s.on('error', reject);
  });
}

/** A TLS client with a valid node certificate, so the handshake succeeds and only frames are bad. */
function tlsClient(withCert = true): Promise<tls.TLSSocket> {
  return new Promise((resolve, reject) => {
    const s = tls.connect({
      host: '127.0.0.1',
      port: target.port,
      ...(withCert ? { cert: attacker.cert.certPem, key: attacker.cert.keyPem } : {}),
      minVersion: 'TLSv1.3',
      rejectUnauthorized: false,
      checkServerIdentity: () => undefined,
    });
    s.once('secureConnect', () => resolve(s));
    s.on('error', reject);
  });
}

/** Wait until the node has closed the socket (reading and discarding whatever it sends first). */
const closed = (s: net.Socket) =>
  new Promise<void>((r) => {
    if (s.destroyed) return r();
    s.once('close', () => r());
    s.resume();
  });

test('raw TCP garbage on the RPC port is a failed handshake, counted', async () => {
  const before = target.stats.malformedDropped;
  const rnd = new SeededRandom(7);
  for (let i = 0; i < 5; i++) {
    const s = await tcp();
    s.on('error', () => {});
    s.write(Buffer.from(rnd.bytes(200 + rnd.int(2000))));
    await closed(s);
  }
  const s = await tcp();
  s.on('error', () => {});
  s.write('INVITE sip:bob@example.com SIP/2.0\r\n\r\n');
  await closed(s);
  await until(() => target.stats.malformedDropped >= before + 6, 'garbage counted');
  assert.ok(target.stats.handshakeFailures >= 6);
  await stillServes();
});

test('random bytes inside a valid TLS session are dropped and counted', async () => {
  const before = target.stats.malformedDropped;
  const rnd = new SeededRandom(8);
  const s = await tlsClient();
  s.on('error', () => {});
  s.write(Buffer.from(rnd.bytes(4096)));
  await closed(s); // a random length prefix is oversized (or empty): the connection is closed
  await until(() => target.stats.malformedDropped > before, 'random bytes counted');
  await stillServes();
});

test('an oversized frame is dropped, counted, closes that connection only', async () => {
  const before = target.stats.malformedDropped;
  const s = await tlsClient();
  s.on('error', () => {});
  const head = Buffer.alloc(4);
  head.writeUInt32BE(64 * 1024 + 1, 0);
  s.write(head);
  await closed(s);
  assert.equal(target.stats.malformedDropped, before + 1);
  // A frame exactly at the bound is fine.
  assert.deepEqual(await friend.request(target.self, 'big', new Uint8Array(60 * 1024)), {
    echo: new Uint8Array(60 * 1024),
  });
});

test('a truncated frame at end of stream is counted', async () => {
  const before = target.stats.malformedDropped;
  const s = await tlsClient();
  s.on('error', () => {});
  const f = encodeRequest(1, 'echo', 'x'.repeat(100));
  s.end(f.subarray(0, 50));
  await closed(s);
  await until(() => target.stats.malformedDropped === before + 1, 'truncation counted');
  await stillServes();
});

test('garbage frame bodies are dropped one by one; the link keeps working', async () => {
  const before = target.stats.malformedDropped;
  const s = await tlsClient();
  s.on('error', () => {});
  const rnd = new SeededRandom(9);
  const frames: Buffer[] = [encodeHello({ id: nodeIdFromKey(attacker.key), addr: '127.0.0.1:1', key: attacker.key })];
  for (let i = 0; i < 50; i++) frames.push(encodeFrame(Buffer.concat([Buffer.from([9]), rnd.bytes(1 + rnd.int(40))])));
  frames.push(encodeFrame(Buffer.from([1, 0, 0, 0, 5, 3, 0x61, 0x62]))); // request with method longer than body
  frames.push(encodeHello({ id: nodeIdFromKey(attacker.key), addr: '127.0.0.1:1', key: attacker.key })); // second hello
  frames.push(encodeRequest(77, 'echo', 'after garbage'));
  s.write(Buffer.concat(frames));
  const dec = new FrameDecoder();
  const reply = await new Promise<unknown>((resolve) => {
    s.on('data', (chunk) =>
      dec.push(chunk, (b) => {
        const m = decodeMessage(b);
        if (m.ok && m.value.type === MSG_RESPONSE && m.value.id === 77) resolve(m.value.payload);
      }),
    );
  });
  assert.deepEqual(reply, { echo: 'after garbage' });
  assert.equal(target.stats.malformedDropped, before + 52);
  s.destroy();
  await stillServes();
});

test('a peer that sends requests but never reads its answers cannot grow our buffers', async () => {
  const before = target.stats.refused;
  const s = await tlsClient();
  s.on('error', () => {});
  s.pause();
  const blob = new Uint8Array(32 * 1024);
  const frames = [encodeHello({ id: nodeIdFromKey(attacker.key), addr: '127.0.0.1:1', key: attacker.key })];
  for (let i = 1; i <= 400; i++) frames.push(encodeRequest(i, 'echo', blob));
  s.write(Buffer.concat(frames));
  await until(() => target.stats.refused > before, 'requests dropped once output backs up');
  s.destroy();
  await stillServes();
});

test('a TLS client without a certificate is refused', async () => {
  const before = target.stats.connectionsRefused;
  const s = await tlsClient(false);
  s.on('error', () => {});
  s.write(encodeRequest(1, 'echo', 1));
  await closed(s);
  assert.equal(target.stats.connectionsRefused, before + 1);
  await stillServes();
});

test('a hello whose key differs from the certificate key is refused', async () => {
  const before = target.stats.connectionsRefused;
  const s = await tlsClient();
  s.on('error', () => {});
  const other = await makeNode();
  s.write(encodeHello({ id: nodeIdFromKey(other.key), addr: '127.0.0.1:1', key: other.key }));
  s.write(encodeRequest(1, 'echo', 1));
  await closed(s);
  assert.equal(target.stats.connectionsRefused, before + 1);
  await stillServes();
});

test('a TCP connection that never completes its handshake is dropped after handshakeTimeoutMs', async () => {
  const slow = await listen(undefined, { limits: { handshakeTimeoutMs: 50 } });
  try {
    const s = await new Promise<net.Socket>((resolve, reject) => {
      const c = net.connect(slow.port, '127.0.0.1', () => resolve(c));
      c.on('error', reject);
    });
    await closed(s);
    assert.equal(slow.stats.handshakeFailures, 1);
  } finally {
    await slow.close();
  }
});

test('TLS 1.2 is not accepted', async () => {
  const before = target.stats.handshakeFailures;
  await assert.rejects(
    new Promise((resolve, reject) => {
      const s = tls.connect({
        host: '127.0.0.1',
        port: target.port,
        cert: attacker.cert.certPem,
        key: attacker.cert.keyPem,
        maxVersion: 'TLSv1.2',
        rejectUnauthorized: false,
      });
      s.once('secureConnect', () => resolve(s));
      s.on('error', reject);
    }),
  );
  await until(() => target.stats.handshakeFailures === before + 1, 'handshake failure counted');
  await stillServes();
});

/** Read frames from a raw socket into decoded messages. */
function messages(s: net.Socket): ReturnType<typeof decodeMessage>[] {
  const got: ReturnType<typeof decodeMessage>[] = [];
  const dec = new FrameDecoder();
  s.on('data', (c: Buffer) => dec.push(c, (b) => got.push(decodeMessage(b))));
  return got;
}

test('a request before HELLO is not served: refused, counted, and the link closed', async () => {
  let served = 0;
  const guarded = await listen();
  guarded.onRequest(() => {
    served++;
    return 'served';
  });
  try {
    for (const method of ['chord.ping', 'chord.find', 'chord.fetch', 'chord.store', 'secp2psip']) {
      const s = await new Promise<tls.TLSSocket>((resolve, reject) => {
        const c = tls.connect({
          host: '127.0.0.1',
          port: guarded.port,
          cert: attacker.cert.certPem,
          key: attacker.cert.keyPem,
          minVersion: 'TLSv1.3',
          rejectUnauthorized: false,
          checkServerIdentity: () => undefined,
        });
        c.once('secureConnect', () => resolve(c));
        c.on('error', reject);
      });
      s.on('error', () => {});
      const got = messages(s);
      s.write(encodeRequest(1, method, {}));
      await closed(s);
      assert.equal(got.length, 1, method);
      assert.ok(got[0].ok && got[0].value.type !== MSG_RESPONSE, `${method} answered with a refusal`);
    }
    assert.equal(served, 0);
    assert.equal(guarded.stats.requestsBeforeHello, 5);
  } finally {
    await guarded.close();
  }
});

test('a link that sends no HELLO after its handshake is closed after helloTimeoutMs', async () => {
  const ep = await listen(undefined, { limits: { helloTimeoutMs: 50 } });
  try {
    const s = await new Promise<tls.TLSSocket>((resolve, reject) => {
      const c = tls.connect({
        host: '127.0.0.1',
        port: ep.port,
        cert: attacker.cert.certPem,
        key: attacker.cert.keyPem,
        minVersion: 'TLSv1.3',
        rejectUnauthorized: false,
        checkServerIdentity: () => undefined,
      });
      c.once('secureConnect', () => resolve(c));
      c.on('error', reject);
    });
    s.on('error', () => {});
    await closed(s);
    assert.equal(ep.stats.helloTimeouts, 1);
    assert.equal(ep.connectionCount, 0);
  } finally {
    await ep.close();
  }
});

test('before HELLO only a small frame is accepted (a big partial frame cannot be parked)', async () => {
  const before = target.stats.malformedDropped;
  const s = await tlsClient();
  s.on('error', () => {});
  const head = Buffer.alloc(4);
  head.writeUInt32BE(32 * 1024, 0); // under maxFrameBytes (64 KiB), over the pre-HELLO bound
  s.write(head);
  await closed(s);
  assert.equal(target.stats.malformedDropped, before + 1);
  await stillServes();
});

test('one source address holds at most maxConnectionsPerAddress inbound connections; others still get in', async () => {
  const ep = await listen(undefined, { limits: { maxConnectionsPerAddress: 4, capLoopback: true } });
  const socks: net.Socket[] = [];
  try {
    for (let i = 0; i < 10; i++) {
      const s = net.connect(ep.port, '127.0.0.1');
      s.on('error', () => {});
      socks.push(s);
    }
    await until(() => ep.stats.perAddressRefused === 6, 'connections over the cap refused');
    // Another source address (127.0.0.2 on loopback) still completes its handshake.
    const s = await new Promise<tls.TLSSocket>((resolve, reject) => {
      const c = tls.connect({
        socket: net.connect({ host: '127.0.0.1', port: ep.port, localAddress: '127.0.0.2' }),
        cert: attacker.cert.certPem,
        key: attacker.cert.keyPem,
        minVersion: 'TLSv1.3',
        rejectUnauthorized: false,
        checkServerIdentity: () => undefined,
      });
      c.once('secureConnect', () => resolve(c));
      c.on('error', reject);
    });
    socks.push(s);
    assert.equal(ep.stats.perAddressRefused, 6);
  } finally {
    for (const s of socks) s.destroy();
    await ep.close();
  }
});
