/**
 * What the tests of the registrar's binding store share: URIs, a REGISTER for one contact, and a registrar
 * restored from a store file on a simulated clock.
 */
import { Registrar } from '../../src/sip/registrar.ts';
import { SqliteBindingStore } from '../../src/sip/registrar-sqlite.ts';
import { parseUri } from '../../src/sip/uri.ts';
import { SimClock } from '../../src/util/clock.ts';
import { req } from './helpers.ts';

export function uri(s: string) {
  const u = parseUri(s);
  if (!u.ok) throw new Error(s);
  return u.value;
}

/** A REGISTER of `contact` for `to` (To and From alike, as a phone sends it). */
export function reg(to: string, contact: string, expires: number, cseq: number, callId = 'reg-1') {
  const r = req('REGISTER', {
    cseq,
    callId,
    extra: [
      { name: 'Contact', value: contact },
      { name: 'Expires', value: String(expires) },
    ],
  });
  for (const h of r.headers) if (h.name === 'To' || h.name === 'From') h.value = `<${to}>;tag=x`;
  return r;
}

/** A registrar over a store in `file`, restored from it, on a clock `atMs` into the simulated day. */
export function open(file: string, atMs: number) {
  const clock = new SimClock(atMs);
  const store = new SqliteBindingStore(file);
  const loaded = store.load();
  const r = new Registrar({ clock, store }, { minExpires: 10, maxExpires: 3600 });
  const report = r.restore(loaded.rows);
  return { clock, store, r, loaded, report };
}
