/**
 * The one front door over real UDP, as each server is deployed: the
 * `secp2psip registrar` command in its own process, an adapter daemon (with
 * its bootstrap, TLS ring links) and a WhanauSIP node and gateway. Raw
 * datagrams from a plain socket; the same rows for every server. (The points
 * that need simulated time or registered users are in front-door.test.ts.)
 */
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { createSocket } from 'node:dgram';
import { after, before, describe, it } from 'node:test';
import { defaultParams } from '../../src/dht/whanau/params.ts';
import { getHeader, getHeaders, type SipResponse } from '../../src/sip/message.ts';
import { parseMessage } from '../../src/sip/parser.ts';
import { startWhanauSip } from '../../src/whanausip/daemon.ts';
import { DaemonPair } from '../secp2psip/daemon-pair.ts';
import { type Running, startRegistrar, stop } from './e2e-helpers.ts';

interface Target {
  name: string;
  port: number;
  allow: string;
  /** A user part the server serves. */
  user: string;
}

/** Send one request from a fresh UDP socket; resolve with its final response. */
function udpAsk(
  t: Target,
  method: string,
  o: { uri?: string; maxForwards?: number; toTag?: string; extra?: string[] } = {},
) {
  const sock = createSocket('udp4');
  const callId = `${randomBytes(6).toString('hex')}@front-door-udp`;
  const uri = o.uri ?? `sip:${t.user}@127.0.0.1:${t.port}`;
  return new Promise<SipResponse>((resolve, reject) => {
    const timer = setTimeout(() => {
      sock.close();
      reject(new Error(`${t.name}: no final answer to ${method} ${uri}`));
    }, 20_000);
    sock.on('message', (buf) => {
      const m = parseMessage(buf);
      if (!m.ok || m.value.kind !== 'response' || m.value.status < 200) return;
      if (getHeader(m.value, 'Call-ID') !== callId) return;
      clearTimeout(timer);
      sock.close();
      resolve(m.value);
    });
    sock.bind(0, '127.0.0.1', () => {
      const local = sock.address().port;
      const lines = [
        `${method} ${uri} SIP/2.0`,
        `Via: SIP/2.0/UDP 127.0.0.1:${local};branch=z9hG4bK${randomBytes(6).toString('hex')};rport`,
        `Max-Forwards: ${o.maxForwards ?? 70}`,
        `From: <sip:probe@127.0.0.1:${local}>;tag=${randomBytes(4).toString('hex')}`,
        `To: <sip:${t.user}@127.0.0.1:${t.port}>${o.toTag ? `;tag=${o.toTag}` : ''}`,
        `Call-ID: ${callId}`,
        `CSeq: 1 ${method}`,
        `Contact: <sip:probe@127.0.0.1:${local}>`,
        ...(o.extra ?? []),
        'Content-Length: 0',
        '',
        '',
      ];
      sock.send(lines.join('\r\n'), t.port, '127.0.0.1');
    });
  });
}

describe('one SIP front door over UDP: the deployed servers answer alike', { timeout: 180_000 }, () => {
  const targets: Target[] = [];
  const closers: Array<() => Promise<unknown>> = [];
  let registrar: Running | undefined;

  before(async () => {
    registrar = await startRegistrar();
    targets.push({
      name: 'registrar',
      port: registrar.port,
      allow: 'INVITE, ACK, CANCEL, OPTIONS, REGISTER',
      user: 'bob',
    });
    const pair = await DaemonPair.start('front-door-udp-');
    closers.push(() => pair.close());
    const adapter = await pair.adapter('adapter');
    targets.push({
      name: 'adapter',
      port: Number(adapter.sipAddr.split(':')[1]),
      // Messages (RFC 3428) and presence (RFC 3856, 3903) too.
      allow: 'INVITE, ACK, CANCEL, OPTIONS, REGISTER, MESSAGE, SUBSCRIBE, PUBLISH',
      user: 'bob',
    });
    const params = defaultParams(2, { periodMs: 3600_000 });
    for (const role of ['node', 'gateway'] as const) {
      const w = await startWhanauSip({
        openRegistration: true,
        role,
        sipHost: '127.0.0.1',
        sipPort: 0,
        dhtHost: '127.0.0.1',
        dhtPort: 0,
        params,
        schedule: false,
      });
      closers.push(() => w.close());
      targets.push({
        name: `whanausip ${role}`,
        port: Number(w.sip.element.hostport.split(':')[1]),
        allow:
          role === 'node' ? 'INVITE, ACK, CANCEL, OPTIONS, REGISTER, MESSAGE' : 'INVITE, ACK, CANCEL, OPTIONS, MESSAGE',
        user: w.daemon.hash,
      });
    }
  });

  after(async () => {
    await stop(registrar);
    for (const c of closers.reverse()) await c().catch(() => {});
  });

  const rows: Array<{
    what: string;
    method: string;
    o?: Parameters<typeof udpAsk>[2];
    status: number;
    check?: (r: SipResponse, t: Target) => void;
  }> = [
    { what: 'Max-Forwards: 0', method: 'INVITE', o: { maxForwards: 0 }, status: 483 },
    {
      what: 'OPTIONS, even with Max-Forwards: 0',
      method: 'OPTIONS',
      o: { maxForwards: 0 },
      status: 200,
      check: (r, t) => assert.equal(getHeaders(r, 'Allow').join(', '), t.allow, t.name),
    },
    {
      what: 'unknown Require',
      method: 'INVITE',
      o: { extra: ['Require: foo'] },
      status: 420,
      check: (r, t) => assert.equal(getHeaders(r, 'Unsupported').join(', '), 'foo', t.name),
    },
    { what: 'tel: Request-URI', method: 'INVITE', o: { uri: 'tel:+12015550123' }, status: 416 },
    { what: 'BYE outside a dialog', method: 'BYE', status: 481 },
    { what: 'INFO inside a dialog nobody holds', method: 'INFO', o: { toTag: 'x1' }, status: 481 },
    {
      what: 'a method not handled',
      method: 'REFER',
      status: 405,
      check: (r, t) => assert.equal(getHeaders(r, 'Allow').join(', '), t.allow, t.name),
    },
  ];

  for (const row of rows)
    it(`${row.what}: ${row.status} from every server, with a Server header`, async () => {
      for (const t of targets) {
        const r = await udpAsk(t, row.method, row.o);
        assert.equal(r.status, row.status, `${t.name}: ${r.status} ${r.reason}`);
        assert.match(getHeader(r, 'Server') ?? '', /\S/, `${t.name}: Server header`);
        row.check?.(r, t);
      }
    });
});
