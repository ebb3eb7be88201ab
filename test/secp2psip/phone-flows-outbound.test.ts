import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import type { RunningAdapter } from '../../src/secp2psip/daemon.ts';
import { getHeaders } from '../../src/sip/message.ts';
import { TcpPhone } from '../support/tcp-phone.ts';
import { DaemonPair } from './daemon-pair.ts';

/**
 * RFC 5626 through two adapters on loopback (secp2psip/phone-flows.ts): bob's UA registers one instance at his
 * adapter over two TCP connections (reg-id 1 and 2, one `.invalid` Contact URI for both, so only a flow reaches
 * it); alice, a TCP phone at her adapter, calls him. With his first connection gone the call reaches him over the
 * second; with both gone the callee's adapter answers 430 Flow Failed.
 */
describe('two flows of one phone instance through two adapters', { timeout: 120_000 }, () => {
  let pair: DaemonPair;
  let A: RunningAdapter;
  let B: RunningAdapter;
  const INSTANCE = ';+sip.instance="<urn:uuid:0b1e6a3c-8f0e-4c4e-9d43-5f0c7b9d2a11>"';
  const hostPort = (a: RunningAdapter) => {
    const [h, p] = a.sipAddr.split(':');
    return [h, Number(p)] as const;
  };
  const phone = async (user: string, at: RunningAdapter) => {
    const p = await TcpPhone.open(user, ...hostPort(at));
    pair.onClose(() => p.close());
    return p;
  };
  const bobFlow = async (regId: number) => {
    const b = await phone('bob', B);
    b.contactUri = 'sip:bob@q7r2.invalid;transport=tcp;ob';
    const ok = await b.register(600, `${INSTANCE};reg-id=${regId}`);
    assert.equal(ok.status, 200, `${ok.status} ${ok.reason}`);
    return b;
  };
  /** Close the phone's connection and give the adapter's socket a moment to see it go. */
  const drop = async (p: TcpPhone) => {
    p.close();
    await new Promise((r) => setTimeout(r, 300));
  };

  before(async () => {
    pair = await DaemonPair.start('secp2psip-outbound-');
    A = await pair.adapter('a');
    B = await pair.adapter('b');
  });
  after(() => pair?.close());

  it('fails over to the live flow, and answers 430 when every flow is gone', async () => {
    const bob1 = await bobFlow(1);
    const bob2 = await bobFlow(2);
    const reg = await bob2.register(600, `${INSTANCE};reg-id=2`);
    assert.equal(getHeaders(reg, 'Contact').length, 2, 'one binding per reg-id');
    const alice = await phone('alice', A);
    assert.equal((await alice.register()).status, 200);
    const target = `sip:bob@${A.sipAddr}`;

    const c1 = await alice.invite(target);
    assert.equal(c1.final.status, 200, `${c1.final.status} ${c1.final.reason}`);
    assert.equal(bob1.received.filter((r) => r.method === 'INVITE').length, 1, 'over the first flow');
    assert.equal((await alice.bye(c1.dialog?.callId ?? '')).status, 200);

    await drop(bob1);
    const c2 = await alice.invite(target);
    assert.equal(c2.final.status, 200, `${c2.final.status} ${c2.final.reason}`);
    assert.equal(bob2.received.filter((r) => r.method === 'INVITE').length, 1, 'over the second flow');
    assert.equal((await alice.bye(c2.dialog?.callId ?? '')).status, 200);

    await drop(bob2);
    const c3 = await alice.invite(target);
    assert.equal(c3.final.status, 430, `${c3.final.status} ${c3.final.reason}`);
  });
});
