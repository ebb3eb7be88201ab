import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import type { Via } from '../../src/sip/message.ts';
import { responseRoutes } from '../../src/sip/response-route.ts';
import { type Peer, stampTopVia } from '../../src/sip/transport.ts';
import { req } from './helpers.ts';

function routes(viaValue: string, source: Peer) {
  const r = req('INVITE');
  r.headers[0] = { name: 'Via', value: viaValue };
  const via = stampTopVia(r, source) as Via;
  return { stamped: responseRoutes(r, source, via), unparsed: responseRoutes(r, source) };
}

const udp: Peer = { transport: 'UDP', address: '198.51.100.9', port: 40000 };
const tcp: Peer = { transport: 'TCP', address: '198.51.100.9', port: 40001, connId: 7 };

describe('response routes (unauthenticated: source only; authenticated: RFC 3261 18.2.2 with RFC 3581)', () => {
  it('UDP with maddr: the source for a stranger, the maddr once authenticated', () => {
    const { stamped, unparsed } = routes('SIP/2.0/UDP 203.0.113.5:5070;branch=z9hG4bK1;rport;maddr=203.0.113.5', udp);
    assert.deepEqual(stamped.source, { transport: 'UDP', address: '198.51.100.9', port: 40000 });
    assert.deepEqual(stamped.via, { transport: 'UDP', address: '203.0.113.5', port: 5070 });
    assert.deepEqual(
      { source: unparsed.source, via: unparsed.via },
      { source: stamped.source, via: stamped.via },
      'the same from the Via header as from the parsed one',
    );
  });

  it('UDP without rport: the source address at the sent-by port (18.2.2); never the sent-by host', () => {
    const { stamped } = routes('SIP/2.0/UDP 203.0.113.5:5070;branch=z9hG4bK2', udp);
    assert.deepEqual(stamped.source, { transport: 'UDP', address: '198.51.100.9', port: 5070 });
    assert.deepEqual(stamped.via, { transport: 'UDP', address: '198.51.100.9', port: 5070 });
  });

  it('a TCP Via on a UDP request does not switch a stranger to TCP', () => {
    const { stamped } = routes('SIP/2.0/TCP 203.0.113.5:5070;branch=z9hG4bK3;rport', udp);
    assert.equal(stamped.source.transport, 'UDP');
    assert.equal(stamped.via.transport, 'TCP');
  });

  it('TCP: the connection only for a stranger; with a fallback to the Via once authenticated', () => {
    const { stamped } = routes('SIP/2.0/TCP 203.0.113.5:5070;branch=z9hG4bK4;maddr=192.0.2.44', tcp);
    assert.deepEqual(stamped.source, {
      transport: 'TCP',
      address: '198.51.100.9',
      port: 40001,
      connId: 7,
      connectionOnly: true,
    });
    assert.deepEqual(stamped.via, { transport: 'TCP', address: '192.0.2.44', port: 5070, connId: 7 });
  });
});
