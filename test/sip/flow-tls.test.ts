import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { directlyReachable } from '../../src/sip/flow.ts';
import type { Peer } from '../../src/sip/transport.ts';
import { parseUri } from '../../src/sip/uri.ts';

const uri = (s: string) => {
  const u = parseUri(s);
  assert.ok(u.ok);
  return u.value;
};
const tlsFlow: Peer = { transport: 'TLS', address: '127.0.0.1', port: 40001, connId: 7, connectionOnly: true };

describe('which TLS phones a 302 may name directly', () => {
  it('one listening for TLS on its own port, at the address it registered from', () => {
    assert.equal(directlyReachable(uri('sip:bob@127.0.0.1:5061;transport=tls'), tlsFlow), true);
    assert.equal(directlyReachable(uri('sips:bob@127.0.0.1:5061'), tlsFlow), true);
  });

  it('not one whose Contact is its connection (nothing listens there), an .invalid name, or asks for outbound', () => {
    for (const c of [
      'sip:bob@127.0.0.1:40001;transport=tls',
      'sip:bob@127.0.0.1:5061;transport=tls;ob',
      'sip:bob@df7jal23ls0d.invalid;transport=tls',
    ])
      assert.equal(directlyReachable(uri(c), tlsFlow), false, c);
  });

  it('WebSocket phones never, whatever their Contact says', () => {
    const ws: Peer = { transport: 'WSS', address: '127.0.0.1', port: 40002, connId: 3, connectionOnly: true };
    for (const c of [
      'sip:alice@abc.invalid;transport=ws',
      'sip:alice@127.0.0.1:40002;transport=ws',
      'sip:alice@127.0.0.1:5060',
      'sip:alice@192.0.2.9:5060',
    ])
      assert.equal(directlyReachable(uri(c), ws), false, c);
    // Nor a Contact asking for a WebSocket, whatever flow it came over.
    assert.equal(directlyReachable(uri('sip:alice@abc.invalid;transport=wss'), tlsFlow), false);
  });
});
