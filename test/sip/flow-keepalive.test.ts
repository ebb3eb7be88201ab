import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { createSocket } from 'node:dgram';
import { once } from 'node:events';
import { connect } from 'node:net';
import { describe, it } from 'node:test';
import { FlowKeepAlive } from '../../src/sip/flow-keepalive.ts';
import { Registrar } from '../../src/sip/registrar.ts';
import { isStun, stunBindingResponse } from '../../src/sip/stun.ts';
import type { Peer } from '../../src/sip/transport.ts';
import { TransportStack } from '../../src/sip/transport-stack.ts';
import { SimClock } from '../../src/util/clock.ts';
import { req } from './helpers.ts';

function bindingRequest(attrs: Buffer = Buffer.alloc(0)): Buffer {
  const b = Buffer.alloc(20);
  b.writeUInt16BE(0x0001, 0);
  b.writeUInt16BE(attrs.length, 2);
  b.writeUInt32BE(0x2112a442, 4);
  randomBytes(12).copy(b, 8);
  return Buffer.concat([b, attrs]);
}

/** The XOR-MAPPED-ADDRESS of a Binding success response, decoded (IPv4). */
function mapped(resp: Buffer): { address: string; port: number } {
  assert.equal(resp.readUInt16BE(0), 0x0101);
  assert.equal(resp.readUInt16BE(20), 0x0020);
  const port = resp.readUInt16BE(26) ^ 0x2112;
  const ip = (resp.readUInt32BE(28) ^ 0x2112a442) >>> 0;
  return { address: [24, 16, 8, 0].map((s) => (ip >>> s) & 255).join('.'), port };
}

describe('keep-alives (RFC 5626 4.4)', () => {
  it('STUN: a Binding request is answered with the address it came from; other STUN is not', () => {
    const r = bindingRequest();
    assert.equal(isStun(r), true);
    const resp = stunBindingResponse(r, '203.0.113.7', 40123);
    assert.ok(resp);
    assert.deepEqual(mapped(resp), { address: '203.0.113.7', port: 40123 });
    assert.deepEqual(resp.subarray(8, 20), r.subarray(8, 20), 'same transaction id');
    // A comprehension-required attribute we do not know (USERNAME here): not answered.
    const withUser = Buffer.from([0x00, 0x06, 0x00, 0x04, 0x61, 0x62, 0x63, 0x64]);
    assert.equal(stunBindingResponse(bindingRequest(withUser), '203.0.113.7', 1), undefined);
    assert.equal(isStun(Buffer.from('OPTIONS sip:x SIP/2.0\r\n\r\n')), false);
    const v6 = stunBindingResponse(r, '2001:db8::5', 5060);
    assert.equal(v6?.readUInt16BE(22), 20, 'an IPv6 XOR-MAPPED-ADDRESS');
  });

  it('the SIP UDP port answers a phone STUN keep-alive; a TCP connection answers a CRLF ping with a pong', async () => {
    const t = await TransportStack.listen({ host: '127.0.0.1', port: 0 });
    try {
      const sock = createSocket('udp4');
      await new Promise<void>((r) => sock.bind(0, '127.0.0.1', r));
      sock.send(bindingRequest(), t.local.port, '127.0.0.1');
      const [resp] = (await once(sock, 'message')) as [Buffer];
      assert.deepEqual(mapped(resp), { address: '127.0.0.1', port: sock.address().port });
      sock.close();
      const c = connect(t.local.port, '127.0.0.1');
      await once(c, 'connect');
      c.write('\r\n\r\n');
      const [pong] = (await once(c, 'data')) as [Buffer];
      assert.equal(pong.toString(), '\r\n');
      c.destroy();
    } finally {
      await t.close();
    }
  });

  it('pings the flows of phones behind a NAT or on a connection, each once a round, and no reachable phone', async () => {
    const clock = new SimClock();
    const registrar = new Registrar({ clock }, { minExpires: 10 });
    const reg = (user: string, contact: string, flow: Peer, n: number) => {
      const r = req('REGISTER', {
        branch: `z9hG4bK-k${n}`,
        callId: `k${n}`,
        extra: [
          { name: 'Contact', value: `<${contact}>` },
          { name: 'Expires', value: '600' },
        ],
      });
      r.headers = r.headers.map((h) => (h.name === 'To' ? { name: 'To', value: `<sip:${user}@example.com>` } : h));
      assert.equal(registrar.register(r, flow).status, 200);
    };
    const nat: Peer = { transport: 'UDP', address: '203.0.113.9', port: 40000 };
    const tcp: Peer = { transport: 'TCP', address: '198.51.100.2', port: 51000, connId: 3, connectionOnly: true };
    reg('natted', 'sip:natted@192.168.1.5:5060', nat, 1);
    reg('natted', 'sip:natted@192.168.1.5:5062', nat, 2);
    reg('tcp', 'sip:tcp@198.51.100.2:51000;transport=tcp', tcp, 3);
    reg('public', 'sip:public@198.51.100.3:5060', { transport: 'UDP', address: '198.51.100.3', port: 5060 }, 4);
    const sent: Peer[] = [];
    const k = new FlowKeepAlive({ registrar, send: (to) => sent.push(to), clock }, 20_000);
    k.start();
    clock.advance(20_000);
    assert.deepEqual(sent, [nat, tcp]);
    clock.advance(20_000);
    assert.equal(sent.length, 4);
    k.stop();
    clock.advance(60_000);
    assert.equal(sent.length, 4);
  });

  it('a keep-alive reaches a UDP phone over its flow and a TCP phone over its connection', async () => {
    const t = await TransportStack.listen({ host: '127.0.0.1', port: 0 });
    try {
      const sock = createSocket('udp4');
      await new Promise<void>((r) => sock.bind(0, '127.0.0.1', r));
      t.keepAlive({ transport: 'UDP', address: '127.0.0.1', port: sock.address().port });
      const [ping] = (await once(sock, 'message')) as [Buffer];
      assert.equal(ping.toString(), '\r\n\r\n');
      sock.close();
      const c = connect(t.local.port, '127.0.0.1');
      await once(c, 'connect');
      // The connection is known to the transport once it carried a message; a ping it answers is enough here.
      c.write('\r\n\r\n');
      await once(c, 'data');
      const connId = 1;
      t.keepAlive({ transport: 'TCP', address: '127.0.0.1', port: c.localPort ?? 0, connId });
      const [tcpPing] = (await once(c, 'data')) as [Buffer];
      assert.equal(tcpPing.toString(), '\r\n\r\n');
      c.destroy();
    } finally {
      await t.close();
    }
  });
});
