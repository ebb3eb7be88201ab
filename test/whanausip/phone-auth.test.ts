import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { defaultParams } from '../../src/dht/whanau/params.ts';
import { getHeader, getHeaders } from '../../src/sip/message.ts';
import { PhoneCredentials } from '../../src/sip/phone-credentials.ts';
import { type RunningWhanauSip, startWhanauSip } from '../../src/whanausip/daemon.ts';
import { SipClient } from '../support/sip-client.ts';

/**
 * Issue 16 item 2 for WhanauSIP: a node's phone authenticates (401, digest) before its REGISTER changes the
 * contact the node publishes; a stranger can neither register as the node nor remove its phone's binding.
 */
describe('WhanauSIP node: phone authentication', { timeout: 60_000 }, () => {
  const params = defaultParams(6, { periodMs: 3600_000 });
  let node: RunningWhanauSip;
  let empty: RunningWhanauSip;
  const clients: SipClient[] = [];
  const start = (phoneUsers: PhoneCredentials) =>
    startWhanauSip({
      role: 'node',
      sipHost: '127.0.0.1',
      sipPort: 0,
      dhtHost: '127.0.0.1',
      dhtPort: 0,
      params,
      schedule: false,
      phoneUsers,
    });
  const client = async (r: RunningWhanauSip) => {
    const c = await SipClient.open(r.sip.element.transport.local.port);
    clients.push(c);
    return c;
  };
  const register = (r: RunningWhanauSip, c: SipClient, o: { contact?: string; expires?: number } = {}) => ({
    method: 'REGISTER',
    uri: `sip:${r.sip.element.hostport}`,
    from: r.uri,
    to: r.uri,
    contact: o.contact ?? `<sip:${r.daemon.hash}@127.0.0.1:${c.port}>`,
    expires: o.expires ?? 600,
  });

  before(async () => {
    node = await start(PhoneCredentials.inMemory({ phone: 'phone-password' }));
    empty = await start(PhoneCredentials.inMemory({}));
  });

  after(async () => {
    for (const c of clients) c.close();
    await node?.close();
    await empty?.close();
  });

  it("a stranger's REGISTER is challenged and changes nothing; the phone's is accepted", async () => {
    const stranger = await client(node);
    const r = await stranger.request(register(node, stranger));
    assert.equal(r.status, 401);
    assert.match(getHeaders(r, 'WWW-Authenticate')[0], /algorithm=SHA-256/);
    const wrong = await stranger.withDigest(register(node, stranger), 'phone', 'not-the-password');
    assert.equal(wrong.final.status, 401);
    assert.equal(node.sip.currentContact(), node.uri, 'the record still points at the node');
    const phone = await client(node);
    const ok = await phone.withDigest(register(node, phone), 'phone', 'phone-password');
    assert.equal(ok.final.status, 200);
    assert.match(node.sip.currentContact(), new RegExp(`:${phone.port}`));
    const star = await stranger.request(register(node, stranger, { contact: '*', expires: 0 }));
    assert.equal(star.status, 401);
    assert.match(node.sip.currentContact(), new RegExp(`:${phone.port}`));
    assert.equal(getHeader(star, 'Contact'), undefined);
  });

  it('a node without phone users refuses every REGISTER, naming the fix', async () => {
    const c = await client(empty);
    const r = await c.request(register(empty, c));
    assert.equal(r.status, 403);
    assert.match(r.reason, /--add-user/);
  });
});
