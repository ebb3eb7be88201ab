/**
 * Names cannot be farmed: with the real daemons, a flood of REGISTERs for new
 * names through one adapter binds at most what the bootstrap's limits allow,
 * and leaves key files only for the names bound. A refused new name reaches
 * the phone as 503 with Retry-After (only the per-minute rate: it may come
 * back) or 403 with the reason (the adapter's total, a missing or bad
 * enrolment token). The per-adapter total survives a bootstrap restart.
 * Once, 3,000 REGISTERs in 0.1 s through one adapter bound 2,779 names for
 * good and wrote 3,004 key files.
 */
import assert from 'node:assert/strict';
import { existsSync, mkdtempSync, readdirSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import Database from 'better-sqlite3';
import { Registry } from '../../src/secp2psip/registry.ts';
import { runCli } from '../support/cli.ts';
import { type BurstAnswer, SipBurst } from '../support/sip-burst.ts';
import { freePort } from '../sip/e2e-helpers.ts';
import { type AdapterProc, type BootstrapProc, startAdapterProc, startBootstrapProc } from './procs.ts';

const INVITE_HEADER = 'X-Secp2psip-Invite';

let base = '';
const procs: (AdapterProc | BootstrapProc)[] = [];
const clients: SipBurst[] = [];
before(() => {
  base = mkdtempSync(join(tmpdir(), 'secp2psip-names-'));
});
after(async () => {
  for (const c of clients) c.close();
  for (const p of procs.reverse()) await p.stop();
  rmSync(base, { recursive: true, force: true });
});

async function bootstrap(dir: string, extra: string[] = [], listen?: string): Promise<BootstrapProc> {
  const p = await startBootstrapProc(join(base, dir), listen ?? `127.0.0.1:${await freePort()}`, extra);
  procs.push(p);
  return p;
}

async function adapter(boot: BootstrapProc, dir: string, extra: string[] = []): Promise<AdapterProc> {
  const p = await startAdapterProc(boot.spec, join(base, dir), '127.0.0.1:0', extra);
  procs.push(p);
  return p;
}

async function client(a: AdapterProc): Promise<SipBurst> {
  const c = await SipBurst.open(a.sip);
  clients.push(c);
  return c;
}

function register(c: SipBurst, a: AdapterProc, user: string, invite?: string): Promise<BurstAnswer | null> {
  const headers = invite === undefined ? [] : [`${INVITE_HEADER}: ${invite}`];
  return c.send({ method: 'REGISTER', uri: `sip:${a.sip}`, from: user, headers }, 30_000);
}

/** User names with a key file in an adapter's data directory. */
function keyFiles(dir: string): string[] {
  const users = join(base, dir, 'users');
  if (!existsSync(users)) return [];
  return readdirSync(users)
    .filter((f) => f.endsWith('.pem'))
    .map((f) => f.slice(0, -4))
    .sort();
}

/** Names bound in a bootstrap's registry (read-only, while it runs). */
function boundNames(dir: string): string[] {
  const db = new Database(join(base, dir, 'registry.sqlite'), { readonly: true, fileMustExist: true });
  try {
    return (db.prepare('SELECT name FROM users ORDER BY name').all() as { name: string }[]).map((r) => r.name);
  } finally {
    db.close();
  }
}

function tally(answers: (BurstAnswer | null)[]): Record<string, number> {
  const out: Record<string, number> = {};
  for (const a of answers) out[a ? String(a.status) : 'none'] = (out[a ? String(a.status) : 'none'] ?? 0) + 1;
  return out;
}

describe('new names cannot be farmed through one adapter', { timeout: 300_000 }, () => {
  it('3,000 REGISTERs for new names at the default limits bind at most 10 names and write key files only for them', async () => {
    const boot = await bootstrap('farm-boot');
    const a = await adapter(boot, 'farm-a');
    const c = await client(a);
    const names = Array.from({ length: 3000 }, (_, i) => `farm${i}`);
    const answers = await Promise.all(names.map((u) => register(c, a, u)));
    const counts = tally(answers);
    const ok = names.filter((_, i) => answers[i]?.status === 200).sort();
    assert.ok(ok.length >= 1 && ok.length <= 10, `200s: ${JSON.stringify(counts)}`);
    for (const ans of answers) {
      if (ans === null || ans.status === 200) continue;
      assert.equal(ans.status, 503, `${ans.status} ${ans.reason}`);
      assert.ok(ans.retryAfter !== undefined && ans.retryAfter >= 1, 'a refused new name may come back later');
    }
    const bound = boundNames('farm-boot');
    assert.ok(bound.length <= 10, `bound at the bootstrap: ${bound.length}`);
    assert.deepEqual(bound, ok);
    assert.deepEqual(keyFiles('farm-a'), ok);
    // A name refused by the rate carries the reason and a Retry-After: the wait for the next token, at most the
    // rate's spacing (10/min: 6 s). The burst ran long enough for tokens to come back, so it may be as short as 1 s.
    const late = await register(c, a, 'farmlate');
    assert.equal(late?.status, 503);
    assert.match(late?.reason ?? '', /too many new names/);
    assert.ok((late?.retryAfter ?? 0) >= 1 && (late?.retryAfter ?? 0) <= 6, `Retry-After ${late?.retryAfter}`);
    // Users already bound re-register at once: never limited.
    const again = await register(c, a, ok[0]);
    assert.equal(again?.status, 200);
  });

  it("the bootstrap's own rate refuses an adapter that does not cap itself: 503 with Retry-After, no key file", async () => {
    const boot = await bootstrap('rate-boot', ['--new-names-per-minute', '5']);
    const a = await adapter(boot, 'rate-a', ['--new-names-per-minute', '0']);
    const c = await client(a);
    const names = Array.from({ length: 200 }, (_, i) => `rate${i}`);
    const answers: (BurstAnswer | null)[] = [];
    // In waves within the adapter's own back-pressure (32 pending), so each name reaches the bootstrap.
    for (let i = 0; i < names.length; i += 20)
      answers.push(...(await Promise.all(names.slice(i, i + 20).map((u) => register(c, a, u)))));
    const ok = names.filter((_, i) => answers[i]?.status === 200).sort();
    assert.equal(ok.length, 5, JSON.stringify(tally(answers)));
    const refused = answers.filter((x) => x?.status === 503 && /too many new names from this adapter/.test(x.reason));
    assert.ok(refused.length >= 150, JSON.stringify(tally(answers)));
    for (const r of refused) assert.ok((r?.retryAfter ?? 0) >= 1);
    assert.deepEqual(boundNames('rate-boot'), ok);
    assert.deepEqual(keyFiles('rate-a'), ok);
  });

  it('the per-adapter total refuses with 403 and the reason, and a bootstrap restart does not reset it', async () => {
    const listen = `127.0.0.1:${await freePort()}`;
    const flags = ['--new-names-per-minute', '0', '--new-names-per-adapter', '3'];
    let boot = await bootstrap('quota-boot', flags, listen);
    const a = await adapter(boot, 'quota-a', ['--new-names-per-minute', '0']);
    const c = await client(a);
    for (const u of ['q0', 'q1', 'q2']) assert.equal((await register(c, a, u))?.status, 200, u);
    const over = await register(c, a, 'q3');
    assert.equal(over?.status, 403);
    assert.match(over?.reason ?? '', /quota/);
    await boot.stop();
    procs.splice(procs.indexOf(boot), 1);
    boot = await bootstrap('quota-boot', flags, listen);
    // The adapter reconnects to the restarted bootstrap; the total is still used up.
    let after: BurstAnswer | null = null;
    for (let i = 0; i < 40; i++) {
      after = await register(c, a, 'q4');
      if (after?.status === 403) break;
      await new Promise((r) => setTimeout(r, 500));
    }
    assert.equal(after?.status, 403, `${after?.status} ${after?.reason}`);
    assert.match(after?.reason ?? '', /quota/);
    assert.deepEqual(boundNames('quota-boot'), ['q0', 'q1', 'q2']);
    assert.deepEqual(keyFiles('quota-a'), ['q0', 'q1', 'q2']);
  });
});

describe('enrolment tokens (bootstrap --require-invite)', { timeout: 300_000 }, () => {
  it('a new name needs a valid unused token for it, from the phone or configured on the adapter', async () => {
    const boot = await bootstrap('inv-boot', ['--require-invite', '--new-names-per-minute', '0']);
    const bootDir = join(base, 'inv-boot');
    const made = await runCli(['bootstrap', '--data', bootDir, '--invite', '--count', '3']);
    assert.equal(made.code, 0, made.stderr);
    const [t1, t2, t3] = made.stdout.trim().split('\n');
    assert.ok(
      [t1, t2, t3].every((t) => /^[A-Za-z0-9_-]{24}$/.test(t)),
      made.stdout,
    );
    const alice = await runCli(['bootstrap', '--data', bootDir, '--invite', '--for', 'alice']);
    assert.equal(alice.code, 0, alice.stderr);
    const forAlice = alice.stdout.trim();
    // An expired token (made directly in the registry: the command's shortest lifetime is a day).
    const reg = new Registry(join(bootDir, 'registry.sqlite'));
    const [expired] = reg.createInvites(1, Date.now() - 10_000, Date.now() - 1000);
    reg.close();

    const a = await adapter(boot, 'inv-a', ['--new-names-per-minute', '0']);
    const c = await client(a);
    const refused = async (user: string, token: string | undefined, why: RegExp) => {
      const r = await register(c, a, user, token);
      assert.equal(r?.status, 403, `${user}: ${r?.status} ${r?.reason}`);
      assert.match(r?.reason ?? '', why);
    };
    await refused('dave', undefined, /needs an enrolment token/);
    await refused('dave', 'AAAAAAAAAAAAAAAAAAAAAAAA', /unknown token/);
    await refused('dave', expired, /expired/);
    await refused('bob', forAlice, /another name/);
    assert.equal((await register(c, a, 'dave', t1))?.status, 200);
    await refused('erin', t1, /already used/);
    assert.equal((await register(c, a, 'alice', forAlice))?.status, 200);
    // A token configured on the adapter for carol (kept in its data dir, dropped once spent).
    const kept = await runCli(['adapter', '--data', join(base, 'inv-a'), '--invite-for', 'carol', '--token', t2]);
    assert.equal(kept.code, 0, kept.stderr);
    assert.equal((await register(c, a, 'carol'))?.status, 200);
    assert.ok(!existsSync(join(base, 'inv-a', 'users', 'carol.invite')));
    assert.deepEqual(boundNames('inv-boot'), ['alice', 'carol', 'dave']);
    assert.deepEqual(keyFiles('inv-a'), ['alice', 'carol', 'dave']);
    // t3 is still good for anyone.
    assert.equal((await register(c, a, 'erin', t3))?.status, 200);
  });
});
