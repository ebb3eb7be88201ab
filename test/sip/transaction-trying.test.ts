import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { SipElement } from '../../src/sip/element.ts';
import { SimClock } from '../../src/util/clock.ts';
import { MemoryTransport, wire } from './helpers.ts';

/**
 * RFC 3261 17.2.1: "the server transaction MUST generate a 100 (Trying) response unless it knows that the TU will
 * generate a provisional or final response within 200 ms". With the deferral the element sends the 100 only when
 * the TU has not answered 200 ms after the INVITE arrived.
 */
function setup(
  tryingDelayMs: number | undefined,
  answer: (inc: import('../../src/sip/element.ts').IncomingRequest) => void,
) {
  const clock = new SimClock();
  const transport = new MemoryTransport();
  const element = new SipElement({ transport, clock }, { tryingDelayMs });
  element.handle({ onRequest: answer });
  return { clock, transport };
}

describe('deferred 100 Trying (RFC 3261 17.2.1)', () => {
  it('a TU answering at once: the 302 is the only datagram, no 100 ever', () => {
    const { clock, transport } = setup(200, (inc) => inc.respond(302, 'Moved Temporarily'));
    transport.inject(wire('INVITE', { branch: 'z9hG4bK-t1' }));
    clock.advance(1000);
    assert.deepEqual(transport.statuses().slice(0, 1), [302]);
    assert.ok(!transport.statuses().includes(100));
  });

  it('a TU answering after 150 ms: no 100, then the final response', () => {
    const { clock, transport } = setup(200, (inc) => {
      clock.setTimer(150, () => inc.respond(404, 'Not Found'));
    });
    transport.inject(wire('INVITE', { branch: 'z9hG4bK-t2' }));
    clock.advance(149);
    assert.deepEqual(transport.statuses(), []);
    clock.advance(1);
    assert.deepEqual(transport.statuses(), [404]);
    clock.advance(100);
    assert.ok(!transport.statuses().includes(100));
  });

  it('a TU silent for 200 ms: the 100 goes out at 200 ms, the final response later', () => {
    const { clock, transport } = setup(200, (inc) => {
      clock.setTimer(1000, () => inc.respond(486, 'Busy Here'));
    });
    transport.inject(wire('INVITE', { branch: 'z9hG4bK-t3' }));
    clock.advance(199);
    assert.deepEqual(transport.statuses(), []);
    clock.advance(1);
    assert.deepEqual(transport.statuses(), [100]);
    clock.advance(800);
    assert.deepEqual(transport.statuses(), [100, 486]);
  });

  it('a retransmitted INVITE before any answer gets the 100 at once, and only one', () => {
    const { clock, transport } = setup(200, () => {});
    transport.inject(wire('INVITE', { branch: 'z9hG4bK-t4' }));
    clock.advance(50);
    transport.inject(wire('INVITE', { branch: 'z9hG4bK-t4' }));
    assert.deepEqual(transport.statuses(), [100]);
    clock.advance(500);
    assert.deepEqual(transport.statuses(), [100], 'the deferred 100 is not sent twice');
  });

  it('without a deferral the 100 precedes even an immediate answer (the default)', () => {
    const { transport } = setup(undefined, (inc) => inc.respond(302, 'Moved Temporarily'));
    transport.inject(wire('INVITE', { branch: 'z9hG4bK-t5' }));
    assert.deepEqual(transport.statuses(), [100, 302]);
  });

  it('a non-INVITE request never gets a 100 from the layer', () => {
    const { clock, transport } = setup(200, () => {});
    transport.inject(wire('OPTIONS', { branch: 'z9hG4bK-t6' }));
    clock.advance(1000);
    assert.deepEqual(transport.statuses(), []);
  });
});
