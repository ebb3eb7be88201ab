import assert from 'node:assert/strict';
import { generateKeyPairSync, randomBytes } from 'node:crypto';
import { createSocket, type Socket } from 'node:dgram';
import { after, before, describe, it } from 'node:test';
import { defaultParams } from '../../src/dht/whanau/params.ts';
import { Identity } from '../../src/identity/identity.ts';
import { TlsRpcEndpoint } from '../../src/rpc/tls-endpoint.ts';
import { getHeader, type SipRequest } from '../../src/sip/message.ts';
import { parseMessage } from '../../src/sip/parser.ts';
import { buildResponse } from '../../src/sip/response.ts';
import { serialize } from '../../src/sip/serializer.ts';
import { type RunningWhanauSip, startWhanauSip } from '../../src/whanausip/daemon.ts';
import { IM_CONTEXT, IM_METHOD, imTbs, type WhanauIm } from '../../src/whanausip/instant-messages.ts';
import { isOverlayError } from '../../src/util/errors.ts';

/**
 * WhanauSIP instant messages over real sockets: four nodes on a TLS Whanau
 * DHT; a phone's MESSAGE to `sip:<hash>@<its node>` is looked up, sent over
 * the link pinned to the recipient's record key, signed by the sender's node
 * key, and handed to the recipient node's registered phone. Attacks: a node
 * claiming another's hash, a replayed message, a message for another node.
 */
describe('WhanauSIP instant messages over real sockets', { timeout: 300_000 }, () => {
  const params = defaultParams(4, { periodMs: 3600_000, rd: 10, rf: 6, rs: 6, t: 6, rpcTimeoutMs: 20_000 });
  const limits = { connectTimeoutMs: 15_000, handshakeTimeoutMs: 15_000, requestTimeoutMs: 20_000 };
  const running: RunningWhanauSip[] = [];
  let phone: Socket;
  const got: SipRequest[] = [];
  const sipPort = (r: RunningWhanauSip) => Number(r.sip.element.hostport.split(':')[1]);

  /** One request from a fresh UDP socket; resolves with the final status. */
  function send(port: number, text: string): Promise<number> {
    const s = createSocket('udp4');
    return new Promise((resolve, reject) => {
      const timer = setTimeout(() => reject(new Error('no final answer')), 60_000);
      s.on('message', (buf) => {
        const m = parseMessage(new Uint8Array(buf));
        if (!m.ok || m.value.kind !== 'response' || m.value.status < 200) return;
        clearTimeout(timer);
        s.close();
        resolve(m.value.status);
      });
      s.bind(0, '127.0.0.1', () => s.send(text.replace(/PORT/g, String(s.address().port)), port, '127.0.0.1'));
    });
  }

  const message = (node: RunningWhanauSip, from: string, to: string, text: string) => {
    const host = node.sip.element.hostport;
    return send(
      sipPort(node),
      `MESSAGE sip:${to}@${host} SIP/2.0\r\nVia: SIP/2.0/UDP 127.0.0.1:PORT;branch=z9hG4bK${randomBytes(6).toString('hex')};rport\r\n` +
        `Max-Forwards: 70\r\nFrom: <sip:${from}@${host}>;tag=a1\r\nTo: <sip:${to}@${host}>\r\n` +
        `Call-ID: ${randomBytes(6).toString('hex')}@t\r\nCSeq: 1 MESSAGE\r\nContent-Type: text/plain\r\n` +
        `Content-Length: ${Buffer.byteLength(text)}\r\n\r\n${text}`,
    );
  };

  before(async () => {
    for (let i = 0; i < 4; i++)
      running.push(
        await startWhanauSip({
          openRegistration: true,
          role: 'node',
          sipHost: '127.0.0.1',
          sipPort: 0,
          dhtHost: '127.0.0.1',
          dhtPort: 0,
          params,
          limits,
          schedule: false,
        }),
      );
    // A gateway (no phone of its own), friends with nodes 0 and 2.
    running.push(
      await startWhanauSip({
        role: 'gateway',
        sipHost: '127.0.0.1',
        sipPort: 0,
        dhtHost: '127.0.0.1',
        dhtPort: 0,
        params,
        limits,
        schedule: false,
      }),
    );
    const link = async (a: RunningWhanauSip, b: RunningWhanauSip) => {
      await a.daemon.addPeer({ hash: b.daemon.hash, addr: b.daemon.self.addr });
      await b.daemon.addPeer({ hash: a.daemon.hash, addr: a.daemon.self.addr });
    };
    for (const [a, b] of [
      [0, 1],
      [1, 2],
      [2, 3],
      [3, 0],
      [0, 2],
      [4, 0],
      [4, 2],
    ])
      await link(running[a], running[b]);
    // Node 1's phone: registers as node 1's identity and answers every MESSAGE with 200.
    phone = createSocket('udp4');
    await new Promise<void>((r) => phone.bind(0, '127.0.0.1', () => r()));
    let registered: (status: number) => void = () => {};
    phone.on('message', (buf, rinfo) => {
      const m = parseMessage(new Uint8Array(buf));
      if (m.ok && m.value.kind === 'response' && m.value.status >= 200) registered(m.value.status);
      if (!m.ok || m.value.kind !== 'request') return;
      got.push(m.value);
      phone.send(Buffer.from(serialize(buildResponse(m.value, 200, 'OK', { toTag: 'p1' }))), rinfo.port, rinfo.address);
    });
    const b = running[1];
    const h = b.sip.element.hostport;
    const hash = b.daemon.hash;
    // From the phone's own socket, as a phone does: its Contact is where its REGISTER came from.
    const port = phone.address().port;
    const status = await new Promise<number>((resolve) => {
      registered = resolve;
      phone.send(
        `REGISTER sip:${h} SIP/2.0\r\nVia: SIP/2.0/UDP 127.0.0.1:${port};branch=z9hG4bKreg1;rport\r\nMax-Forwards: 70\r\n` +
          `From: <sip:${hash}@${h}>;tag=r1\r\nTo: <sip:${hash}@${h}>\r\nCall-ID: reg1@t\r\nCSeq: 1 REGISTER\r\n` +
          `Contact: <sip:${hash}@127.0.0.1:${port}>\r\nExpires: 3600\r\nContent-Length: 0\r\n\r\n`,
        sipPort(b),
        '127.0.0.1',
      );
    });
    assert.equal(status, 200);
    const epoch = running[0].daemon.node.nextEpoch();
    await Promise.all(running.map((r) => r.daemon.setup(epoch)));
  });

  after(async () => {
    phone?.close();
    await Promise.all(running.map((r) => r.close()));
  });

  it("node 0's phone messages node 1's identity: node 1's phone gets it from node 0's hash", async () => {
    const [a, b] = running;
    assert.equal(await message(a, a.daemon.hash, b.daemon.hash, 'hello over whanau'), 200);
    const m = got.find((r) => Buffer.from(r.body).toString() === 'hello over whanau');
    assert.ok(m, 'delivered to the phone');
    assert.equal(getHeader(m, 'From')?.replace(/;tag=.*/, ''), `<sip:${a.daemon.hash}@${b.sip.element.hostport}>`);
    assert.equal(getHeader(m, 'Content-Type'), 'text/plain');
  });

  it('a phone sending as another identity is 403; an unknown hash 404; a node without a phone 480', async () => {
    const [a, b, c] = running;
    assert.equal(await message(a, b.daemon.hash, c.daemon.hash, 'spoofed'), 403);
    assert.equal(await message(a, a.daemon.hash, 'ab'.repeat(20), 'nobody'), 404);
    assert.equal(await message(a, a.daemon.hash, c.daemon.hash, 'no phone there'), 480);
  });

  it('a node claiming another hash, a replayed message and one for another node are refused', async () => {
    const [a, b] = running;
    const ep = await TlsRpcEndpoint.listen({ keyPair: generateKeyPairSync('ed25519'), limits });
    const before = got.length;
    try {
      const real = a.daemon.identity;
      const to = { id: b.daemon.hash, addr: b.daemon.self.addr, key: b.daemon.identity.bundle.sig };
      const unsigned: Omit<WhanauIm, 'sig'> = {
        from: real.id,
        to: b.daemon.hash,
        ts: Date.now(),
        nonce: randomBytes(16),
        type: 'text/plain',
        body: Buffer.from('forged'),
      };
      // Signed by node 0's key but sent over another key's TLS link: the caller is not node 0.
      const stolen = { ...unsigned, sig: real.sign(IM_CONTEXT, imTbs(unsigned)) };
      await assert.rejects(ep.request(to, IM_METHOD, stolen), (e) => isOverlayError(e) || /refused/.test(String(e)));
      // Node 0's own link: the first copy is taken, the replay refused.
      const ok = await a.daemon.endpoint.request(to, IM_METHOD, stolen);
      assert.deepEqual(ok, { delivered: 1 });
      await assert.rejects(a.daemon.endpoint.request(to, IM_METHOD, stolen));
      // A message for node 2 handed to node 1.
      const other = Identity.generate();
      const wrong = { ...unsigned, to: other.id, nonce: randomBytes(16) };
      await assert.rejects(
        a.daemon.endpoint.request(to, IM_METHOD, { ...wrong, sig: real.sign(IM_CONTEXT, imTbs(wrong)) }),
      );
      assert.equal(got.length, before + 1, 'only the genuine first copy reached the phone');
    } finally {
      await ep.close();
    }
  });

  it("a gateway relays a client's MESSAGE signed as itself, whatever the From says, and limits each source", async () => {
    const [, b, , , gw] = running;
    assert.equal(await message(gw, 'ab'.repeat(20), b.daemon.hash, 'hello through the gateway'), 200);
    const m = got.find((r) => Buffer.from(r.body).toString() === 'hello through the gateway');
    assert.ok(m, 'delivered to the phone');
    // The sender the recipient sees is the gateway's identity, not the From the client claimed.
    assert.equal(getHeader(m, 'From')?.replace(/;tag=.*/, ''), `<sip:${gw.daemon.hash}@${b.sip.element.hostport}>`);
    assert.equal(await message(gw, 'anyone', 'ab'.repeat(20), 'nobody'), 404);
    // The per-source burst (GATEWAY_MESSAGE_RATE: 10) is spent: 503 with Retry-After, nothing relayed.
    const statuses: number[] = [];
    for (let i = 0; i < 10; i++) statuses.push(await message(gw, 'anyone', b.daemon.hash, `burst ${i}`));
    assert.ok(statuses.includes(503), statuses.join(' '));
    const relayed = got.filter((r) => /^burst \d+$/.test(Buffer.from(r.body).toString())).length;
    assert.equal(relayed, statuses.filter((x) => x === 200).length);
  });
});
