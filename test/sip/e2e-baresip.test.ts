import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { type Phone, phoneCommand, startPhone, waitForPhone } from '../support/baresip.ts';
import { haveBinary, type Running, startRegistrar, stop } from './e2e-helpers.ts';

/**
 * Two real baresip phones (Debian's baresip 1.0) register with `secp2psip registrar`; alice dials bob through
 * it, follows the 302 straight to bob's phone, and bob (answermode=auto) answers. Audio goes through the
 * aubridge module so no sound device is needed; SIP traces (-s) on stdout are what the test reads.
 */
const skip = haveBinary('baresip') ? false : 'baresip is not installed';

describe('secp2psip registrar with two baresip phones', { skip, timeout: 90_000 }, () => {
  let reg: Running | undefined;
  let base = '';
  const phones: Phone[] = [];

  before(async () => {
    base = mkdtempSync(join(tmpdir(), 'baresip-'));
    reg = await startRegistrar(['--min-expires', '30']);
  });

  after(async () => {
    for (const p of phones) if (p.proc.exitCode === null) p.proc.kill('SIGKILL');
    await stop(reg);
    rmSync(base, { recursive: true, force: true });
  });

  it('alice dials bob: the 302 sends her phone to bob, and bob answers the INVITE from her address', async () => {
    const port = reg!.port;
    const bob = await startPhone(base, 'bob', `sip:bob@127.0.0.1:${port}`);
    phones.push(bob);
    await waitForPhone('registration', bob, /bob@127\.0\.0\.1: \{0\/UDP\/v4\} 200 OK/);
    const alice = await startPhone(base, 'alice', `sip:alice@127.0.0.1:${port}`);
    phones.push(alice);
    await waitForPhone('registration', alice, /alice@127\.0\.0\.1: \{0\/UDP\/v4\} 200 OK/);

    await phoneCommand(alice, 'dial', `sip:bob@127.0.0.1:${port}`);
    await waitForPhone('call establishment', bob, /Call established/);
    await waitForPhone('call establishment', alice, /Call established/);

    // The registrar redirected alice to bob's registered contact.
    assert.match(
      alice.out(),
      new RegExp(`SIP/2.0 302 Moved Temporarily[\\s\\S]*?Contact: <sip:bob[^@]*@127\\.0\\.0\\.1:${bob.sipPort}>`),
    );
    // Bob's phone got the INVITE straight from alice's phone, not through the registrar.
    assert.match(
      bob.out(),
      new RegExp(`UDP 127\\.0\\.0\\.1:${alice.sipPort} -> 127\\.0\\.0\\.1:${bob.sipPort}\\s*\\r?\\nINVITE sip:bob`),
    );
    assert.match(bob.out(), /answering call on line \d+ from sip:alice@127\.0\.0\.1:\d+ with 200/);
    assert.match(alice.out(), /SIP\/2\.0 200 [\s\S]*Call established: sip:bob@127\.0\.0\.1/);
  });
});
