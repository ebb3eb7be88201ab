import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import type { SipMessage } from '../../src/sip/message.ts';
import { InviteServerTransaction } from '../../src/sip/transaction-server-invite.ts';
import { NonInviteServerTransaction } from '../../src/sip/transaction-server-non-invite.ts';
import { SimClock } from '../../src/util/clock.ts';
import { req, resp } from './helpers.ts';

function harness(reliable = false) {
  const clock = new SimClock();
  const sent: Array<{ at: number; msg: SipMessage }> = [];
  const deps = { clock, reliable, send: (msg: SipMessage) => sent.push({ at: clock.now(), msg }) };
  return { clock, sent, deps };
}

describe('INVITE server transaction (RFC 3261 17.2.1)', () => {
  it('retransmits a 302 over UDP at 500, 1000, 2000, 4000, 4000 ms intervals until the ACK', () => {
    const { clock, sent, deps } = harness();
    const invite = req('INVITE');
    const tx = new InviteServerTransaction('k', invite, deps);
    tx.respond(resp(100, invite));
    tx.respond(resp(302, invite));
    assert.equal(tx.state, 'completed');
    clock.advance(11_500);
    const times = sent.filter((s) => s.msg.kind === 'response' && s.msg.status === 302).map((s) => s.at);
    assert.deepEqual(times, [0, 500, 1500, 3500, 7500, 11500]);
    tx.receiveRequest(req('ACK'));
    assert.equal(tx.state, 'confirmed');
    clock.advance(30_000);
    assert.equal(sent.filter((s) => s.msg.kind === 'response' && s.msg.status === 302).length, 6, 'no sends after ACK');
    assert.equal(tx.state, 'terminated', 'Timer I (T4) ended the transaction');
  });

  it('Timer H gives up after 64*T1 without ACK and tells the TU', () => {
    const { clock, deps } = harness();
    const invite = req('INVITE');
    let timedOut = 0;
    const tx = new InviteServerTransaction('k', invite, deps, { onTimeout: () => timedOut++ });
    tx.respond(resp(486, invite));
    clock.advance(31_999);
    assert.equal(tx.state, 'completed');
    clock.advance(1);
    assert.equal(tx.state, 'terminated');
    assert.equal(timedOut, 1);
  });

  it('over a reliable transport sends the final response once and ends at the ACK', () => {
    const { clock, sent, deps } = harness(true);
    const invite = req('INVITE');
    const tx = new InviteServerTransaction('k', invite, deps);
    tx.respond(resp(404, invite));
    clock.advance(20_000);
    assert.equal(sent.length, 1);
    tx.receiveRequest(req('ACK'));
    assert.equal(tx.state, 'terminated');
  });

  it('answers a retransmitted INVITE with the last provisional, then with the final response', () => {
    const { sent, deps } = harness();
    const invite = req('INVITE');
    const tx = new InviteServerTransaction('k', invite, deps);
    tx.receiveRequest(invite);
    assert.equal(sent.length, 0, 'nothing to resend before a response');
    tx.respond(resp(180, invite));
    tx.receiveRequest(invite);
    assert.deepEqual(
      sent.map((s) => (s.msg.kind === 'response' ? s.msg.status : 0)),
      [180, 180],
    );
    tx.respond(resp(302, invite));
    tx.receiveRequest(invite);
    assert.deepEqual(
      sent.map((s) => (s.msg.kind === 'response' ? s.msg.status : 0)),
      [180, 180, 302, 302],
    );
  });

  it('2xx: Accepted state absorbs retransmitted INVITEs, passes 2xx retransmissions, ends on Timer L', () => {
    const { clock, sent, deps } = harness();
    const invite = req('INVITE');
    const tx = new InviteServerTransaction('k', invite, deps);
    tx.respond(resp(200, invite));
    assert.equal(tx.state, 'accepted');
    tx.receiveRequest(invite);
    assert.equal(sent.length, 1);
    tx.respond(resp(200, invite));
    assert.equal(sent.length, 2);
    clock.advance(32_000);
    assert.equal(tx.state, 'terminated');
  });
});

describe('non-INVITE server transaction (RFC 3261 17.2.2)', () => {
  it('answers a retransmitted request from the transaction with the last response, until Timer J', () => {
    const { clock, sent, deps } = harness();
    const reg = req('REGISTER');
    const tx = new NonInviteServerTransaction('k', reg, deps);
    tx.receiveRequest(reg);
    assert.equal(sent.length, 0, 'Trying discards retransmissions');
    tx.respond(resp(200, reg));
    assert.equal(tx.state, 'completed');
    clock.advance(10_000);
    tx.receiveRequest(reg);
    assert.equal(sent.length, 2);
    assert.equal(sent[1].msg, sent[0].msg, 'the very same final response');
    tx.respond(resp(500, reg));
    assert.equal(sent.length, 2, 'later final responses are discarded');
    clock.advance(21_999);
    assert.equal(tx.state, 'completed');
    clock.advance(1);
    assert.equal(tx.state, 'terminated', 'Timer J = 64*T1');
  });

  it('Timer J is zero over a reliable transport', () => {
    const { deps } = harness(true);
    const reg = req('OPTIONS');
    const tx = new NonInviteServerTransaction('k', reg, deps);
    tx.respond(resp(100, reg));
    assert.equal(tx.state, 'proceeding');
    tx.respond(resp(200, reg));
    assert.equal(tx.state, 'terminated');
  });
});
