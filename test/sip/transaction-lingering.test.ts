/**
 * Server transactions in their last phase kept as response bytes alone (RFC 3261 17.2.2 Completed, 17.2.1
 * Confirmed), on a transport that can hand out the bytes it sent, with the simulated clock.
 */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { AdmissionControl } from '../../src/sip/admission.ts';
import { type IncomingRequest, SipElement } from '../../src/sip/element.ts';
import { getHeader, type SipResponse } from '../../src/sip/message.ts';
import { serialize } from '../../src/sip/serializer.ts';
import { SATURATED_RETRANSMISSIONS, UNAUTHENTICATED_RETRANSMISSIONS } from '../../src/sip/response-route.ts';
import type { Peer } from '../../src/sip/transport.ts';
import { SimClock } from '../../src/util/clock.ts';
import { MemoryTransport, wire } from './helpers.ts';

/** MemoryTransport that also keeps sent bytes, as the socket transport does; resends are recorded as text. */
class BytesTransport extends MemoryTransport {
  readonly resent: string[] = [];
  private readonly bytes = new WeakMap<SipResponse, Buffer>();

  override sendResponse(resp: SipResponse, source: Peer): void {
    this.bytes.set(resp, serialize(resp));
    super.sendResponse(resp, source);
  }

  sentBytes(resp: SipResponse): Uint8Array | undefined {
    return this.bytes.get(resp);
  }

  resendBytes(bytes: Uint8Array, to: Peer): void {
    assert.equal(to.transport, 'UDP');
    this.resent.push(Buffer.from(bytes).toString('latin1'));
  }
}

function setup(admission?: (clock: SimClock) => AdmissionControl) {
  const clock = new SimClock();
  const transport = new BytesTransport();
  const element = new SipElement({ transport, clock }, { admission: admission?.(clock) });
  const seen: IncomingRequest[] = [];
  element.handle({
    onRequest: (inc) => {
      seen.push(inc);
      if (inc.method === 'INVITE') inc.respond(302, 'Moved Temporarily');
      else inc.respond(200, 'OK');
    },
  });
  return { clock, transport, element, seen };
}

describe('lingering server transactions', () => {
  it('a completed non-INVITE transaction keeps only its response bytes and resends them until Timer J', () => {
    const { clock, transport, element, seen } = setup();
    const register = wire('REGISTER', { branch: 'z9hG4bK-l1' });
    transport.inject(register);
    assert.equal(seen.length, 1);
    assert.equal(seen[0].transaction.state, 'terminated', 'the transaction object is done with');
    assert.equal(element.layer.activeServer, 1, 'but the layer still answers for it');
    const sent = serialize(transport.sent[0].msg).toString('latin1');
    clock.advance(10_000);
    transport.inject(register);
    assert.deepEqual(transport.resent, [sent], 'the same bytes again (17.2.2)');
    assert.equal(seen.length, 1, 'the TU does not see the retransmission');
    assert.equal(element.layer.stats.retransmissionsAbsorbed, 1);
    clock.advance(22_000);
    transport.inject(register);
    assert.equal(seen.length, 2, 'Timer J = 64*T1 ended it: the same request is a new transaction');
    clock.advance(500);
    assert.equal(element.layer.activeServer, 1, 'the first is gone from the tables, the second lingers');
  });

  it('a confirmed INVITE transaction absorbs ACKs and INVITEs and still answers a CANCEL with 200', () => {
    const { clock, transport, element, seen } = setup();
    const invite = wire('INVITE', { branch: 'z9hG4bK-l2', callId: 'l2' });
    transport.inject(invite);
    const r302 = transport.sent.at(-1)?.msg as SipResponse;
    assert.equal(r302.status, 302);
    assert.equal(seen[0].transaction.state, 'completed', 'waiting for the ACK, retransmitting (Timer G)');
    const ack = wire('ACK', { branch: 'z9hG4bK-l2', callId: 'l2', to: getHeader(r302, 'To') });
    transport.inject(ack);
    assert.equal(seen[0].transaction.state, 'terminated');
    transport.clear();
    transport.inject(ack);
    transport.inject(invite);
    assert.equal(transport.sent.length + transport.resent.length, 0, 'absorbed');
    assert.equal(seen.length, 1);
    transport.inject(wire('CANCEL', { branch: 'z9hG4bK-l2', callId: 'l2' }));
    const c200 = transport.sent.at(-1)?.msg as SipResponse;
    assert.equal(c200.status, 200);
    assert.equal(getHeader(c200, 'To'), getHeader(r302, 'To'), 'with the To tag of the INVITE (9.2)');
    clock.advance(5_000);
    transport.inject(invite);
    assert.equal(seen.length, 2, 'after Timer I (T4) the INVITE is new');
    assert.equal(element.layer.activeServer > 0, true);
  });

  it('a completed INVITE transaction resends its final response from the bytes sent, on Timer G and for a retransmitted INVITE', () => {
    const { clock, transport, seen } = setup();
    const invite = wire('INVITE', { branch: 'z9hG4bK-g1', callId: 'g1' });
    transport.inject(invite);
    const r302 = transport.sent.at(-1)?.msg as SipResponse;
    assert.equal(r302.status, 302);
    const bytes = serialize(r302).toString('latin1');
    const tx = seen[0].transaction;
    assert.equal(tx.state, 'completed');
    assert.equal(tx.finalSent, true);
    assert.equal(tx.lastStatus, 302);
    const sentBefore = transport.sent.length;
    clock.advance(500);
    assert.deepEqual(transport.resent, [bytes], 'Timer G (T1): the same bytes, no message serialised again (17.2.1)');
    transport.inject(invite);
    assert.deepEqual(transport.resent, [bytes, bytes], 'a retransmitted INVITE gets them too');
    assert.equal(transport.sent.length, sentBefore, 'nothing went out as a message');
    assert.equal(seen.length, 1);
    clock.advance(1000);
    assert.equal(transport.resent.length, 3, 'Timer G doubled to 2*T1');
    transport.inject(wire('ACK', { branch: 'z9hG4bK-g1', callId: 'g1', to: getHeader(r302, 'To') }));
    assert.equal(tx.state, 'terminated', 'the ACK confirmed it (handed to the layer for Timer I)');
    clock.advance(10_000);
    assert.equal(transport.resent.length, 3, 'no retransmission after the ACK');
  });

  it('while the receive queue is bounded (saturated), Timer G sends one copy for an unauthenticated INVITE', () => {
    /** Timer G copies of the 302 for one unacknowledged INVITE, with the process idle or saturated throughout. */
    const copies = (saturated: boolean): number => {
      let ac: AdmissionControl | undefined;
      const { clock, transport } = setup((c) => {
        ac = new AdmissionControl({ clock: c, busyMs: () => (saturated ? c.now() : 0) });
        ac.boundQueue({ setBytes: () => {} });
        return ac;
      });
      // A first window closes (fully busy or idle), which bounds the queue or leaves it.
      transport.inject(wire('INVITE', { branch: 'z9hG4bK-s0', callId: 's0' }));
      clock.advance(150);
      transport.inject(wire('INVITE', { branch: 'z9hG4bK-s1', callId: 's1' }));
      assert.equal(ac?.queueIsBounded, saturated);
      transport.resent.length = 0;
      const invite = wire('INVITE', { branch: 'z9hG4bK-s2', callId: 's2' });
      transport.inject(invite);
      const r302 = transport.sent.at(-1)?.msg as SipResponse;
      const bytes = serialize(r302).toString('latin1');
      const before = transport.resent.filter((w) => w === bytes).length;
      clock.advance(40_000);
      return transport.resent.filter((w) => w === bytes).length - before;
    };
    assert.equal(copies(false), UNAUTHENTICATED_RETRANSMISSIONS);
    assert.equal(copies(true), SATURATED_RETRANSMISSIONS);
    assert.ok(SATURATED_RETRANSMISSIONS < UNAUTHENTICATED_RETRANSMISSIONS);
  });

  it('memory stays bounded: 15,000 REGISTERs at 5,000/s leave nothing once Timer J has passed', () => {
    const { clock, transport, element, seen } = setup();
    let peak = 0;
    for (let i = 0; i < 15_000; i++) {
      transport.inject(wire('REGISTER', { branch: `z9hG4bK-m${i}`, callId: `m${i}` }));
      if (i % 5 === 4) clock.advance(1);
      peak = Math.max(peak, element.layer.activeServer);
      if (i % 1000 === 0) transport.clear();
    }
    assert.equal(seen.length, 15_000);
    assert.equal(peak, 15_000, 'all within Timer J (3 s of traffic)');
    // Entries are dropped in batches shortly after their Timer J; lookups already treat them as gone.
    clock.advance(32_500);
    assert.equal(element.layer.activeServer, 0);
    assert.equal(clock.pending, 0, 'no timer left behind');
  });
});
