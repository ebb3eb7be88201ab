import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { SipElement } from '../../src/sip/element.ts';
import { directlyReachable, FlowTokens, flowOf, isPrivateAddress } from '../../src/sip/flow.ts';
import { FlowRoutes } from '../../src/sip/flow-routes.ts';
import { getHeaders, type SipRequest } from '../../src/sip/message.ts';
import { RedirectServer } from '../../src/sip/redirect-server.ts';
import { Registrar } from '../../src/sip/registrar.ts';
import type { Peer } from '../../src/sip/transport.ts';
import { parseUri } from '../../src/sip/uri.ts';
import { SimClock } from '../../src/util/clock.ts';
import { MemoryTransport, wire } from './helpers.ts';

const uri = (s: string) => {
  const u = parseUri(s);
  assert.ok(u.ok, s);
  return u.value;
};

const UDP: Peer = { transport: 'UDP', address: '203.0.113.9', port: 40000 };
const TCP: Peer = { transport: 'TCP', address: '203.0.113.9', port: 51234, connId: 7 };

describe('flows (RFC 5626, RFC 3581, RFC 5923)', () => {
  it('a flow over a connection is that connection only', () => {
    assert.deepEqual(flowOf(TCP), { ...TCP, connectionOnly: true });
    assert.deepEqual(flowOf({ ...UDP, connectionOnly: true }), UDP);
  });

  it('tells contacts a caller can reach from those only the flow reaches', () => {
    // Exactly where its datagrams come from: reachable (the seed's plain 302).
    assert.equal(directlyReachable(uri('sip:bob@203.0.113.9:40000'), UDP), true);
    // Linphone over TCP: Contact = its connection's ephemeral port.
    assert.equal(directlyReachable(uri('sip:bob@203.0.113.9:51234;transport=tcp'), TCP), false);
    // Over TCP naming a listening port of its own host: reachable by a new connection.
    assert.equal(directlyReachable(uri('sip:bob@203.0.113.9:5060;transport=tcp'), TCP), true);
    // Behind a NAT: a private Contact, or the public address with another port (RFC 3581).
    assert.equal(directlyReachable(uri('sip:bob@192.168.1.20:5060'), UDP), false);
    assert.equal(directlyReachable(uri('sip:bob@203.0.113.9:5060'), UDP), false);
    // RFC 5626 outbound asked for: always over the flow.
    assert.equal(directlyReachable(uri('sip:bob@203.0.113.9:40000;ob'), UDP), false);
    // A third-party registration of a public address is taken at its word.
    assert.equal(directlyReachable(uri('sip:bob@198.51.100.4'), UDP), true);
    assert.equal(directlyReachable(uri('sip:bob@192.168.1.20'), undefined), true);
    for (const a of ['10.1.2.3', '172.20.0.1', '192.168.0.1', '100.64.0.1', '127.0.0.1', 'fd00::1', 'fe80::1'])
      assert.equal(isPrivateAddress(a), true, a);
    for (const a of ['203.0.113.1', '172.32.0.1', '2001:db8::1']) assert.equal(isPrivateAddress(a), false, a);
  });

  it('flow tokens round-trip, and a forged, altered, foreign or expired one opens nothing', () => {
    const t = new FlowTokens();
    assert.deepEqual(t.openFlow(t.flow(TCP)), { ...TCP, connectionOnly: true });
    assert.deepEqual(t.openFlow(t.flow(UDP)), UDP);
    const tok = t.flow(UDP);
    const altered = `${tok.slice(0, -2)}${tok.endsWith('AA') ? 'AB' : 'AA'}`;
    assert.equal(t.openFlow(altered), undefined);
    assert.equal(new FlowTokens().openFlow(tok), undefined, 'another secret');
    assert.equal(t.openFlow('not a token!'), undefined);
    const target = t.target('in', 'bob', 10_000);
    assert.equal(t.openTarget('in', target, 9_000), 'bob');
    assert.equal(t.openTarget('out', target, 9_000), undefined, 'another kind');
    assert.equal(t.openTarget('in', target, 11_000), undefined, 'expired');
    assert.equal(t.openFlow(target), undefined, 'a target is not a flow');
  });

  it('double Record-Route: each side reaches the other side over its flow', () => {
    const element = new SipElement({ transport: new MemoryTransport(), clock: new SimClock() });
    const routes = new FlowRoutes({ element, tokens: new FlowTokens() });
    const caller: Peer = { transport: 'TCP', address: '198.51.100.1', port: 40001, connId: 3, connectionOnly: true };
    const callee: Peer = { transport: 'UDP', address: '203.0.113.9', port: 40000 };
    const rr = routes.recordRoute(caller, callee).map((h) => h.value);
    assert.match(rr[1], /;transport=tcp;lr;fl=/);
    const bye = (routeValues: string[]): SipRequest => ({
      kind: 'request',
      method: 'BYE',
      uri: 'sip:x@192.0.2.1',
      version: 'SIP/2.0',
      headers: [{ name: 'Route', value: [...routeValues, '<sip:other.example;lr>'].join(', ') }],
      body: new Uint8Array(0),
    });
    // The callee's route set is the list in order; the caller's is it reversed (RFC 3261 12.1.1, 12.1.2).
    const fromCallee = bye(rr);
    assert.deepEqual(routes.popOwn(fromCallee), caller);
    assert.deepEqual(getHeaders(fromCallee, 'Route'), ['<sip:other.example;lr>']);
    assert.deepEqual(routes.popOwn(bye([...rr].reverse())), callee);
    assert.equal(routes.popOwn(bye([])), undefined);
  });

  it('a registrar used as outbound proxy proxies the followed 302 instead of answering it again (no loop)', () => {
    const clock = new SimClock();
    const transport = new MemoryTransport();
    const element = new SipElement({ transport, clock });
    const registrar = new Registrar({ clock }, { minExpires: 60 });
    new RedirectServer({ element, registrar });
    const bob: Peer = { transport: 'UDP', address: '127.0.0.1', port: 5071 };
    transport.inject(
      wire('REGISTER', {
        uri: 'sip:127.0.0.1',
        to: '<sip:bob@127.0.0.1>',
        branch: 'z9hG4bK-r1',
        headers: ['Contact: <sip:bob@127.0.0.1:5071>', 'Expires: 600'],
      }),
      bob,
    );
    assert.deepEqual(transport.statuses(), [200]);
    transport.clear();
    transport.inject(wire('INVITE', { uri: 'sip:bob@127.0.0.1', branch: 'z9hG4bK-i1', callId: 'c1' }));
    assert.deepEqual(transport.statuses(), [100, 302]);
    transport.clear();
    // The phone follows the 302 back through us: proxied to bob's phone, record-routed, not a second 302.
    transport.inject(wire('INVITE', { uri: 'sip:bob@127.0.0.1:5071', branch: 'z9hG4bK-i2', callId: 'c1', cseq: 2 }));
    assert.deepEqual(transport.statuses(), [100]);
    const out = transport.sent.find((s) => s.msg.kind === 'request');
    assert.ok(out && out.msg.kind === 'request');
    assert.equal(out.msg.uri, 'sip:bob@127.0.0.1:5071');
    assert.deepEqual(out.to, bob);
    assert.equal(getHeaders(out.msg, 'Record-Route').length, 2);
  });

  it('a registrar reaches a TCP phone with an ephemeral-port Contact over its connection', () => {
    const clock = new SimClock();
    const transport = new MemoryTransport();
    const element = new SipElement({ transport, clock });
    new RedirectServer({ element, registrar: new Registrar({ clock }, { minExpires: 60 }) });
    const conn: Peer = { transport: 'TCP', address: '198.51.100.7', port: 50123, connId: 4 };
    transport.inject(
      wire('REGISTER', {
        uri: 'sip:127.0.0.1',
        to: '<sip:carol@127.0.0.1>',
        branch: 'z9hG4bK-r2',
        headers: ['Contact: <sip:carol@198.51.100.7:50123;transport=tcp>', 'Expires: 600'],
      }),
      conn,
    );
    transport.clear();
    transport.inject(wire('INVITE', { uri: 'sip:carol@127.0.0.1', branch: 'z9hG4bK-i3', callId: 'c3' }));
    assert.deepEqual(transport.statuses(), [100], 'no 302 to a port nobody listens on');
    const out = transport.sent.find((s) => s.msg.kind === 'request');
    assert.deepEqual(out?.to, { ...conn, connectionOnly: true });
  });
});
