import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { after, before, describe, it } from 'node:test';
import { hostAllowed, OpsServer } from '../../src/ops/http-server.ts';
import { PromMetrics } from '../../src/ops/prom-metrics.ts';
import type { AdminUser, OpsTarget } from '../../src/ops/targets.ts';

const TOKEN = 'unit-test-token-0123456789';

/** A bootstrap-like target whose administration is a list in memory. */
function target(users: AdminUser[], ready: boolean): OpsTarget {
  return {
    ready: async () => ({ ok: ready, reason: ready ? 'serving' : 'joining' }),
    state: (r) => ({ role: 'bootstrap', id: 'ab'.repeat(20), addr: '127.0.0.1:7000', at: Date.now(), ready: r }),
    admin: {
      users: () => users,
      release: (name) => {
        const i = users.findIndex((u) => u.name === name);
        if (i < 0) return false;
        users.splice(i, 1);
        return true;
      },
    },
  };
}

describe('the operator HTTP listener', () => {
  let s: OpsServer;
  let open: OpsServer;
  let base = '';
  const users: AdminUser[] = [{ name: 'alice', registeredAt: 1, updatedAt: 1, certified: false }];

  before(async () => {
    s = await OpsServer.listen({
      host: '127.0.0.1',
      port: 0,
      role: 'bootstrap',
      dashboard: true,
      metrics: new PromMetrics({ role: 'bootstrap' }, { processMetrics: false }),
      adminToken: TOKEN,
      pushMs: 50,
    });
    base = s.url;
    open = await OpsServer.listen({ host: '127.0.0.1', port: 0, role: 'adapter', dashboard: true, pushMs: 50 });
  });

  after(async () => {
    await s.close();
    await open.close();
  });

  const get = (path: string, init: RequestInit = {}, url = base) => fetch(new URL(path, url), init);

  it('is alive at once, ready only once the daemon says so', async () => {
    assert.equal((await get('/healthz')).status, 200);
    const r = await get('/readyz');
    assert.equal(r.status, 503);
    assert.deepEqual(await r.json(), { ready: false, reason: 'starting', role: 'bootstrap' });
    s.attach(target(users, false));
    assert.equal((await get('/readyz')).status, 503);
    s.attach(target(users, true));
    const ok = await get('/readyz');
    assert.equal(ok.status, 200);
    assert.equal(((await ok.json()) as { reason: string }).reason, 'serving');
  });

  it('serves metrics, the page and its assets from the package, nothing else', async () => {
    const m = await get('/metrics');
    assert.equal(m.status, 200);
    assert.match(await m.text(), /# TYPE sip_requests_total counter/);
    const page = await get('/');
    assert.match(page.headers.get('content-type') ?? '', /^text\/html/);
    const html = await page.text();
    assert.equal(html, readFileSync(new URL('../../src/ops/dashboard/index.html', import.meta.url), 'utf8'));
    // No CDN: every script and stylesheet is one of ours.
    for (const ref of html.matchAll(/(?:src|href)="([^"]+)"/g)) assert.match(ref[1], /^\/[a-z.]+$/);
    assert.equal((await get('/dashboard.js')).headers.get('content-type'), 'text/javascript; charset=utf-8');
    assert.equal((await get('/dashboard.css')).status, 200);
    assert.equal((await get('/etc/passwd')).status, 404);
    assert.equal((await get('/../package.json')).status, 404);
    const post = await get('/healthz', { method: 'POST' });
    assert.equal(post.status, 405);
    assert.equal(post.headers.get('allow'), 'GET, HEAD');
  });

  it('pushes the state as server-sent events', async () => {
    const ac = new AbortController();
    const r = await get('/events', { signal: ac.signal });
    assert.equal(r.headers.get('content-type'), 'text/event-stream');
    const reader = (r.body as ReadableStream<Uint8Array>).getReader();
    let text = '';
    while ((text.match(/^data: /gm) ?? []).length < 2)
      text += Buffer.from((await reader.read()).value ?? []).toString();
    const first = JSON.parse(/^data: (.*)$/m.exec(text)?.[1] ?? '{}');
    assert.equal(first.role, 'bootstrap');
    assert.equal(first.ready.ok, true);
    ac.abort();
  });

  it('refuses pages asked for under a foreign host name (DNS rebinding), not scrapes', async () => {
    assert.equal(hostAllowed('127.0.0.1:8080'), true);
    assert.equal(hostAllowed('localhost:8080'), true);
    assert.equal(hostAllowed('[::1]:8080'), true);
    assert.equal(hostAllowed('evil.example:8080'), false);
    assert.equal(hostAllowed(undefined), true);
    // fetch() does not let a caller set Host; node:http does.
    const { request } = await import('node:http');
    const status = (path: string) =>
      new Promise<number>((resolve, reject) => {
        const u = new URL(base);
        const req = request({ host: u.hostname, port: u.port, path, headers: { host: 'evil.example' } }, (res) => {
          res.resume();
          resolve(res.statusCode ?? 0);
        });
        req.on('error', reject);
        req.end();
      });
    assert.equal(await status('/api/state'), 421);
    assert.equal(await status('/'), 421);
    assert.equal(await status('/metrics'), 200);
  });

  it('administration: 401 without the token or with a wrong one; works with it', async () => {
    const auth = { authorization: `Bearer ${TOKEN}` };
    assert.equal((await get('/api/admin/users')).status, 401);
    assert.match((await get('/api/admin/users')).headers.get('www-authenticate') ?? '', /^Bearer/);
    assert.equal((await get('/api/admin/users', { headers: { authorization: 'Bearer nope' } })).status, 401);
    assert.equal((await get('/api/admin/users', { headers: { authorization: TOKEN } })).status, 401);
    const release = (headers: Record<string, string>, body: string) =>
      get('/api/admin/release', { method: 'POST', headers, body });
    assert.equal((await release({}, '{"name":"alice"}')).status, 401);
    assert.equal(users.length, 1, 'nothing changed without the token');
    assert.equal((await release(auth, 'not json')).status, 400);
    assert.equal((await release(auth, '{}')).status, 400);
    assert.equal((await release(auth, JSON.stringify({ name: 'x'.repeat(5000) }))).status, 413);
    assert.equal((await release(auth, '{"name":"nobody"}')).status, 404);
    const listed = await get('/api/admin/users', { headers: auth });
    assert.deepEqual(
      ((await listed.json()) as { users: AdminUser[] }).users.map((u) => u.name),
      ['alice'],
    );
    assert.equal((await release(auth, '{"name":"alice"}')).status, 200);
    assert.equal(users.length, 0);
  });

  it('administration is off without a token file, and a daemon without it has none', async () => {
    const r = await get('/api/admin/users', { headers: { authorization: `Bearer ${TOKEN}` } }, open.url);
    assert.equal(r.status, 401);
    assert.match(((await r.json()) as { error: string }).error, /administration is off/);
    assert.equal((await get('/metrics', {}, open.url)).status, 404, 'no metrics registry given');
  });
});
