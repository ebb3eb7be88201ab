import { silentLogger, type Logger } from '../util/log.ts';
import type { IncomingRequest, SipElement } from './element.ts';
import { SipFrontDoor } from './front-door.ts';
import type { Header } from './message.ts';
import { bindingContact, type Registrar } from './registrar.ts';
import { parseRequestUri } from './uri.ts';

/**
 * Registrar plus redirect server (RFC 3261 8.3 and 10.3) behind the shared UAS front door (front-door.ts):
 * REGISTER updates the location service; an INVITE for a registered address-of-record is answered 302 with its
 * bindings as Contacts, 404 otherwise.
 */
export class RedirectServer {
  readonly door: SipFrontDoor;
  private readonly registrar: Registrar;
  private readonly log: Logger;
  readonly stats = { registers: 0, redirects: 0, notFound: 0 };

  constructor(components: { element: SipElement; registrar: Registrar; logger?: Logger }) {
    this.registrar = components.registrar;
    this.log = components.logger ?? silentLogger;
    this.door = new SipFrontDoor({
      element: components.element,
      logger: this.log,
      user: { methods: { REGISTER: (inc) => this.register(inc), INVITE: (inc) => this.invite(inc) } },
    });
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
