import { silentLogger, type Logger } from '../util/log.ts';
import { getMaxForwards } from './header-values.ts';
import type { IncomingRequest, SipElement } from './element.ts';
import type { Header } from './message.ts';
import { bindingContact, type Registrar } from './registrar.ts';
import { parseRequestUri } from './uri.ts';

/** Methods this server implements; anything else gets 405 with this list (RFC 3261 8.2.1). */
export const REDIRECT_ALLOW = 'INVITE, ACK, CANCEL, OPTIONS, REGISTER';

/**
 * Registrar plus redirect server (RFC 3261 8.3 and 10.3) on a SipElement: REGISTER updates the location service;
 * an INVITE for a registered address-of-record is answered 302 with its bindings as Contacts, 404 otherwise.
 */
export class RedirectServer {
  private readonly registrar: Registrar;
  private readonly log: Logger;
  readonly stats = { registers: 0, redirects: 0, notFound: 0, rejected: 0 };

  constructor(components: { element: SipElement; registrar: Registrar; logger?: Logger }) {
    this.registrar = components.registrar;
    this.log = components.logger ?? silentLogger;
    components.element.handle({ onRequest: (inc) => this.onRequest(inc) });
  }

  onRequest(inc: IncomingRequest): void {
    const req = inc.request;
    if (this.log.isLevelEnabled('debug'))
      this.log.debug({ method: req.method, uri: req.uri, from: `${inc.source.address}:${inc.source.port}` }, 'request');
    // 16.3 step 3 / 8.2: a request that has run out of hops is refused with 483; OPTIONS may be answered (16.3).
    if (req.method !== 'OPTIONS' && getMaxForwards(req) === 0) {
      this.stats.rejected++;
      inc.respond(483, 'Too Many Hops');
      return;
    }
    switch (req.method) {
      case 'REGISTER':
        this.register(inc);
        return;
      case 'INVITE':
        this.invite(inc);
        return;
      case 'OPTIONS':
        // 11.2: the response to OPTIONS lists the capabilities: Allow, Accept, Supported.
        inc.respond(200, 'OK', {
          headers: [
            { name: 'Allow', value: REDIRECT_ALLOW },
            { name: 'Accept', value: 'application/sdp' },
          ],
        });
        return;
      default:
        // 8.2.1: "If a UAS recognizes but does not support a method ... it MUST generate a 405 (Method Not
        // Allowed) response ... The UAS MUST also add an Allow header field to the 405".
        this.stats.rejected++;
        inc.respond(405, 'Method Not Allowed', { headers: [{ name: 'Allow', value: REDIRECT_ALLOW }] });
    }
  }

  private register(inc: IncomingRequest): void {
    this.stats.registers++;
    const out = this.registrar.register(inc.request);
    inc.respond(out.status, out.reason, { headers: out.headers });
  }

  private invite(inc: IncomingRequest): void {
    const uri = parseRequestUri(inc.request.uri);
    if (!uri.ok) {
      inc.respond(400, `Bad Request: ${uri.error}`);
      return;
    }
    if (uri.value.scheme !== 'sip' && uri.value.scheme !== 'sips') {
      // 8.2.2.1: an unsupported Request-URI scheme gets 416.
      inc.respond(416, 'Unsupported URI Scheme');
      return;
    }
    const bindings = this.registrar.lookup(uri.value);
    if (bindings.length === 0) {
      this.stats.notFound++;
      inc.respond(404, 'Not Found');
      return;
    }
    // 8.3: "the redirect server ... returns ... a 3xx response [with] Contact header fields". 21.3.3: 302 Moved
    // Temporarily; the Contact's expires parameter says how long the address is valid.
    const headers: Header[] = bindings.map((b) => ({ name: 'Contact', value: bindingContact(b) }));
    this.stats.redirects++;
    inc.respond(302, 'Moved Temporarily', { headers });
  }
}
