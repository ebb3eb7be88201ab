import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { placeCall } from '../../src/secp2psip/call-flow.ts';
import { getHeader } from '../../src/sip/message.ts';
import { phoneInvite, SecTestnet } from './testnet.ts';

describe('SecP2PSIP registration and call setup (in-memory ring)', () => {
  let t: SecTestnet;
  before(async () => {
    t = await SecTestnet.create(6, { k: 3, n: 5 });
  });
  after(() => t.close());

  it('registers users and redirects a call to the callee phone after both sides verify', async () => {
    const [a, b] = t.adapters;
    const alice = await t.settle(a.ensureUser('alice'));
    await t.settle(b.ensureUser('bob'));
    b.contactsOf = (name) => (name === 'bob' ? ['<sip:bob@10.0.0.2:5080>'] : []);
    const req = phoneInvite('alice', 'bob');
    const out = await t.settle(placeCall(a.flow, req, alice, 'bob'));
    assert.ok(out.ok, out.ok ? '' : `${out.status} ${out.reason}`);
    assert.equal(out.response.status, 302);
    assert.equal(getHeader(out.response, 'Contact'), '<sip:bob@10.0.0.2:5080>');
    assert.equal(getHeader(out.response, 'Call-ID'), getHeader(req, 'Call-ID'));
    assert.equal(out.callee.bundle.name, 'bob');
    assert.equal(t.bootstraps[0].registry.count(), 2);
  });
});
