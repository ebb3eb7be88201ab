import assert from 'node:assert/strict';
import { request } from 'node:http';
import { after, before, describe, it } from 'node:test';
import { phonePage } from '../../src/phone/phone-page.ts';
import { WsEndpoint } from '../../src/sip/transport-ws.ts';

/** The browser phone served on the WebSocket port: the page, its bundled script (JsSIP inside), nothing else. */
function fetch(port: number, path: string, method = 'GET') {
  return new Promise<{ status?: number; headers: Record<string, unknown>; body: string }>((resolve, reject) => {
    const req = request({ host: '127.0.0.1', port, path, method }, (res) => {
      let body = '';
      res.on('data', (d: Buffer) => (body += d.toString()));
      res.on('end', () => resolve({ status: res.statusCode, headers: res.headers, body }));
    });
    req.on('error', reject);
    req.end();
  });
}

describe('the browser phone page', () => {
  let ep: WsEndpoint;
  before(async () => {
    ep = await WsEndpoint.listen({ host: '127.0.0.1', port: 0, onHttp: await phonePage() });
  });
  after(() => ep.close());

  it('serves /phone and a self-contained /phone.js with a strict content security policy', async () => {
    const page = await fetch(ep.port, '/phone');
    assert.equal(page.status, 200);
    assert.match(String(page.headers['content-type']), /text\/html/);
    assert.match(page.body, /<script src="\/phone\.js"><\/script>/);
    assert.match(String(page.headers['content-security-policy']), /script-src 'self'/);
    const js = await fetch(ep.port, '/phone.js');
    assert.equal(js.status, 200);
    assert.match(String(js.headers['content-type']), /javascript/);
    assert.match(js.body, /X-Secp2psip-Verified/);
    assert.match(js.body, /JsSIP/);
    assert.doesNotMatch(js.body, /https?:\/\/(cdn|unpkg|jsdelivr)/, 'nothing fetched from elsewhere');
  });

  it('redirects / to /phone, refuses other methods and paths', async () => {
    const root = await fetch(ep.port, '/');
    assert.deepEqual([root.status, root.headers.location], [302, '/phone']);
    assert.equal((await fetch(ep.port, '/phone', 'POST')).status, 405);
    assert.equal((await fetch(ep.port, '/etc/passwd')).status, 404);
    assert.equal((await fetch(ep.port, '/../package.json')).status, 404);
  });
});
