import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { haveBinary } from '../sip/e2e-helpers.ts';
import { type Phone, phoneCommand, registeredPhone, startPhone as startBaresip } from '../support/baresip.ts';
import { type LinphonePhone, startLinphone } from '../support/linphone.ts';
import { type AdapterProc, type BootstrapProc, eventually, startAdapterProc, startBootstrapProc } from './procs.ts';

/**
 * Instant messages (RFC 3428) between real phones through two adapters:
 * Debian's baresip (its contact module's `message` command, over UDP and
 * TCP) and linphonec (its `chat` command) send MESSAGE to
 * `sip:<name>@<own adapter>`; the recipient's phone gets a MESSAGE whose
 * From is the verified sender at its own adapter, and the sender's phone a
 * 200 only once that phone took it.
 */
const skip = haveBinary('baresip') && haveBinary('linphonec') ? false : 'baresip or linphonec is not installed';

/** A SIP request `method` that arrived at `phone` (a baresip -s trace or linphonec's log), with its headers and body. */
function received(out: string, method: string, body: string): string | undefined {
  const blocks = out.split(new RegExp(`(?=^${method} sip:)`, 'm'));
  return blocks.find((b) => b.startsWith(`${method} sip:`) && b.includes(body));
}

describe('instant messages between real phones through two adapters', { skip, timeout: 240_000 }, () => {
  let base = '';
  let boot: BootstrapProc;
  let A: AdapterProc;
  let B: AdapterProc;
  const phones: Phone[] = [];
  const linphones: LinphonePhone[] = [];

  async function baresip(user: string, adapter: AdapterProc, peer: string, tcp = false): Promise<Phone> {
    const t = tcp ? ';transport=tcp' : '';
    const phone = await registeredPhone(
      user,
      () =>
        startBaresip(base, user, `sip:${user}@127.0.0.1:${adapter.sipPort}${t}`, {
          modules: ['contact.so'],
          contacts: [`<sip:${peer}@127.0.0.1:${adapter.sipPort}${t}>`],
        }),
      adapter.stderr,
    );
    phones.push(phone);
    return phone;
  }

  before(async () => {
    base = mkdtempSync(join(tmpdir(), 'secp2psip-im-'));
    boot = await startBootstrapProc(join(base, 'boot'));
    A = await startAdapterProc(boot.spec, join(base, 'A'));
    // B seals what it sends (protected mode): messages between the two adapters cross modes.
    B = await startAdapterProc(boot.spec, join(base, 'B'), '127.0.0.1:0', ['--mode', 'protected']);
  });

  after(async () => {
    for (const p of phones) if (p.proc.exitCode === null) p.proc.kill('SIGKILL');
    for (const l of linphones) await l.stop();
    await A?.stop();
    await B?.stop();
    await boot?.stop();
    rmSync(base, { recursive: true, force: true });
  });

  it('baresip to baresip over UDP, both ways: From is the verified sender, the sender gets 200', async () => {
    const bob = await baresip('bob', B, 'alice');
    const alice = await baresip('alice', A, 'bob');
    await phoneCommand(alice, 'message', 'hello bob, over UDP');
    await eventually(
      'MESSAGE at bob',
      () => received(bob.out(), 'MESSAGE', 'hello bob, over UDP') !== undefined,
      20_000,
      () => alice.out() + A.stderr() + B.stderr(),
    );
    const got = received(bob.out(), 'MESSAGE', 'hello bob, over UDP') as string;
    assert.match(got, new RegExp(`^From: <sip:alice@127\\.0\\.0\\.1:${B.sipPort}>`, 'm'));
    assert.match(got, /^Content-Type: text\/plain/m);
    await eventually(
      '200 at alice',
      () => /SIP\/2.0 200 OK[\s\S]*?CSeq: \d+ MESSAGE/.test(alice.out()),
      10_000,
      alice.out,
    );
    await eventually('verified at B', () => /verified alice's MESSAGE; delivered/.test(B.stderr()), 10_000, B.stderr);

    await phoneCommand(bob, 'message', 'hi alice, back');
    await eventually(
      'reply at alice',
      () => received(alice.out(), 'MESSAGE', 'hi alice, back') !== undefined,
      20_000,
      bob.out,
    );
    assert.match(
      received(alice.out(), 'MESSAGE', 'hi alice, back') as string,
      new RegExp(`^From: <sip:bob@127\\.0\\.0\\.1:${A.sipPort}>`, 'm'),
    );
    // From B (protected mode) the MESSAGE reached A sealed to alice.
    await eventually('verified at A', () => /verified bob's MESSAGE; delivered/.test(A.stderr()), 10_000, A.stderr);
    const line = A.stderr()
      .split('\n')
      .find((l) => l.includes("verified bob's MESSAGE"));
    assert.equal(JSON.parse(line as string).sealed, true);
  });

  it('baresip to baresip over TCP: the recipient phone gets the MESSAGE on a TCP connection', async () => {
    const frank = await baresip('frank', B, 'erin', true);
    const erin = await baresip('erin', A, 'frank', true);
    await phoneCommand(erin, 'message', 'hello frank, over TCP');
    await eventually(
      'MESSAGE at frank',
      () => received(frank.out(), 'MESSAGE', 'hello frank, over TCP') !== undefined,
      20_000,
      () => erin.out() + B.stderr(),
    );
    assert.match(
      frank.out(),
      new RegExp(`TCP 127\\.0\\.0\\.1:\\d+ -> 127\\.0\\.0\\.1:${frank.sipPort}\\s*\\r?\\nMESSAGE sip:`),
    );
    assert.match(
      received(frank.out(), 'MESSAGE', 'hello frank, over TCP') as string,
      new RegExp(`^From: <sip:erin@127\\.0\\.0\\.1:${B.sipPort}>`, 'm'),
    );
    await eventually(
      '200 at erin',
      () => /SIP\/2.0 200 OK[\s\S]*?CSeq: \d+ MESSAGE/.test(erin.out()),
      10_000,
      erin.out,
    );
  });

  it('linphonec (TCP) and baresip (UDP) chat through the two adapters', async () => {
    const dave = await baresip('dave', B, 'carol');
    const carol = await startLinphone(base, {
      user: 'carol',
      registrar: `127.0.0.1:${A.sipPort}`,
      transport: 'tcp',
      route: true,
      wavFiles: false,
    });
    linphones.push(carol);
    await eventually('carol registration', () => /RegistrationOk/.test(carol.log()), 30_000, carol.log);
    await carol.command(`chat sip:dave@127.0.0.1:${A.sipPort} hello dave from linphone`);
    await eventually(
      'MESSAGE at dave',
      () => received(dave.out(), 'MESSAGE', 'hello dave from linphone') !== undefined,
      20_000,
      () => carol.log().slice(-4000) + A.stderr(),
    );
    assert.match(
      received(dave.out(), 'MESSAGE', 'hello dave from linphone') as string,
      new RegExp(`^From: <sip:carol@127\\.0\\.0\\.1:${B.sipPort}>`, 'm'),
    );
    await eventually(
      'delivered at carol',
      () => /moving from InProgress to Delivered/.test(carol.log()),
      10_000,
      () => carol.log().slice(-4000),
    );

    await phoneCommand(dave, 'message', 'hi carol from baresip');
    await eventually(
      'message at carol',
      // linphonec prints a received message on its console, not in its debug log.
      () => /Message received from sip:dave@127\.0\.0\.1[^:]*: hi carol from baresip/.test(carol.out()),
      20_000,
      () => carol.log().slice(-4000) + A.stderr(),
    );
  });

  it('a message to a user whose adapter is down is stored (202) and reaches her phone once the adapter is back', async () => {
    const dir = join(base, 'C');
    let C = await startAdapterProc(boot.spec, dir);
    const grace = await baresip('grace', C, 'heidi');
    const heidi = await baresip('heidi', A, 'grace');
    const port = C.sipPort;
    await C.stop();
    await phoneCommand(heidi, 'message', 'sent while your adapter was down');
    await eventually(
      '202 at heidi',
      () => /SIP\/2.0 202 [^\r\n]*[\s\S]*?CSeq: \d+ MESSAGE/.test(heidi.out()),
      30_000,
      () => heidi.out().slice(-3000) + A.stderr().slice(-3000),
    );
    await eventually('stored at A', () => /message to grace stored in the ring/.test(A.stderr()), 10_000, A.stderr);
    assert.equal(received(grace.out(), 'MESSAGE', 'sent while your adapter was down'), undefined);
    C = await startAdapterProc(boot.spec, dir, `127.0.0.1:${port}`);
    try {
      await eventually(
        'stored MESSAGE at grace',
        () => received(grace.out(), 'MESSAGE', 'sent while your adapter was down') !== undefined,
        60_000,
        () => C.stderr().slice(-4000),
      );
      assert.match(
        received(grace.out(), 'MESSAGE', 'sent while your adapter was down') as string,
        new RegExp(`^From: <sip:heidi@127\\.0\\.0\\.1:${port}>`, 'm'),
      );
      await eventually('delivery logged', () => /stored message delivered/.test(C.stderr()), 10_000, C.stderr);
    } finally {
      await C.stop();
    }
  });

  it('an unknown recipient gets 404, a body over the limit 413, and neither reaches anyone', async () => {
    const [alice] = phones;
    const linphone = linphones[0];
    await linphone.command(`chat sip:nobody-here@127.0.0.1:${A.sipPort} anyone?`);
    await eventually(
      '404 at carol',
      () => /SIP\/2.0 404 [^\r\n]*[\s\S]*?CSeq: \d+ MESSAGE/.test(linphone.log()),
      20_000,
      () => linphone.log().slice(-3000),
    );
    await linphone.command(`chat sip:dave@127.0.0.1:${A.sipPort} ${'x'.repeat(9000)}`);
    await eventually(
      '413 at carol',
      () => /SIP\/2.0 413 /.test(linphone.log()),
      20_000,
      () => linphone.log().slice(-3000),
    );
    assert.equal(received(alice.out(), 'MESSAGE', 'anyone?'), undefined);
  });
});
