import assert from 'node:assert/strict';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { runCli } from '../support/cli.ts';
import { SipClient } from '../support/sip-client.ts';
import {
  type AdapterProc,
  type BootstrapProc,
  eventually,
  startAdapterProc,
  startBootstrapProc,
} from '../secp2psip/procs.ts';
import { type Daemon, freePort, getJson, metricValue, printedUrl, scrape, spawnDaemon } from './ops-procs.ts';

/**
 * The operator surface of real daemons: a bootstrap and two adapters as
 * processes with --http/--metrics, phones played by the test's SIP client.
 * Readiness goes from 503 (adapter started before its bootstrap) to 200;
 * the metrics move with the registrations and calls placed; the bootstrap's
 * administration answers only with its token; `secp2psip status` prints it.
 */
const TOKEN = 'ops-test-token-0123456789abcdef';

describe('metrics, health, state and administration of running daemons', { timeout: 180_000 }, () => {
  let base = '';
  let boot: BootstrapProc;
  let early: Daemon;
  let b: AdapterProc;
  let bootHttp = '';
  let aHttp = '';
  let bHttp = '';
  let bMetrics = '';
  let aSip = 0;
  const clients: SipClient[] = [];

  before(async () => {
    base = mkdtempSync(join(tmpdir(), 'secp2psip-ops-'));
    writeFileSync(join(base, 'token'), `${TOKEN}\n`, { mode: 0o600 });
  });

  after(async () => {
    for (const c of clients) c.close();
    await early?.stop();
    await b?.stop();
    await boot?.stop();
    rmSync(base, { recursive: true, force: true });
  });

  it('an adapter whose bootstrap is not up yet is alive but not ready, and says why', async () => {
    // The bootstrap's key first (made on its first start), so the adapter can name it while it is down.
    const port = await freePort();
    const bootArgs = ['--http', '127.0.0.1:0', '--admin-token-file', join(base, 'token')];
    const first = await startBootstrapProc(join(base, 'boot'), `127.0.0.1:${port}`, bootArgs);
    await first.stop();
    early = spawnDaemon([
      'adapter',
      '--sip',
      '127.0.0.1:0',
      '--bootstrap',
      first.spec,
      '--data',
      join(base, 'a'),
      '--open-registration',
      '--http',
      '127.0.0.1:0',
      '--log-level',
      'warn',
    ]);
    aHttp = await printedUrl(early.stdout, 'http');
    assert.match(aHttp, /^http:\/\/127\.0\.0\.1:\d+\/$/, 'loopback, never a wildcard');
    const health = await getJson(`${aHttp}healthz`);
    assert.equal(health.status, 200);
    const ready = await getJson(`${aHttp}readyz`);
    assert.equal(ready.status, 503);
    assert.equal(ready.body.ready, false);
    assert.match(ready.body.reason, /starting/);

    boot = await startBootstrapProc(join(base, 'boot'), `127.0.0.1:${port}`, bootArgs);
    bootHttp = await printedUrl(boot.stdout, 'http');
    await eventually('adapter A up', () => /^adapter sip:\S+:(\d+)$/m.test(early.stdout()), 60_000, early.stderr);
    aSip = Number(/^adapter sip:\S+:(\d+)$/m.exec(early.stdout())?.[1]);
    b = await startAdapterProc(boot.spec, join(base, 'b'), '127.0.0.1:0', [
      '--http',
      '127.0.0.1:0',
      '--metrics',
      '127.0.0.1:0',
    ]);
    bHttp = await printedUrl(b.stdout, 'http');
    bMetrics = await printedUrl(b.stdout, 'metrics');
    assert.match(bMetrics, /^http:\/\/127\.0\.0\.1:\d+\/metrics$/);
    assert.notEqual(new URL(bHttp).port, new URL(bMetrics).port, 'two listeners when asked for two addresses');
    let last: Awaited<ReturnType<typeof getJson>> | undefined;
    await eventually(
      'adapter A ready',
      () => {
        getJson(`${aHttp}readyz`).then(
          (r) => (last = r),
          () => {},
        );
        return last?.status === 200;
      },
      60_000,
      () => JSON.stringify(last),
    );
    assert.match(last?.body.reason, /on the ring, bootstrap .* reachable/);
    assert.equal((await getJson(`${bootHttp}readyz`)).status, 200);
    // Ready means on the ring; A learns of B by stabilization, a moment later: wait for its view to hold all three.
    let members = 0;
    await eventually(
      'adapter A knows the bootstrap, A and B',
      () => {
        getJson(`${aHttp}api/state`).then(
          (r) => (members = r.body.ring.members.length),
          () => {},
        );
        return members === 3;
      },
      60_000,
      () => `members: ${members}`,
    );
  });

  it('registrations and calls move the counters and the call setup histogram', async () => {
    const alice = await SipClient.open(aSip);
    const bob = await SipClient.open(b.sipPort);
    clients.push(alice, bob);
    const before = await scrape(`${aHttp}metrics`);
    assert.equal(metricValue(before, 'secp2psip_call_setup_seconds_count', { outcome: 'verified' }), undefined);
    for (const [c, name, port] of [
      [alice, 'alice', aSip],
      [bob, 'bob', b.sipPort],
    ] as const) {
      const r = await c.request({
        method: 'REGISTER',
        uri: `sip:127.0.0.1:${port}`,
        from: `sip:${name}@127.0.0.1:${port}`,
        to: `sip:${name}@127.0.0.1:${port}`,
        contact: `<sip:${name}@127.0.0.1:${c.port}>`,
        expires: 600,
      });
      assert.equal(r.status, 200, `${name} registered`);
    }
    const call = await alice.request({
      method: 'INVITE',
      uri: `sip:bob@127.0.0.1:${aSip}`,
      from: `sip:alice@127.0.0.1:${aSip}`,
      contact: `<sip:alice@127.0.0.1:${alice.port}>`,
      callId: 'ops-test-call-1@client',
    });
    assert.equal(call.status, 302);
    const missing = await alice.request({
      method: 'INVITE',
      uri: `sip:nobody@127.0.0.1:${aSip}`,
      from: `sip:alice@127.0.0.1:${aSip}`,
      contact: `<sip:alice@127.0.0.1:${alice.port}>`,
    });
    assert.equal(missing.status, 404);

    const m = await scrape(`${aHttp}metrics`);
    assert.equal(metricValue(m, 'secp2psip_call_setup_seconds_count', { mode: 'signed', outcome: 'verified' }), 1);
    assert.equal(metricValue(m, 'secp2psip_call_setup_seconds_count', { mode: 'signed', outcome: '404' }), 1);
    assert.equal(metricValue(m, 'secp2psip_registrations_total'), 1);
    assert.equal(metricValue(m, 'secp2psip_users'), 1);
    assert.equal(metricValue(m, 'sip_requests_total', { direction: 'in', method: 'REGISTER' }), 1);
    assert.equal(metricValue(m, 'sip_requests_total', { direction: 'in', method: 'INVITE' }), 2);
    assert.equal(metricValue(m, 'sip_responses_total', { direction: 'out', method: 'INVITE', status: '302' }), 1);
    assert.equal(metricValue(m, 'sip_responses_total', { direction: 'out', method: 'INVITE', status: '404' }), 1);
    // The ring: the bootstrap, A and B.
    assert.equal(metricValue(m, 'chord_ring_members_known'), 3);
    const succs = metricValue(m, 'chord_successors') ?? 0;
    assert.ok(succs >= 1 && succs <= (metricValue(m, 'chord_successor_list_size') ?? 0), `successors ${succs}`);
    assert.equal(metricValue(m, 'chord_successor_alone'), 0);
    assert.ok((metricValue(m, 'chord_lookup_hops_count') ?? 0) > 0, 'lookups timed');
    assert.ok((metricValue(m, 'chord_rpc_seconds_count', { result: 'ok' }) ?? 0) > 0, 'ring RPCs timed');
    assert.ok((metricValue(m, 'chord_records_held') ?? 0) > 0, 'records held');
    assert.ok((metricValue(m, 'tls_links_open') ?? 0) > 0, 'TLS links');
    assert.ok((metricValue(m, 'process_cpu_seconds_total') ?? 0) > 0, 'process metrics on the daemon registry');
    assert.equal(metricValue(m, 'secp2psip_replay_refusals_total', { reason: 'replayed' }), 0);

    // The callee's side, on B's metrics-only listener.
    const mb = await scrape(bMetrics);
    assert.equal(metricValue(mb, 'secp2psip_invites_answered_total'), 1);
    assert.equal((await fetch(new URL('/api/state', bMetrics))).status, 404, 'the metrics listener serves no state');
  });

  it('the state shows the call with its steps, and secp2psip status prints it', async () => {
    const s = await getJson(`${aHttp}api/state`);
    assert.equal(s.body.role, 'adapter');
    assert.equal(s.body.ring.members.length, 3);
    assert.equal(s.body.ring.members.filter((m: { bootstrap: boolean }) => m.bootstrap).length, 1);
    const call = s.body.calls.find((c: { callId: string }) => c.callId === 'ops-test-call-1@client');
    assert.ok(call, 'the call is listed');
    assert.equal(call.status, 302);
    assert.ok(call.trace.inviteSentMs <= call.trace.redirectMs && call.trace.redirectMs <= call.trace.verifiedMs);
    assert.ok(call.trace.verifiedMs <= call.ms);
    assert.deepEqual(
      s.body.users.map((u: { name: string }) => u.name),
      ['alice'],
    );

    const out = await runCli(['status', '--http', aHttp], { timeoutMs: 30_000 });
    assert.equal(out.code, 0, out.stderr);
    assert.match(out.stdout, /^adapter [0-9a-f]{40} {2}ready/);
    assert.match(out.stdout, /ring: 3 members known/);
    assert.match(out.stdout, /\(bootstrap\)/);
    assert.match(out.stdout, /alice -> bob {2}verified 302 {2}signed/);
    assert.match(out.stdout, /alice -> nobody {2}404/);
  });

  it('bootstrap administration needs the bearer token', async () => {
    const users = `${bootHttp}api/admin/users`;
    const release = `${bootHttp}api/admin/release`;
    const auth = { authorization: `Bearer ${TOKEN}` };
    assert.equal((await getJson(users)).status, 401);
    assert.equal((await getJson(users, { headers: { authorization: 'Bearer wrong-token-0123456789' } })).status, 401);
    const post = (headers: Record<string, string>) =>
      getJson(release, {
        method: 'POST',
        headers: { ...headers, 'content-type': 'application/json' },
        body: JSON.stringify({ name: 'bob' }),
      });
    assert.equal((await post({})).status, 401, 'no release without the token');
    assert.equal((await getJson(release)).status, 405, 'release is a POST');
    const listed = await getJson(users, { headers: auth });
    assert.equal(listed.status, 200);
    assert.deepEqual(listed.body.users.map((u: { name: string }) => u.name).sort(), ['alice', 'bob']);

    const cli = await runCli(['status', '--http', bootHttp, '--users', '--admin-token-file', join(base, 'token')]);
    assert.equal(cli.code, 0, cli.stderr);
    assert.match(cli.stdout, /^alice {2}registered /m);
    const released = await runCli([
      'status',
      '--http',
      bootHttp,
      '--release',
      'bob',
      '--admin-token-file',
      join(base, 'token'),
    ]);
    assert.equal(released.code, 0, released.stderr);
    assert.equal(released.stdout, 'released bob\n');
    const after = await getJson(users, { headers: auth });
    assert.deepEqual(
      after.body.users.map((u: { name: string }) => u.name),
      ['alice'],
    );
    assert.equal((await post(auth)).status, 404, 'bob is gone');
    // An adapter has no administration at all.
    assert.equal((await getJson(`${aHttp}api/admin/users`, { headers: auth })).status, 401);
  });

  it('an adapter whose bootstrap is gone is no longer ready, and says which', async () => {
    await boot.stop();
    let last: Awaited<ReturnType<typeof getJson>> | undefined;
    await eventually(
      'adapter A not ready',
      () => {
        getJson(`${aHttp}readyz`).then(
          (r) => (last = r),
          () => {},
        );
        return last?.status === 503;
      },
      30_000,
      () => JSON.stringify(last),
    );
    assert.match(last?.body.reason, /bootstrap 127\.0\.0\.1:\d+ unreachable/);
    assert.equal((await getJson(`${aHttp}healthz`)).status, 200, 'still alive');
  });
});
