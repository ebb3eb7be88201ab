import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { SipElement } from '../../src/sip/element.ts';
import { getHeaders } from '../../src/sip/message.ts';
import { RedirectServer } from '../../src/sip/redirect-server.ts';
import { Registrar } from '../../src/sip/registrar.ts';
import { TransportStack } from '../../src/sip/transport-stack.ts';
import { SystemClock } from '../../src/util/clock.ts';
import { TcpPhone } from '../support/tcp-phone.ts';

/**
 * RFC 5626 over real TCP connections on loopback, at the registrar/redirect server (the same flow code serves the
 * adapter and the WhanauSIP node): bob's UA registers one instance over two connections (reg-id 1 and 2, one
 * Contact URI for both, as an outbound UA writes it), alice calls him through the server.
 */
describe('RFC 5626 flows of one instance over TCP: fail-over and 430 Flow Failed', { timeout: 60_000 }, () => {
  let element: SipElement;
  let server: RedirectServer;
  let port = 0;
  const phones: TcpPhone[] = [];
  const INSTANCE = ';+sip.instance="<urn:uuid:6f1c2b1e-3c1a-4a57-9a55-3c2d1c0b7e01>"';
  const open = async (user: string) => {
    const p = await TcpPhone.open(user, '127.0.0.1', port);
    phones.push(p);
    return p;
  };
  const bobFlow = async (regId: number) => {
    const b = await open('bob');
    b.contactUri = 'sip:bob@k3x9.invalid;transport=tcp;ob';
    const ok = await b.register(600, `${INSTANCE};reg-id=${regId}`);
    assert.equal(ok.status, 200);
    assert.deepEqual(getHeaders(ok, 'Require'), ['outbound']);
    return b;
  };
  /** The server notices a closed connection when its socket reports it: wait until the flow is gone. */
  const closed = async (p: TcpPhone) => {
    p.close();
    const t = element.transport as TransportStack;
    const end = Date.now() + 5000;
    while (t.isOpen({ transport: 'TCP', address: p.localHost, port: p.localPort, connId: connOf(p) })) {
      if (Date.now() > end) assert.fail('the server never saw the connection close');
      await new Promise((r) => setTimeout(r, 20));
    }
  };
  const connIds = new Map<TcpPhone, number>();
  let alice: TcpPhone;
  let bob2: TcpPhone;
  const connOf = (p: TcpPhone) => connIds.get(p) as number;

  before(async () => {
    const transport = await TransportStack.listen({ host: '127.0.0.1', port: 0 });
    element = new SipElement({ transport, clock: new SystemClock() });
    const registrar = new Registrar({ clock: new SystemClock() }, { minExpires: 10 });
    server = new RedirectServer({ element, registrar });
    port = transport.local.port;
    // Which server-side connection each bob flow is: the registrar's binding remembers it.
    const orig = registrar.register.bind(registrar);
    registrar.register = (req, flow) => {
      const out = orig(req, flow);
      const via = getHeaders(req, 'Via')[0] ?? '';
      const p = phones.find((x) => via.includes(`:${x.localPort};`));
      if (p && flow?.connId !== undefined) connIds.set(p, flow.connId);
      return out;
    };
  });
  after(async () => {
    for (const p of phones) p.close();
    await element?.close();
  });

  it('two flows coexist; with the first connection gone the call reaches the phone over the other', async () => {
    const bob1 = await bobFlow(1);
    bob2 = await bobFlow(2);
    alice = await open('alice');
    // Both flows live: the call goes over the first.
    const c1 = await alice.invite(`sip:bob@127.0.0.1:${port}`);
    assert.equal(c1.final.status, 200);
    assert.equal(bob1.received.filter((r) => r.method === 'INVITE').length, 1);
    assert.equal((await alice.bye(c1.dialog?.callId ?? '')).status, 200);
    // The first connection closes (a NAT dropped it, the phone moved): the next call fails over to reg-id 2.
    await closed(bob1);
    const c2 = await alice.invite(`sip:bob@127.0.0.1:${port}`);
    assert.equal(c2.final.status, 200, `${c2.final.status} ${c2.final.reason}`);
    assert.equal(bob2.received.filter((r) => r.method === 'INVITE').length, 1, 'the INVITE came over flow 2');
    assert.ok(server.flows.stats.proxied >= 2);
  });

  it('a request addressed by a flow token whose connection is gone gets 430 Flow Failed', async () => {
    const [callId] = [...alice.dialogs.keys()];
    assert.ok(callId, 'alice is in the call with bob over flow 2');
    // Alice's route set names bob's flow by its token (double Record-Route, flow-routes.ts); that flow now closes.
    await closed(bob2);
    const failedBefore = server.flows.stats.flowFailed;
    const bye = await alice.bye(callId);
    assert.equal(bye.status, 430, `${bye.status} ${bye.reason}`);
    assert.equal(bye.reason, 'Flow Failed');
    assert.equal(server.flows.stats.flowFailed, failedBefore + 1);
  });

  it('every flow of the phone gone: an INVITE gets 430; a re-REGISTER of reg-id 2 replaces that flow and calls work', async () => {
    const dead = await alice.invite(`sip:bob@127.0.0.1:${port}`);
    assert.equal(dead.final.status, 430, `${dead.final.status} ${dead.final.reason}`);
    const bob3 = await bobFlow(2);
    const reg = await bob3.register(600, `${INSTANCE};reg-id=2`);
    // Still one binding per reg-id: 1 (its connection gone) and 2 (now over bob3's connection).
    assert.equal(getHeaders(reg, 'Contact').length, 2);
    const c = await alice.invite(`sip:bob@127.0.0.1:${port}`);
    assert.equal(c.final.status, 200, `${c.final.status} ${c.final.reason}`);
    assert.equal(bob3.received.filter((r) => r.method === 'INVITE').length, 1);
  });
});
