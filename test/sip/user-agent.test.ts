import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { SipElement } from '../../src/sip/element.ts';
import { getHeader, getHeaders } from '../../src/sip/message.ts';
import { RedirectServer } from '../../src/sip/redirect-server.ts';
import { Registrar } from '../../src/sip/registrar.ts';
import { TransportStack } from '../../src/sip/transport-stack.ts';
import { UserAgent } from '../../src/sip/user-agent.ts';
import { SystemClock } from '../../src/util/clock.ts';
import { isOverlayError } from '../../src/util/errors.ts';

async function element(): Promise<SipElement> {
  const transport = await TransportStack.listen({ host: '127.0.0.1', port: 0 });
  return new SipElement({ transport, clock: new SystemClock() });
}

for (const transport of ['UDP', 'TCP'] as const) {
  describe(`UserAgent over ${transport} with the redirect server`, () => {
    let reg: SipElement;
    let alice: UserAgent;
    let bob: UserAgent;
    before(async () => {
      reg = await element();
      new RedirectServer({ element: reg, registrar: new Registrar({ clock: reg.clock }) });
      alice = new UserAgent({ element: await element() }, { user: 'alice', domain: 'example.com', transport });
      bob = new UserAgent({ element: await element() }, { user: 'bob', domain: 'example.com', transport });
    });
    after(async () => {
      await Promise.all([reg.close(), alice.element.close(), bob.element.close()]);
    });

    const regPeer = () => ({ transport, address: '127.0.0.1', port: reg.transport.local.port });

    it('registers, calls through a 302 straight to the callee, ACKs the 200 and hangs up', async () => {
      const r = await bob.register(regPeer(), 600);
      assert.equal(r.status, 200);
      const call = await alice.invite('sip:bob@example.com', regPeer());
      assert.equal(call.redirectedTo, bob.contactUri);
      assert.equal(bob.incoming.length, 1);
      // The INVITE reached bob from alice's own element, not through the registrar.
      const via = getHeader(bob.incoming[0].request, 'Via') ?? '';
      assert.match(via, new RegExp(`^SIP/2.0/${transport} 127\\.0\\.0\\.1:${alice.element.transport.local.port};`));
      assert.equal(getHeaders(bob.incoming[0].request, 'Via').length, 1);
      if (transport === 'UDP') assert.equal(bob.incoming[0].source.port, alice.element.transport.local.port);
      assert.match(call.remoteSdp, /^v=0/);
      const bye = await alice.bye(call);
      assert.equal(bye.status, 200);
    });

    it('a call to an unknown user fails with 404', async () => {
      await assert.rejects(alice.invite('sip:carol@example.com', regPeer()), (e) => isOverlayError(e, 'USER_UNKNOWN'));
    });
  });
}
