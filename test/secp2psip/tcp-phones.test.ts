import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { getHeader } from '../../src/sip/message.ts';
import { TcpPhone } from '../support/tcp-phone.ts';
import { type AdapterProc, type BootstrapProc, startAdapterProc, startBootstrapProc } from './procs.ts';

/**
 * Phones over TCP whose Contact is the ephemeral port of the connection they opened (as Linphone does): nothing
 * listens there, so they are reachable only over their connections. Both adapters stay in the call's path
 * (phone-flows.ts): a call, a hang-up by the callee, a second call and a hang-up by the caller all succeed, and
 * every request reaches each phone over its own connection.
 */
describe('phones over TCP with ephemeral-port contacts (bootstrap and adapters as processes)', {
  timeout: 180_000,
}, () => {
  let base = '';
  let boot: BootstrapProc;
  let A: AdapterProc;
  let B: AdapterProc;
  const phones: TcpPhone[] = [];

  before(async () => {
    base = mkdtempSync(join(tmpdir(), 'secp2psip-tcp-phones-'));
    boot = await startBootstrapProc(join(base, 'boot'));
    A = await startAdapterProc(boot.spec, join(base, 'A'));
    B = await startAdapterProc(boot.spec, join(base, 'B'), '127.0.0.1:0', ['--mode', 'protected']);
  });

  after(async () => {
    for (const p of phones) p.close();
    await A?.stop();
    await B?.stop();
    await boot?.stop();
    rmSync(base, { recursive: true, force: true });
  });

  it('call, hang-up by the callee, second call, hang-up by the caller', async () => {
    const bob = await TcpPhone.open('bob', '127.0.0.1', B.sipPort);
    const alice = await TcpPhone.open('alice', '127.0.0.1', A.sipPort);
    phones.push(bob, alice);
    // The registrar must not register before the ring has the users: a 503 with Retry-After is retried.
    for (const p of [bob, alice]) {
      let r = await p.register();
      for (let i = 0; r.status === 503 && i < 20; i++) {
        await new Promise((res) => setTimeout(res, 1000));
        r = await p.register();
      }
      assert.equal(r.status, 200, `${p.user} registered`);
    }
    assert.equal(await bob.ping(), true, 'a CRLF keep-alive ping gets its pong (RFC 5626 4.4.1)');

    for (const [round, hangsUp] of [
      [1, 'callee'],
      [2, 'caller'],
    ] as const) {
      const call = await alice.invite(`sip:bob@127.0.0.1:${A.sipPort}`);
      assert.equal(call.final.status, 200, `call ${round}: ${call.final.status} ${call.final.reason}`);
      // Alice's own Contact is not reachable: her adapter's 302 names itself, so it stays in her call's path.
      assert.equal(call.redirects.length, 1);
      assert.match(call.redirects[0], new RegExp(`^sip:[A-Za-z0-9_-]+@127\\.0\\.0\\.1:${A.sipPort};transport=tcp$`));
      const invite = await bob.waitRequest('INVITE');
      // The INVITE reached bob over the connection he registered on, addressed to his registered contact.
      assert.equal(invite.uri, bob.contact);
      assert.equal(getHeader(invite, 'Call-ID'), call.dialog?.callId);
      await bob.waitRequest('ACK');
      const callId = call.dialog?.callId ?? '';
      if (hangsUp === 'callee') {
        const bye = await bob.bye(callId);
        assert.equal(bye.status, 200, `call ${round}: the callee's BYE reached the caller over her connection`);
        const got = await alice.waitRequest('BYE');
        assert.equal(got.uri, alice.contact);
      } else {
        const bye = await alice.bye(callId);
        assert.equal(bye.status, 200, `call ${round}: the caller's BYE reached the callee over his connection`);
        await bob.waitRequest('BYE');
      }
    }
    assert.match(B.stderr(), /verified alice's INVITE; answering REDIRECT/);
  });
});
