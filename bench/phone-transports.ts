/**
 * What the phone-facing transports cost: call setup p50 with the caller's phone on UDP, on TLS (RFC 3261 26.2)
 * and on WSS (RFC 7118), in the same run on the same two adapters; and the TLS handshake a phone pays when it
 * registers over a new connection, next to a REGISTER over a connection kept open and over UDP.
 *
 * Call setup is timed two ways. "INVITE to 302" is the seed's measure (seed 000 VI.2) for the phones that
 * follow the 302 themselves (UDP, TLS). "INVITE to 200" runs until the callee's phone (on UDP, answering at
 * once) has answered: a UDP or TLS caller follows the 302 to the callee's phone, while for a browser (WSS) the
 * adapter follows it and relays the answer. Every call rebuilds the callee's key through the ring (no reuse of
 * verified users), as in the seed's figures.
 *
 *   node --import tsx bench/phone-transports.ts [--quick]
 *
 * Writes bench/results/phone-transports.json and prints a table.
 */
import { mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { getHeader } from '../src/sip/message.ts';
import { percentile } from '../src/util/stats.ts';
import { LoopbackOverlay, sipDest } from './lib/loopback-overlay.ts';
import { answeringPhone, type PhoneTransport, StreamPhone } from './lib/stream-phone.ts';

const quick = process.argv.includes('--quick');
const CALLS = quick ? 30 : 200;
const REGISTERS = quick ? 50 : 300;
const TRANSPORTS: PhoneTransport[] = ['UDP', 'TLS', 'WSS'];

const p50 = (xs: number[]) => Number(percentile(xs, 50).toFixed(2));
const p99 = (xs: number[]) => Number(percentile(xs, 99).toFixed(2));

async function main(): Promise<void> {
  const overlay = await LoopbackOverlay.start({ k: 3, n: 5 });
  const secure = { tls: { host: '127.0.0.1', port: 0 }, ws: { host: '127.0.0.1', port: 0, secure: true } };
  const A = await overlay.addAdapter({ secure });
  const B = await overlay.addAdapter();
  await overlay.settle();
  const a = sipDest(A);
  const tlsPort = A.secure?.tls?.port ?? 0;
  const wssPort = A.secure?.ws?.port ?? 0;
  const callee = await answeringPhone(sipDest(B).port, 'callee');
  await callee.registered;
  const phones: Record<PhoneTransport, StreamPhone> = {
    UDP: await StreamPhone.open('UDP', a.port),
    TLS: await StreamPhone.open('TLS', tlsPort),
    WSS: await StreamPhone.open('WSS', wssPort),
  };
  phones.UDP.adapterUdp = a.port;
  const name = (t: PhoneTransport) => `caller-${t.toLowerCase()}`;
  for (const t of TRANSPORTS) {
    const r = await phones[t].register(a.port, name(t));
    if (r.status !== 200) throw new Error(`${t} register: ${r.status} ${r.reason}`);
  }
  await overlay.settle(2);

  const to302: Record<PhoneTransport, number[]> = { UDP: [], TLS: [], WSS: [] };
  const to200: Record<PhoneTransport, number[]> = { UDP: [], TLS: [], WSS: [] };
  for (let i = 0; i < CALLS; i++) {
    for (const t of TRANSPORTS) {
      const p = phones[t];
      const t0 = performance.now();
      let r = await p.invite(a.port, name(t), 'callee');
      if (r.status === 302) {
        to302[t].push(performance.now() - t0);
        const uri = /<([^>]+)>/.exec(getHeader(r, 'Contact') ?? '')?.[1] ?? '';
        const port = Number(/:(\d+)(?:[;>]|$)/.exec(uri)?.[1]);
        // A phone on a connection follows a 302 that names its adapter over that connection (RFC 5923 reuse).
        const overTls = /;transport=tls/i.test(uri);
        r = await p.invite(a.port, name(t), 'callee', { uri, udpPort: overTls ? undefined : port });
      }
      if (r.status !== 200) throw new Error(`${t}: call ${i} got ${r.status} ${r.reason}`);
      to200[t].push(performance.now() - t0);
    }
  }

  // TLS handshake per registration: a new connection for each REGISTER (a phone that does not keep its
  // connection), the same REGISTER over the kept connection, and over UDP.
  const handshake: number[] = [];
  const newConn: number[] = [];
  const kept: number[] = [];
  const udp: number[] = [];
  for (let i = 0; i < REGISTERS; i++) {
    let t0 = performance.now();
    await phones.TLS.connectTls(tlsPort);
    handshake.push(performance.now() - t0);
    await phones.TLS.register(a.port, name('TLS'));
    newConn.push(performance.now() - t0);
    t0 = performance.now();
    await phones.TLS.register(a.port, name('TLS'));
    kept.push(performance.now() - t0);
    t0 = performance.now();
    await phones.UDP.register(a.port, name('UDP'));
    udp.push(performance.now() - t0);
  }

  const calls = TRANSPORTS.map((t) => ({
    transport: t,
    calls: to200[t].length,
    inviteTo302MsP50: to302[t].length ? p50(to302[t]) : null,
    inviteTo302MsP99: to302[t].length ? p99(to302[t]) : null,
    inviteTo200MsP50: p50(to200[t]),
    inviteTo200MsP99: p99(to200[t]),
  }));
  const registration = {
    registers: REGISTERS,
    tlsHandshakeMsP50: p50(handshake),
    registerNewTlsConnectionMsP50: p50(newConn),
    registerKeptTlsConnectionMsP50: p50(kept),
    registerUdpMsP50: p50(udp),
  };
  const result = { quick, date: new Date().toISOString(), calls, registration };
  mkdirSync(join('bench', 'results'), { recursive: true });
  writeFileSync(join('bench', 'results', 'phone-transports.json'), `${JSON.stringify(result, null, 1)}\n`);
  const ms = (v: number | null) => (v === null ? '-' : `${v} ms`);
  process.stdout.write(
    '| caller phone on | calls | INVITE to 302 p50 | p99 | INVITE to 200 p50 | p99 |\n| --- | --- | --- | --- | --- | --- |\n',
  );
  for (const c of calls)
    process.stdout.write(
      `| ${c.transport} | ${c.calls} | ${ms(c.inviteTo302MsP50)} | ${ms(c.inviteTo302MsP99)} | ${ms(c.inviteTo200MsP50)} | ${ms(c.inviteTo200MsP99)} |\n`,
    );
  process.stdout.write(
    `\n| REGISTER (${REGISTERS}) | p50 |\n| --- | --- |\n| TLS handshake alone | ${registration.tlsHandshakeMsP50} ms |\n` +
      `| REGISTER on a new TLS connection (handshake included) | ${registration.registerNewTlsConnectionMsP50} ms |\n` +
      `| REGISTER on a kept TLS connection | ${registration.registerKeptTlsConnectionMsP50} ms |\n` +
      `| REGISTER over UDP | ${registration.registerUdpMsP50} ms |\n`,
  );
  for (const p of Object.values(phones)) p.close();
  callee.sock.close();
  await overlay.close();
}

main().then(
  () => process.exit(0),
  (e) => {
    process.stderr.write(`${(e as Error).stack}\n`);
    process.exit(1);
  },
);
