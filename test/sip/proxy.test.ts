import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { SipElement } from '../../src/sip/element.ts';
import { getHeader, getHeaders, type SipMessage } from '../../src/sip/message.ts';
import { StatefulProxy } from '../../src/sip/proxy.ts';
import { TransportStack } from '../../src/sip/transport-stack.ts';
import { UserAgent } from '../../src/sip/user-agent.ts';
import { SimClock, SystemClock } from '../../src/util/clock.ts';
import { MemoryTransport, wire } from './helpers.ts';

const DEST = { transport: 'UDP' as const, address: '192.0.2.50', port: 5070 };

function setup() {
  const clock = new SimClock();
  const transport = new MemoryTransport();
  const element = new SipElement({ transport, clock });
  const proxy = new StatefulProxy({ element });
  element.handle({ onRequest: (inc) => void proxy.forward(inc, { uri: 'sip:bob@192.0.2.50:5070', dest: DEST }) });
  const downstream = (): SipMessage[] => transport.sent.filter((s) => s.to.address === DEST.address).map((s) => s.msg);
  const upstream = (): SipMessage[] => transport.sent.filter((s) => s.to.address !== DEST.address).map((s) => s.msg);
  /** A response from the callee to the forwarded request: our Via on top, then the caller's. */
  const answer = (status: number, reason: string, method = 'INVITE'): string => {
    const fwd = downstream().find((m) => m.kind === 'request' && m.method === method);
    assert.ok(fwd);
    const vias = getHeaders(fwd, 'Via').map((v) => `Via: ${v}`);
    return [
      `SIP/2.0 ${status} ${reason}`,
      ...vias,
      'From: <sip:alice@example.com>;tag=a1',
      `To: <sip:bob@example.com>${status > 100 ? ';tag=b9' : ''}`,
      'Call-ID: call-w1',
      `CSeq: 1 ${method}`,
      'Content-Length: 0',
      '',
      '',
    ].join('\r\n');
  };
  return { clock, transport, downstream, upstream, answer };
}

describe('StatefulProxy (RFC 3261 16)', () => {
  it('forwards an INVITE with a new Via, Max-Forwards decremented and the Request-URI retargeted', () => {
    const { transport, downstream, upstream } = setup();
    transport.inject(wire('INVITE', { branch: 'z9hG4bK-p1' }));
    assert.deepEqual(
      upstream().map((m) => (m.kind === 'response' ? m.status : 0)),
      [100],
    );
    const fwd = downstream()[0];
    assert.ok(fwd.kind === 'request');
    assert.equal(fwd.uri, 'sip:bob@192.0.2.50:5070');
    assert.equal(getHeader(fwd, 'Max-Forwards'), '69');
    const vias = getHeaders(fwd, 'Via');
    assert.equal(vias.length, 2);
    assert.match(vias[0], /^SIP\/2\.0\/UDP 127\.0\.0\.1:5060;branch=z9hG4bK[0-9a-f]+;rport$/);
    assert.match(vias[1], /branch=z9hG4bK-p1/);
  });

  it('relays provisional and final responses upstream without its own Via, not the 100', () => {
    const { transport, upstream, answer } = setup();
    transport.inject(wire('INVITE', { branch: 'z9hG4bK-p2' }));
    transport.inject(answer(100, 'Trying'));
    transport.inject(answer(180, 'Ringing'));
    transport.inject(answer(200, 'OK'));
    const ups = upstream().filter((m) => m.kind === 'response');
    assert.deepEqual(
      ups.map((m) => (m.kind === 'response' ? m.status : 0)),
      [100, 180, 200],
    );
    for (const r of ups.slice(1)) assert.deepEqual(getHeaders(r, 'Via').length, 1);
    assert.match(getHeader(ups[2], 'Via') ?? '', /branch=z9hG4bK-p2/);
  });

  it('a non-2xx final is ACKed downstream by the client transaction and relayed', () => {
    const { transport, downstream, upstream, answer } = setup();
    transport.inject(wire('INVITE', { branch: 'z9hG4bK-p3' }));
    transport.inject(answer(486, 'Busy Here'));
    assert.ok(downstream().some((m) => m.kind === 'request' && m.method === 'ACK'));
    assert.equal(upstream().at(-1)?.kind === 'response' && (upstream().at(-1) as { status: number }).status, 486);
  });

  it('answers 408 upstream when the target never answers (Timer B)', () => {
    const { transport, clock, downstream, upstream } = setup();
    transport.inject(wire('INVITE', { branch: 'z9hG4bK-p4' }));
    clock.advance(32_000);
    assert.equal(downstream().filter((m) => m.kind === 'request' && m.method === 'INVITE').length, 7, 'Timer A');
    const last = upstream().at(-1);
    assert.ok(last?.kind === 'response' && last.status === 408);
  });

  it('forwards a CANCEL only once a provisional response arrived (9.1, 16.10)', () => {
    const { transport, downstream, upstream, answer } = setup();
    transport.inject(wire('INVITE', { branch: 'z9hG4bK-p5' }));
    transport.inject(wire('CANCEL', { branch: 'z9hG4bK-p5' }));
    assert.deepEqual(
      upstream().map((m) => (m.kind === 'response' ? `${m.status} ${getHeader(m, 'CSeq')}` : '')),
      ['100 1 INVITE', '200 1 CANCEL', '487 1 INVITE'],
    );
    assert.equal(downstream().filter((m) => m.kind === 'request' && m.method === 'CANCEL').length, 0);
    transport.inject(answer(180, 'Ringing'));
    const cancel = downstream().find((m) => m.kind === 'request' && m.method === 'CANCEL');
    assert.ok(cancel);
    const invite = downstream().find((m) => m.kind === 'request' && m.method === 'INVITE');
    assert.equal(getHeader(cancel, 'Via'), getHeader(invite!, 'Via'), 'same branch as the forwarded INVITE');
  });

  it('refuses to forward when Max-Forwards is 0', () => {
    const { transport, downstream, upstream } = setup();
    transport.inject(wire('INVITE', { branch: 'z9hG4bK-p6' }).replace('Max-Forwards: 70', 'Max-Forwards: 0'));
    assert.equal(downstream().length, 0);
    assert.ok(upstream().some((m) => m.kind === 'response' && m.status === 483));
  });

  it('carries a real call from one user agent to another over UDP', async () => {
    const mk = async () =>
      new SipElement({
        transport: await TransportStack.listen({ host: '127.0.0.1', port: 0 }),
        clock: new SystemClock(),
      });
    const [pe, ae, be] = await Promise.all([mk(), mk(), mk()]);
    try {
      const proxy = new StatefulProxy({ element: pe });
      const bob = new UserAgent({ element: be }, { user: 'bob' });
      const alice = new UserAgent({ element: ae }, { user: 'alice' });
      const bobPeer = { transport: 'UDP' as const, address: '127.0.0.1', port: be.transport.local.port };
      pe.handle({ onRequest: (inc) => void proxy.forward(inc, { uri: bob.contactUri, dest: bobPeer }) });
      const call = await alice.invite(`sip:bob@127.0.0.1`, { ...bobPeer, port: pe.transport.local.port });
      assert.equal(bob.incoming.length, 1);
      assert.equal(getHeaders(bob.incoming[0].request, 'Via').length, 2, 'through the proxy');
      assert.equal(proxy.stats.forwarded, 1);
      assert.equal((await alice.bye(call)).status, 200);
    } finally {
      await Promise.all([pe.close(), ae.close(), be.close()]);
    }
  });
});
