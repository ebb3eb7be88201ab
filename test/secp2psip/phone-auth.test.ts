import assert from 'node:assert/strict';
import { mkdtempSync, rmSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { getHeader, getHeaders } from '../../src/sip/message.ts';
import { runCli } from '../support/cli.ts';
import { SipClient } from '../support/sip-client.ts';
import { type AdapterProc, type BootstrapProc, startAuthAdapterProc, startBootstrapProc } from './procs.ts';

/**
 * Issue 16 item 2 and the proxy half of item 6, against real daemons: a
 * stranger who reaches an adapter's SIP port cannot register as alice, remove
 * her bindings, call as her, replay her REGISTER, nor have the adapter relay
 * requests to a contact it verified for her. Each attack succeeded before
 * phones had to authenticate.
 */
describe('phone authentication at the adapter (processes, digest)', { timeout: 180_000 }, () => {
  let base = '';
  let boot: BootstrapProc;
  let A: AdapterProc;
  let B: AdapterProc;
  let empty: AdapterProc;
  const clients: SipClient[] = [];
  const pw = { alice: 'alice-pass-1', bob: 'bob-pass-22', mallory: 'mallory-pass-3' };
  let alice: SipClient;
  let bob: SipClient;
  let stranger: SipClient;

  const addUser = async (dir: string, name: string, password?: string) => {
    const r = await runCli([
      'adapter',
      '--data',
      dir,
      '--add-user',
      name,
      ...(password ? ['--password', password] : []),
    ]);
    assert.equal(r.code, 0, r.stderr);
    return r.stdout;
  };
  const client = async (port: number) => {
    const c = await SipClient.open(port);
    clients.push(c);
    return c;
  };
  const aor = (user: string, a: AdapterProc) => `sip:${user}@${a.sip}`;
  const register = (c: SipClient, user: string, a: AdapterProc, contactPort = c.port) => ({
    method: 'REGISTER',
    uri: `sip:${a.sip}`,
    from: aor(user, a),
    to: aor(user, a),
    contact: `<sip:${user}@127.0.0.1:${contactPort}>`,
    expires: 600,
  });
  const invite = (from: string, callee: string, a: AdapterProc, c: SipClient) => ({
    method: 'INVITE',
    uri: aor(callee, a),
    from: aor(from, a),
    contact: `<sip:${from}@127.0.0.1:${c.port}>`,
  });

  before(async () => {
    base = mkdtempSync(join(tmpdir(), 'secp2psip-phone-auth-'));
    boot = await startBootstrapProc(join(base, 'boot'));
    await addUser(join(base, 'A'), 'alice', pw.alice);
    await addUser(join(base, 'A'), 'mallory', pw.mallory);
    await addUser(join(base, 'B'), 'bob', pw.bob);
    [A, B, empty] = await Promise.all([
      startAuthAdapterProc(boot.spec, join(base, 'A')),
      startAuthAdapterProc(boot.spec, join(base, 'B')),
      startAuthAdapterProc(boot.spec, join(base, 'empty')),
    ]);
    alice = await client(A.sipPort);
    bob = await client(B.sipPort);
    stranger = await client(A.sipPort);
    assert.equal((await alice.withDigest(register(alice, 'alice', A), 'alice', pw.alice)).final.status, 200);
    assert.equal((await bob.withDigest(register(bob, 'bob', B), 'bob', pw.bob)).final.status, 200);
  });

  after(async () => {
    for (const c of clients) c.close();
    await Promise.all([A, B, empty].map((a) => a?.stop()));
    await boot?.stop();
    rmSync(base, { recursive: true, force: true });
  });

  it('keeps phone users as HA1 in a 0600 file; a generated password is printed', async () => {
    const out = await addUser(join(base, 'gen'), 'carol');
    assert.match(out, /^user carol added; password \S{16,}\n$/);
    assert.equal(statSync(join(base, 'gen', 'phone-users.json')).mode & 0o777, 0o600);
    const bad = await runCli(['adapter', '--data', join(base, 'gen'), '--add-user', 'a b']);
    assert.equal(bad.code, 2);
    assert.equal(bad.stderr.trim().split('\n').length, 1, bad.stderr);
    const gone = await runCli(['adapter', '--data', join(base, 'gen'), '--remove-user', 'nobody']);
    assert.notEqual(gone.code, 0);
    assert.match(gone.stderr, /no phone user 'nobody'/);
  });

  it('an adapter without phone users refuses every REGISTER, naming the fix', async () => {
    const c = await client(empty.sipPort);
    const r = await c.request(register(c, 'alice', empty));
    assert.equal(r.status, 403);
    assert.match(r.reason, /--add-user/);
    assert.match(r.reason, /--open-registration/);
  });

  it('challenges REGISTER with SHA-256 then MD5; a stranger cannot register as alice', async () => {
    const r = await stranger.request(register(stranger, 'alice', A));
    assert.equal(r.status, 401);
    const ch = getHeaders(r, 'WWW-Authenticate');
    assert.match(ch[0], /algorithm=SHA-256/);
    assert.match(ch[1], /algorithm=MD5/);
    const wrong = await stranger.withDigest(register(stranger, 'alice', A), 'alice', 'guessed-password');
    assert.equal(wrong.final.status, 401);
    // A phone user of the same adapter cannot register someone else's name either.
    const insider = await stranger.withDigest(register(stranger, 'alice', A), 'mallory', pw.mallory);
    assert.equal(insider.final.status, 403);
  });

  it("a stranger cannot remove alice's bindings (Contact: *), nor replay her REGISTER", async () => {
    const star = { ...register(stranger, 'alice', A), contact: '*', expires: 0 };
    assert.equal((await stranger.request(star)).status, 401);
    const ok = await alice.withDigest(register(alice, 'alice', A), 'alice', pw.alice);
    assert.equal(ok.final.status, 200);
    // The captured request sent again as a new transaction (a new branch): the nonce count is used up.
    const replay = ok.text.replace(/branch=[^;\r\n]+/, 'branch=z9hG4bKreplayed1');
    assert.equal((await stranger.sendRaw(replay)).status, 403);
    // alice is still reachable at her own phone.
    const call = await bob.withDigest(invite('bob', 'alice', B, bob), 'bob', pw.bob);
    assert.equal(call.final.status, 302);
    assert.match(getHeader(call.final, 'Contact') ?? '', new RegExp(`127\\.0\\.0\\.1:${alice.port}`));
  });

  it('a stranger cannot call as alice; an authenticated phone cannot put alice in From', async () => {
    const r = await stranger.request(invite('alice', 'bob', A, stranger));
    assert.equal(r.status, 407);
    assert.match(getHeaders(r, 'Proxy-Authenticate')[0], /algorithm=SHA-256/);
    const forged = await stranger.withDigest(invite('alice', 'bob', A, stranger), 'mallory', pw.mallory);
    assert.equal(forged.final.status, 403);
    assert.equal(getHeader(forged.final, 'Contact'), undefined);
    const real = await alice.withDigest(invite('alice', 'bob', A, alice), 'alice', pw.alice);
    assert.equal(real.final.status, 302);
  });

  it('the adapter relays to a verified contact only for its own authenticated phones', async () => {
    const call = await alice.withDigest(invite('alice', 'bob', A, alice), 'alice', pw.alice);
    assert.equal(call.final.status, 302);
    const target = /<([^>]+)>/.exec(getHeader(call.final, 'Contact') ?? '')?.[1] ?? '';
    assert.match(target, new RegExp(`:${bob.port}`));
    const before = bob.received.length;
    const relayed = { method: 'INVITE', uri: target, from: 'sip:anyone@example.com', to: aor('bob', B) };
    const r = await stranger.request(relayed);
    assert.equal(r.status, 407);
    await new Promise((res) => setTimeout(res, 300));
    assert.equal(bob.received.length, before, 'nothing reached the callee phone');
    // alice's own phone, through its adapter as outbound proxy: relayed once authenticated.
    const own = { ...relayed, from: aor('alice', A) };
    alice.withDigest(own, 'alice', pw.alice).catch(() => {});
    const end = Date.now() + 5000;
    while (bob.received.length === before && Date.now() < end) await new Promise((res) => setTimeout(res, 50));
    assert.ok(bob.received.slice(before).some((t) => t.startsWith(`INVITE ${target}`)));
  });
});
