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

  it('not one naming its connection, another address, a host name, no port, no TLS, or asking for outbound', () => {
    for (const c of [
      'sip:bob@127.0.0.1:40001;transport=tls',
      'sip:bob@192.0.2.9:5061;transport=tls',
      'sip:bob@phone.example:5061;transport=tls',
      'sip:bob@127.0.0.1;transport=tls',
      'sip:bob@127.0.0.1:5061',
      'sip:bob@127.0.0.1:5061;transport=tcp',
      'sip:bob@127.0.0.1:5061;transport=tls;ob',
    ])
      assert.equal(directlyReachable(uri(c), tlsFlow), false, c);
  });

  it('WebSocket phones never', () => {
    const ws: Peer = { transport: 'WSS', address: '127.0.0.1', port: 40002, connId: 3, connectionOnly: true };
    assert.equal(directlyReachable(uri('sip:alice@abc.invalid;transport=ws'), ws), false);
    assert.equal(directlyReachable(uri('sip:alice@127.0.0.1:40002;transport=ws'), ws), false);
  });
});
