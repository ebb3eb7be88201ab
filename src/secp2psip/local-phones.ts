/**
 * The phones registered at an adapter, as its callee side needs them: the
 * SIP half registers them (RFC 3261 10.3, adapter.ts), the overlay half
 * reads their contacts for the 302 (callee.ts) through the `LocalPhones`
 * port it was built with, and never reaches into the SIP half.
 */
import { formatNameAddr } from '../sip/header-values.ts';
import type { SipRequest } from '../sip/message.ts';
import type { LiveBinding, RegisterOutcome, Registrar } from '../sip/registrar.ts';
import { parseRequestUri } from '../sip/uri.ts';

export interface LocalPhones {
  /** Contact header values of the user's phones registered here; empty when none is. */
  contactsOf(name: string): string[];
}

/** The registrar's bindings, found by user name (user name -> the address-of-record its phone registered). */
export class RegisteredPhones implements LocalPhones {
  private readonly aors = new Map<string, string>();

  constructor(readonly registrar: Registrar) {}

  /** A REGISTER from `name`'s phone for `sip:name@host`; on 200 its bindings answer for the user. */
  register(name: string, host: string, req: SipRequest): RegisterOutcome {
    const out = this.registrar.register(req);
    if (out.status === 200) this.aors.set(name, `sip:${name}@${host}`);
    return out;
  }

  /** After a restart: answer for `name` with the bindings of `aor` the registrar got back from its store. */
  restore(name: string, aor: string): void {
    this.aors.set(name, aor);
  }

  /** Drop the user and every binding of `aors`. */
  drop(name: string, aors: readonly string[]): void {
    for (const aor of aors) this.registrar.removeAor(aor);
    this.aors.delete(name);
  }

  /** The current bindings of the user's phones (where a MESSAGE or NOTIFY for the user goes). */
  bindingsOf(name: string): LiveBinding[] {
    const aor = this.aors.get(name);
    if (!aor) return [];
    const u = parseRequestUri(aor);
    return u.ok ? this.registrar.lookup(u.value) : [];
  }

  contactsOf(name: string): string[] {
    const aor = this.aors.get(name);
    if (!aor) return [];
    const u = parseRequestUri(aor);
    if (!u.ok) return [];
    // The phone's preference (q, RFC 3261 20.10) goes into the 302; the registrar's own parameters do not.
    return this.registrar
      .lookup(u.value)
      .map((b) => formatNameAddr({ ...b.contact, params: b.contact.params.filter(([n]) => n === 'q') }));
  }
}
