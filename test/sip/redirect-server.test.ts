import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { type IncomingRequest, SipElement } from '../../src/sip/element.ts';
import { getHeader, getHeaders, type SipResponse } from '../../src/sip/message.ts';
import { RedirectServer } from '../../src/sip/redirect-server.ts';
import { Registrar } from '../../src/sip/registrar.ts';
import { SimClock } from '../../src/util/clock.ts';
import { MemoryTransport, wire } from './helpers.ts';

function setup() {
  const clock = new SimClock();
  const transport = new MemoryTransport();
  const element = new SipElement({ transport, clock });
  const registrar = new Registrar({ clock }, { minExpires: 60 });
  const server = new RedirectServer({ element, registrar });
  const last = (): SipResponse => {
    const r = transport.sent.at(-1)?.msg;
    assert.ok(r && r.kind === 'response');
    return r;
  };
  return { clock, transport, element, server, last };
}

describe('RedirectServer (RFC 3261 8.3, 10.3)', () => {
  it('answers an INVITE for a registered AOR with 302 listing its bindings, and absorbs the ACK', () => {
    const { transport, last } = setup();
    transport.inject(
      wire('REGISTER', {
        uri: 'sip:example.com',
        branch: 'z9hG4bK-r1',
        headers: ['Contact: <sip:bob@192.0.2.9:5070>;q=0.5', 'Contact: <sip:bob@198.51.100.4>', 'Expires: 600'],
      }),
    );
    assert.equal(last().status, 200);
    transport.clear();
    transport.inject(wire('INVITE', { uri: 'sip:bob@example.com', branch: 'z9hG4bK-i1', callId: 'inv-1' }));
    assert.deepEqual(transport.statuses(), [100, 302]);
    const r302 = last();
    assert.deepEqual(getHeaders(r302, 'Contact'), [
      '<sip:bob@198.51.100.4>;expires=600',
      '<sip:bob@192.0.2.9:5070>;q=0.5;expires=600',
    ]);
    assert.match(getHeader(r302, 'To') ?? '', /;tag=/);
    // The ACK for the 302 carries the INVITE's branch: absorbed by the transaction, nothing sent.
    transport.clear();
    transport.inject(wire('ACK', { branch: 'z9hG4bK-i1', callId: 'inv-1', to: getHeader(r302, 'To') }));
    assert.equal(transport.sent.length, 0);
  });

  it('404 for an unknown user, 416 for a non-SIP URI', () => {
    const { transport, last } = setup();
    transport.inject(wire('INVITE', { uri: 'sip:nobody@example.com', branch: 'z9hG4bK-n1' }));
    assert.equal(last().status, 404);
    transport.inject(wire('INVITE', { uri: 'tel:+15551234', branch: 'z9hG4bK-n2', callId: 'n2' }));
    assert.equal(last().status, 416);
  });

  it('OPTIONS gets 200 with Allow; an unknown method 405 with Allow', () => {
    const { transport, last } = setup();
    transport.inject(wire('OPTIONS', { branch: 'z9hG4bK-o1' }));
    assert.equal(last().status, 200);
    assert.equal(getHeader(last(), 'Allow'), 'INVITE, ACK, CANCEL, OPTIONS, REGISTER');
    transport.inject(wire('SUBSCRIBE', { branch: 'z9hG4bK-o2', callId: 'o2' }));
    assert.equal(last().status, 405);
    assert.equal(getHeader(last(), 'Allow'), 'INVITE, ACK, CANCEL, OPTIONS, REGISTER');
  });

  it('Max-Forwards: 0 gets 483, except OPTIONS', () => {
    const { transport, last } = setup();
    transport.inject(wire('INVITE', { branch: 'z9hG4bK-m1' }).replace('Max-Forwards: 70', 'Max-Forwards: 0'));
    assert.equal(last().status, 483);
    transport.inject(
      wire('OPTIONS', { branch: 'z9hG4bK-m2', callId: 'm2' }).replace('Max-Forwards: 70', 'Max-Forwards: 0'),
    );
    assert.equal(last().status, 200);
  });

  it('a retransmitted REGISTER is answered from the transaction, not processed again', () => {
    const { transport, server } = setup();
    const text = wire('REGISTER', { branch: 'z9hG4bK-x1', headers: ['Contact: <sip:bob@192.0.2.9>'] });
    transport.inject(text);
    transport.inject(text);
    assert.deepEqual(transport.statuses(), [200, 200]);
    assert.equal(server.stats.registers, 1);
    assert.equal(transport.sent[0].msg, transport.sent[1].msg);
  });

  it('CANCEL after the 302 gets 200 and leaves the 302 alone; CANCEL without a transaction gets 481', () => {
    const { transport } = setup();
    transport.inject(wire('INVITE', { uri: 'sip:nobody@example.com', branch: 'z9hG4bK-c1' }));
    transport.inject(wire('CANCEL', { uri: 'sip:nobody@example.com', branch: 'z9hG4bK-c1' }));
    assert.deepEqual(transport.statuses(), [100, 404, 200]);
    transport.inject(wire('CANCEL', { branch: 'z9hG4bK-c-none', callId: 'none' }));
    assert.equal(transport.statuses().at(-1), 481);
  });
});

describe('SipElement asynchronous answers and CANCEL (RFC 3261 9.2)', () => {
  function asyncSetup() {
    const clock = new SimClock();
    const transport = new MemoryTransport();
    const element = new SipElement({ transport, clock });
    const held: IncomingRequest[] = [];
    let cancels = 0;
    element.handle({
      onRequest: (inc) => {
        held.push(inc);
        inc.onCancel(() => cancels++);
      },
    });
    return { clock, transport, held, cancels: () => cancels };
  }

  it('CANCEL before the final response: 200 to the CANCEL, 487 to the INVITE, a late 302 is discarded', () => {
    const { transport, held, cancels } = asyncSetup();
    transport.inject(wire('INVITE', { branch: 'z9hG4bK-a1' }));
    assert.deepEqual(transport.statuses(), [100]);
    transport.inject(wire('CANCEL', { branch: 'z9hG4bK-a1' }));
    assert.equal(cancels(), 1);
    assert.ok(held[0].cancelled);
    assert.deepEqual(transport.statuses(), [100, 200, 487]);
    const cseqs = transport.sent.map((s) => getHeader(s.msg, 'CSeq'));
    assert.deepEqual(cseqs, ['1 INVITE', '1 CANCEL', '1 INVITE']);
    held[0].respond(302, 'Moved Temporarily', { headers: [{ name: 'Contact', value: '<sip:x@192.0.2.3>' }] });
    assert.deepEqual(transport.statuses(), [100, 200, 487]);
  });

  it('final response before the CANCEL: the CANCEL gets 200 and changes nothing', () => {
    const { transport, held, cancels } = asyncSetup();
    transport.inject(wire('INVITE', { branch: 'z9hG4bK-b1' }));
    held[0].respond(302, 'Moved Temporarily', { headers: [{ name: 'Contact', value: '<sip:x@192.0.2.3>' }] });
    transport.inject(wire('CANCEL', { branch: 'z9hG4bK-b1' }));
    assert.equal(cancels(), 0);
    assert.deepEqual(transport.statuses(), [100, 302, 200]);
  });

  it('a handler that throws gets the request a 500', () => {
    const clock = new SimClock();
    const transport = new MemoryTransport();
    const element = new SipElement({ transport, clock });
    element.handle({
      onRequest: () => {
        throw new Error('boom');
      },
    });
    transport.inject(wire('OPTIONS', { branch: 'z9hG4bK-e1' }));
    assert.deepEqual(transport.statuses(), [500]);
  });

  it('matches RFC 2543 requests without the magic cookie, and their ACK', () => {
    const { transport, held } = asyncSetup();
    const invite = wire('INVITE', { branch: 'old-style-1' });
    transport.inject(invite);
    transport.inject(invite);
    assert.equal(held.length, 1, 'the retransmission matched the transaction');
    const r = held[0].respond(486, 'Busy Here');
    transport.inject(wire('ACK', { branch: 'old-style-1', to: getHeader(r, 'To') }));
    assert.equal(held[0].transaction.state, 'confirmed');
  });

  it('RFC 2543 INVITE that already has a To tag: its ACK (same tag) matches and the final response stops', () => {
    const { clock, transport, held } = asyncSetup();
    const to = '<sip:bob@example.com>;tag=remote-9';
    transport.inject(wire('INVITE', { branch: 'old-style-2', to }));
    const r = held[0].respond(486, 'Busy Here');
    assert.equal(getHeader(r, 'To'), to, 'the response keeps the request To tag (8.2.6.2)');
    clock.advance(600); // Timer G: one retransmission
    assert.deepEqual(transport.statuses(), [100, 486, 486]);
    transport.inject(wire('ACK', { branch: 'old-style-2', to }));
    assert.equal(held[0].transaction.state, 'confirmed');
    clock.advance(40_000);
    assert.deepEqual(transport.statuses(), [100, 486, 486], 'no retransmission after the ACK');
  });
});
