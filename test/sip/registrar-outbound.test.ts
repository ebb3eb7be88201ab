import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { bindingKey, Registrar, type StoredBinding } from '../../src/sip/registrar.ts';
import type { Peer } from '../../src/sip/transport.ts';
import { parseUri } from '../../src/sip/uri.ts';
import { SimClock } from '../../src/util/clock.ts';
import { req } from './helpers.ts';

const BOB = (() => {
  const u = parseUri('sip:bob@example.com');
  if (!u.ok) throw new Error('uri');
  return u.value;
})();

const INSTANCE = '"<urn:uuid:00000000-0000-1000-8000-000a95a0e128>"';
/** What an RFC 5626 UA writes: one Contact URI for every flow (here a `.invalid` host), told apart by reg-id. */
const contact = (regId: number | undefined, instance: string | undefined = INSTANCE) =>
  `<sip:bob@kzlx.invalid;transport=tcp;ob>${instance ? `;+sip.instance=${instance}` : ''}${regId ? `;reg-id=${regId}` : ''}`;

const flow = (connId: number): Peer => ({
  transport: 'TCP',
  address: '192.0.2.7',
  port: 40000 + connId,
  connId,
  connectionOnly: true,
});

function register(r: Registrar, value: string, over: Peer, cseq: number, expires = 600) {
  return r.register(
    req('REGISTER', {
      cseq,
      callId: `reg-${over.connId}`,
      extra: [
        { name: 'Contact', value },
        { name: 'Expires', value: String(expires) },
      ],
    }),
    over,
  );
}

describe('Registrar: RFC 5626 bindings by instance and reg-id', () => {
  it('keeps one binding per (instance, reg-id): two flows of one instance coexist, with Require: outbound', () => {
    const r = new Registrar({ clock: new SimClock() }, { minExpires: 10 });
    assert.equal(register(r, contact(1), flow(1), 1).status, 200);
    const out = register(r, contact(2), flow(2), 1);
    assert.equal(out.status, 200);
    assert.equal(out.headers.filter((h) => h.name === 'Contact').length, 2);
    assert.deepEqual(
      out.headers.filter((h) => h.name === 'Require').map((h) => h.value),
      ['outbound'],
    );
    assert.deepEqual(
      r.lookup(BOB).map((b) => b.flow?.connId),
      [1, 2],
    );
  });

  it('a REGISTER of the same instance and reg-id over a new connection replaces that flow only', () => {
    const r = new Registrar({ clock: new SimClock() }, { minExpires: 10 });
    register(r, contact(1), flow(1), 1);
    register(r, contact(2), flow(2), 1);
    // The UA lost connection 1 and registered reg-id 1 again over connection 3 (a new Call-ID, RFC 5626 4.2).
    assert.equal(register(r, contact(1), flow(3), 1).status, 200);
    assert.deepEqual(
      r.lookup(BOB).map((b) => b.flow?.connId),
      [3, 2],
    );
    // Removing one flow (expires 0) leaves the other.
    assert.equal(register(r, contact(2), flow(2), 2, 0).status, 200);
    assert.deepEqual(
      r.lookup(BOB).map((b) => b.flow?.connId),
      [3],
    );
  });

  it('without an instance the reg-id is ignored: the contact URI is the binding, the latest flow wins', () => {
    const r = new Registrar({ clock: new SimClock() }, { minExpires: 10 });
    register(r, contact(1, ''), flow(1), 1);
    const out = register(r, contact(2, ''), flow(2), 1);
    assert.equal(out.headers.filter((h) => h.name === 'Require').length, 0);
    assert.deepEqual(
      r.lookup(BOB).map((b) => b.flow?.connId),
      [2],
    );
    // And a contact without reg-id never takes the place of an instance's flow.
    const r2 = new Registrar({ clock: new SimClock() }, { minExpires: 10 });
    register(r2, contact(1), flow(1), 1);
    register(r2, contact(undefined), flow(2), 1);
    assert.equal(r2.lookup(BOB).length, 2);
  });

  it('bindings by instance and reg-id survive a restart under the same key', () => {
    const rows: StoredBinding[] = [];
    const store = {
      put: (b: StoredBinding) => {
        const i = rows.findIndex((x) => x.aor === b.aor && x.key === b.key);
        if (i >= 0) rows[i] = b;
        else rows.push(b);
      },
      remove: (aor: string, key: string) => {
        const i = rows.findIndex((x) => x.aor === aor && x.key === key);
        if (i >= 0) rows.splice(i, 1);
      },
      removeAor: () => {},
    };
    const r = new Registrar({ clock: new SimClock(), store }, { minExpires: 10 });
    register(r, contact(1), flow(1), 1);
    register(r, contact(2), flow(2), 1);
    assert.equal(rows.length, 2);
    const again = new Registrar({ clock: new SimClock() }, { minExpires: 10 });
    const report = again.restore(rows);
    assert.deepEqual(report, { restored: 2, expired: 0, skipped: [] });
    const c = again.lookup(BOB)[0].contact;
    assert.equal(bindingKey(c), rows[0].key);
  });
});
