import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { getHeader, type SipMessage, type SipResponse } from '../../src/sip/message.ts';
import { buildCancel, InviteClientTransaction } from '../../src/sip/transaction-client-invite.ts';
import { NonInviteClientTransaction } from '../../src/sip/transaction-client-non-invite.ts';
import { SimClock } from '../../src/util/clock.ts';
import { req, resp } from './helpers.ts';

function harness(reliable = false) {
  const clock = new SimClock();
  const sent: Array<{ at: number; msg: SipMessage }> = [];
  const deps = { clock, reliable, send: (msg: SipMessage) => sent.push({ at: clock.now(), msg }) };
  return { clock, sent, deps };
}

describe('INVITE client transaction (RFC 3261 17.1.1)', () => {
  it('Timer A doubles without cap until Timer B times out at 64*T1', () => {
    const { clock, sent, deps } = harness();
    let timeouts = 0;
    const tx = new InviteClientTransaction('k', req('INVITE'), deps, { onTimeout: () => timeouts++ });
    tx.start();
    clock.advance(40_000);
    assert.deepEqual(
      sent.map((s) => s.at),
      [0, 500, 1500, 3500, 7500, 15500, 31500],
    );
    assert.equal(timeouts, 1);
    assert.equal(tx.state, 'terminated');
  });

  it('a provisional response stops retransmission; a 302 is ACKed by the transaction and passed up once', () => {
    const { clock, sent, deps } = harness();
    const got: SipResponse[] = [];
    const invite = req('INVITE');
    const tx = new InviteClientTransaction('k', invite, deps, { onResponse: (r) => got.push(r) });
    tx.start();
    tx.receiveResponse(resp(100, invite));
    clock.advance(5000);
    assert.equal(sent.length, 1);
    const r302 = resp(302, invite);
    tx.receiveResponse(r302);
    tx.receiveResponse(r302);
    assert.deepEqual(
      got.map((r) => r.status),
      [100, 302],
    );
    const acks = sent.filter((s) => s.msg.kind === 'request' && s.msg.method === 'ACK');
    assert.equal(acks.length, 2, 'the ACK is resent for a retransmitted final response');
    const ack = acks[0].msg;
    assert.equal(getHeader(ack, 'CSeq'), '1 ACK');
    assert.match(getHeader(ack, 'To') ?? '', /tag=b1/);
    assert.equal(getHeader(ack, 'Via'), getHeader(invite, 'Via'));
    clock.advance(32_000);
    assert.equal(tx.state, 'terminated', 'Timer D');
  });

  it('CANCEL carries the INVITE branch and CSeq number', () => {
    const invite = req('INVITE', { cseq: 7 });
    const c = buildCancel(invite);
    assert.equal(c.method, 'CANCEL');
    assert.equal(getHeader(c, 'CSeq'), '7 CANCEL');
    assert.equal(getHeader(c, 'Via'), getHeader(invite, 'Via'));
  });
});

describe('non-INVITE client transaction (RFC 3261 17.1.2)', () => {
  it('Timer E backs off to T2, Timer F times out', () => {
    const { clock, sent, deps } = harness();
    let timeouts = 0;
    const tx = new NonInviteClientTransaction('k', req('REGISTER'), deps, { onTimeout: () => timeouts++ });
    tx.start();
    clock.advance(40_000);
    const at = sent.map((s) => s.at);
    assert.deepEqual(at.slice(0, 7), [0, 500, 1500, 3500, 7500, 11500, 15500]);
    assert.equal(timeouts, 1);
    assert.ok(at.every((t) => t < 32_000));
  });

  it('in Proceeding retransmits every T2; a final response goes to the TU and Timer K ends it', () => {
    const { clock, sent, deps } = harness();
    const got: number[] = [];
    const r = req('REGISTER');
    const tx = new NonInviteClientTransaction('k', r, deps, { onResponse: (x) => got.push(x.status) });
    tx.start();
    tx.receiveResponse(resp(100, r));
    clock.advance(600);
    assert.equal(sent.length, 2);
    clock.advance(4000);
    assert.equal(sent.length, 3);
    tx.receiveResponse(resp(200, r));
    tx.receiveResponse(resp(200, r));
    assert.deepEqual(got, [100, 200]);
    clock.advance(5000);
    assert.equal(tx.state, 'terminated');
  });
});
