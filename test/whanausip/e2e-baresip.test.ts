import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { Identity } from '../../src/identity/identity.ts';
import { freePort, haveBinary } from '../sip/e2e-helpers.ts';
import { type Phone, phoneCommand, startPhone, waitForPhone } from '../support/baresip.ts';
import { type CliProcess, startCli, stopCli } from './cli-process.ts';
import { sipRequest } from './sip-probe.ts';

/**
 * Seed 003 end to end with unmodified phones: three real processes (`node` for alice, `node` for bob, and a
 * `gateway`) form a Whanau DHT over TLS and run SETUP every few seconds. Bob's baresip registers with his node as
 * sip:<bob's hash>@<node> (section 3.4.3), which publishes the phone's contact in his signed record. Alice's
 * baresip dials sip:<bob's hash>@<gateway>; the gateway looks the hash up and answers 302 (section 4.7); alice's
 * phone follows it straight to bob's phone, which answers.
 */
const skip = haveBinary('baresip') ? false : 'baresip is not installed';

describe('WhanauSIP with two baresip phones', { skip, timeout: 300_000 }, () => {
  let base = '';
  const procs: CliProcess[] = [];
  const phones: Phone[] = [];
  let alice: CliProcess;
  let bob: CliProcess;
  let gateway: CliProcess;

  before(async () => {
    base = mkdtempSync(join(tmpdir(), 'whanausip-e2e-'));
    // Identities made up front so every process can be given the others' hashes as --peer.
    const names = ['alice', 'bob', 'gateway'];
    const hashes: string[] = [];
    const dht: number[] = [];
    for (const n of names) {
      const id = Identity.generate();
      id.save(join(base, n, 'identity.pem'));
      hashes.push(id.id);
      dht.push(await freePort());
    }
    const start = (i: number) =>
      startCli(i === 2 ? 'gateway' : 'node', [
        ...['--sip', '127.0.0.1:0', '--dht', `127.0.0.1:${dht[i]}`, '--data', join(base, names[i])],
        ...['--setup-period', '3', '--expected-nodes', '3', '--log-level', 'info'],
        ...names.flatMap((_, j) => (j === i ? [] : ['--peer', `${hashes[j]}@127.0.0.1:${dht[j]}`])),
      ]);
    [alice, bob, gateway] = await Promise.all([start(0), start(1), start(2)]);
    procs.push(alice, bob, gateway);
    for (const [i, p] of procs.entries()) assert.equal(p.hash, hashes[i]);
  });

  after(async () => {
    for (const p of phones) if (p.proc.exitCode === null) p.proc.kill('SIGKILL');
    const codes = await Promise.all(procs.map((p) => stopCli(p)));
    rmSync(base, { recursive: true, force: true });
    assert.deepEqual(codes, [0, 0, 0], 'node and gateway processes exit cleanly on SIGTERM');
  });

  it("alice's phone dials sip:<bob's hash>@gateway and bob's phone answers after the 302", async () => {
    const bobPhone = await startPhone(base, 'bob-phone', bob.uri);
    phones.push(bobPhone);
    await waitForPhone('registration', bobPhone, /\{0\/UDP\/v4\} 200 OK/);
    const alicePhone = await startPhone(base, 'alice-phone', alice.uri);
    phones.push(alicePhone);
    await waitForPhone('registration', alicePhone, /\{0\/UDP\/v4\} 200 OK/);

    // Bob's record reaches the other nodes' tables at the next SETUP; wait until the gateway redirects to his phone.
    const target = `sip:${bob.hash}@127.0.0.1:${gateway.sipPort}`;
    const deadline = Date.now() + 120_000;
    let last = '';
    for (;;) {
      const a = await sipRequest(gateway.sipPort, 'INVITE', target);
      last = `${a.status} ${a.contacts.join(',')}`;
      if (a.status === 302 && a.contacts.some((c) => c.includes(`@127.0.0.1:${bobPhone.sipPort}`))) break;
      if (Date.now() > deadline) assert.fail(`gateway never redirected to bob's phone (last: ${last})`);
      await new Promise((r) => setTimeout(r, 500));
    }

    await phoneCommand(alicePhone, 'dial', target);
    await waitForPhone('call establishment', bobPhone, /Call established/);
    await waitForPhone('call establishment', alicePhone, /Call established/);
    // The gateway answered alice's INVITE with a 302 to bob's registered phone...
    assert.match(
      alicePhone.out(),
      new RegExp(`SIP/2.0 302 Moved Temporarily[\\s\\S]*?Contact: <sip:[^>]*@127\\.0\\.0\\.1:${bobPhone.sipPort}`),
    );
    // ...and bob's phone received the INVITE straight from alice's phone.
    assert.match(
      bobPhone.out(),
      new RegExp(
        `UDP 127\\.0\\.0\\.1:${alicePhone.sipPort} -> 127\\.0\\.0\\.1:${bobPhone.sipPort}\\s*\\r?\\nINVITE sip:`,
      ),
    );
    assert.match(bobPhone.out(), /answering call on line \d+ from sip:[0-9a-f]{40}@127\.0\.0\.1:\d+ with 200/);
  });
});
