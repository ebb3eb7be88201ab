import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { haveBinary } from '../sip/e2e-helpers.ts';
import { type Phone, phoneCommand, registeredPhone, startPhone as startBaresip } from '../support/baresip.ts';
import { type AdapterProc, type BootstrapProc, eventually, startAdapterProc, startBootstrapProc } from './procs.ts';

/**
 * Seed 000 with real phones: Debian's baresip registers with `secp2psip
 * adapter` processes that share a ring with a `secp2psip bootstrap` process.
 * Audio goes through aubridge (no sound device); SIP traces (-s) are read
 * from baresip's output, calls are placed over ctrl_tcp.
 */
const skip = haveBinary('baresip') ? false : 'baresip is not installed';

function startPhone(base: string, user: string, adapter: AdapterProc, outboundProxy = false): Promise<Phone> {
  return registeredPhone(
    user,
    () =>
      startBaresip(base, user, `sip:${user}@127.0.0.1:${adapter.sipPort}`, {
        outboundProxy: outboundProxy ? `sip:127.0.0.1:${adapter.sipPort}` : undefined,
        localTimeoutS: 30,
      }),
    adapter.stderr,
  );
}

const dial = (phone: Phone, uri: string) => phoneCommand(phone, 'dial', uri);

const established = (p: Phone) => () => /Call established/.test(p.out());

/** The INVITE for `callee` that arrived at its phone came from this port. */
function inviteSourcePort(callee: Phone): number | undefined {
  const re = new RegExp(`UDP 127\\.0\\.0\\.1:(\\d+) -> 127\\.0\\.0\\.1:${callee.sipPort}\\s*\\r?\\nINVITE sip:`);
  const m = re.exec(callee.out());
  return m ? Number(m[1]) : undefined;
}

describe('SecP2PSIP with real baresip phones (bootstrap and adapters as processes)', { skip, timeout: 240_000 }, () => {
  let base = '';
  let boot: BootstrapProc;
  const adapters: AdapterProc[] = [];
  const phones: Phone[] = [];

  before(async () => {
    base = mkdtempSync(join(tmpdir(), 'secp2psip-baresip-'));
    boot = await startBootstrapProc(join(base, 'boot'));
    for (const [name, mode] of [
      ['A', 'signed'],
      ['B', 'signed'],
      ['C', 'protected'],
      ['D', 'protected'],
    ])
      adapters.push(await startAdapterProc(boot.spec, join(base, name), '127.0.0.1:0', ['--mode', mode]));
  });

  after(async () => {
    for (const p of phones) if (p.proc.exitCode === null) p.proc.kill('SIGKILL');
    for (const a of adapters) await a.stop();
    await boot?.stop();
    rmSync(base, { recursive: true, force: true });
  });

  it('alice dials bob by name: after the verified 302 bob answers the INVITE sent by her own phone', async () => {
    const [A, B] = adapters;
    const bob = await startPhone(base, 'bob', B);
    const alice = await startPhone(base, 'alice', A);
    phones.push(bob, alice);
    await dial(alice, `sip:bob@127.0.0.1:${A.sipPort}`);
    await eventually('call establishment at bob', established(bob), 30_000, () => alice.out() + bob.out());
    await eventually('call establishment at alice', established(alice), 10_000, alice.out);
    assert.match(
      alice.out(),
      new RegExp(`SIP/2.0 302 [^\\r\\n]*[\\s\\S]*?Contact: <sip:bob[^@>]*@127\\.0\\.0\\.1:${bob.sipPort}[;>]`),
    );
    assert.equal(inviteSourcePort(bob), alice.sipPort, "bob's phone got the INVITE from alice's phone");
    assert.match(B.stderr(), /verified alice's INVITE; answering REDIRECT/);
    assert.match(A.stderr(), /verified bob's REDIRECT; sending 302/);
  });

  it('with her adapter as outbound proxy, the redirected INVITE is proxied to the verified phone and answered', async () => {
    const [A, B] = adapters;
    const dave = await startPhone(base, 'dave', B);
    const carol = await startPhone(base, 'carol', A, true);
    phones.push(dave, carol);
    await dial(carol, `sip:dave@127.0.0.1:${A.sipPort}`);
    await eventually('call establishment at dave', established(dave), 30_000, () => carol.out() + dave.out());
    await eventually('call establishment at carol', established(carol), 10_000, carol.out);
    assert.match(carol.out(), /SIP\/2.0 302 /);
    // The second INVITE went back through adapter A, which proxied it (no second 302, no loop).
    assert.equal(inviteSourcePort(dave), A.sipPort, "dave's phone got the INVITE from carol's adapter");
    assert.equal((carol.out().match(/SIP\/2.0 302 /g) ?? []).length, 1, 'exactly one 302');
  });

  it('protected mode: erin dials frank through sealed SECP2PSIP messages and frank answers her phone', async () => {
    const [, , C, D] = adapters;
    const frank = await startPhone(base, 'frank', D);
    const erin = await startPhone(base, 'erin', C);
    phones.push(frank, erin);
    await dial(erin, `sip:frank@127.0.0.1:${C.sipPort}`);
    await eventually('call establishment at frank', established(frank), 30_000, () => erin.out() + frank.out());
    await eventually('call establishment at erin', established(erin), 10_000, erin.out);
    assert.equal(inviteSourcePort(frank), erin.sipPort);
    const line = D.stderr()
      .split('\n')
      .find((l) => l.includes("verified erin's INVITE"));
    assert.ok(line, D.stderr().slice(-2000));
    assert.equal(JSON.parse(line).sealed, true, 'the INVITE reached frank’s adapter sealed');
  });
});
