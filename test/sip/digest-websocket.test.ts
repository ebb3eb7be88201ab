import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { DigestAuthenticator, parseDigestParams } from '../../src/sip/digest.ts';
import { IncomingRequest } from '../../src/sip/element.ts';
import type { SipResponse } from '../../src/sip/message.ts';
import { PhoneCredentials } from '../../src/sip/phone-credentials.ts';
import type { ServerTransaction } from '../../src/sip/transaction-layer.ts';
import type { TransportName } from '../../src/sip/transport.ts';
import { SimClock } from '../../src/util/clock.ts';
import { req } from './helpers.ts';

/**
 * Browser phones (JsSIP 3) know MD5 only and read the last of several challenges: over a WebSocket the adapter
 * offers MD5 alone (when MD5 is offered at all); every other phone keeps RFC 8760's order, SHA-256 first.
 */
function challengeOver(transport: TransportName, algorithms?: Array<'SHA-256' | 'MD5'>): string[] {
  const clock = new SimClock(1_000_000);
  const credentials = PhoneCredentials.inMemory({ alice: 'alice-secret' }, 'r');
  const auth = new DigestAuthenticator({ clock, credentials }, { realm: 'r', algorithms });
  const sent: SipResponse[] = [];
  const tx = { toTag: 't', finalSent: false, authenticated: false, respond: (r: SipResponse) => sent.push(r) };
  const inc = new IncomingRequest(
    req('REGISTER'),
    { transport, address: '127.0.0.1', port: 5 },
    tx as unknown as ServerTransaction,
  );
  assert.equal(auth.authenticate(inc, false), undefined);
  assert.equal(sent[0]?.status, 401);
  return sent[0].headers
    .filter((h) => h.name === 'WWW-Authenticate')
    .map((h) => {
      const p = parseDigestParams(h.value);
      return (p.ok ? p.value.get('algorithm') : undefined) ?? '';
    });
}

describe('digest challenges over a WebSocket', () => {
  it('MD5 alone over WS and WSS, SHA-256 first elsewhere', () => {
    for (const t of ['WS', 'WSS'] as const) assert.deepEqual(challengeOver(t), ['MD5']);
    for (const t of ['UDP', 'TCP', 'TLS'] as const) assert.deepEqual(challengeOver(t), ['SHA-256', 'MD5']);
  });

  it('never MD5 where it is not offered', () => {
    assert.deepEqual(challengeOver('WSS', ['SHA-256']), ['SHA-256']);
  });
});
