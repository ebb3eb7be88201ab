import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { RegisteredPhones } from '../../src/secp2psip/local-phones.ts';
import { parseMessage } from '../../src/sip/parser.ts';
import { Registrar } from '../../src/sip/registrar.ts';
import { SimClock } from '../../src/util/clock.ts';

function register(user: string, contact: string, expires = 3600, seq = 1) {
  const text =
    'REGISTER sip:adapter.test SIP/2.0\r\n' +
    'Via: SIP/2.0/UDP 10.0.0.1:5070;branch=z9hG4bK-1\r\n' +
    `From: <sip:${user}@adapter.test>;tag=1\r\n` +
    `To: <sip:${user}@adapter.test>\r\n` +
    `Call-ID: reg-${user}\r\n` +
    `CSeq: ${seq} REGISTER\r\n` +
    `Contact: <${contact}>;q=0.5\r\n` +
    `Expires: ${expires}\r\n` +
    'Content-Length: 0\r\n\r\n';
  const p = parseMessage(new TextEncoder().encode(text));
  assert.ok(p.ok && p.value.kind === 'request');
  return p.value;
}

describe('the phones registered at an adapter (RegisteredPhones)', () => {
  it("answers with a user's registered contacts, keeping only the phone's q (RFC 3261 20.10), and nothing for others", () => {
    const clock = new SimClock();
    const phones = new RegisteredPhones(new Registrar({ clock }, { minExpires: 10 }));
    assert.deepEqual(phones.contactsOf('bob'), []);
    assert.equal(phones.register('bob', 'adapter.test', register('bob', 'sip:bob@10.0.0.2:5080')).status, 200);
    assert.deepEqual(phones.contactsOf('bob'), ['<sip:bob@10.0.0.2:5080>;q=0.5']);
    assert.deepEqual(phones.contactsOf('alice'), []);
  });

  it('forgets a binding when it expires, and a user it drops', () => {
    const clock = new SimClock();
    const phones = new RegisteredPhones(new Registrar({ clock }, { minExpires: 10 }));
    phones.register('bob', 'adapter.test', register('bob', 'sip:bob@10.0.0.2:5080', 60));
    phones.register('carol', 'adapter.test', register('carol', 'sip:carol@10.0.0.3:5080'));
    clock.advance(61_000);
    assert.deepEqual(phones.contactsOf('bob'), []);
    phones.drop('carol', ['sip:carol@adapter.test']);
    assert.deepEqual(phones.contactsOf('carol'), []);
    assert.deepEqual(phones.registrar.addressesOfRecord(), []);
  });

  it('a refused REGISTER binds nothing', () => {
    const phones = new RegisteredPhones(new Registrar({ clock: new SimClock() }, { minExpires: 10 }));
    assert.equal(phones.register('bob', 'adapter.test', register('bob', 'sip:bob@10.0.0.2:5080', 5)).status, 423);
    assert.deepEqual(phones.contactsOf('bob'), []);
  });

  it('after a restart, answers for a user with the bindings the registrar got back', () => {
    const clock = new SimClock();
    const registrar = new Registrar({ clock }, { minExpires: 10 });
    registrar.register(register('dave', 'sip:dave@10.0.0.4:5080'));
    const phones = new RegisteredPhones(registrar);
    assert.deepEqual(phones.contactsOf('dave'), []);
    phones.restore('dave', 'sip:dave@adapter.test');
    assert.deepEqual(phones.contactsOf('dave'), ['<sip:dave@10.0.0.4:5080>;q=0.5']);
  });
});
