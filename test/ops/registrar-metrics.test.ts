import assert from 'node:assert/strict';
import { after, describe, it } from 'node:test';
import { eventually } from '../secp2psip/procs.ts';
import { SipClient } from '../support/sip-client.ts';
import { type Daemon, getJson, metricValue, printedUrl, scrape, spawnDaemon } from './ops-procs.ts';

/** The standalone registrar as a process with --metrics: its counters move with a REGISTER. */
describe('secp2psip registrar --metrics', { timeout: 60_000 }, () => {
  let reg: Daemon | undefined;
  let phone: SipClient | undefined;
  after(async () => {
    phone?.close();
    await reg?.stop();
  });

  it('serves health and metrics that count the registration', async () => {
    reg = spawnDaemon(['registrar', '--listen', '127.0.0.1:0', '--metrics', '127.0.0.1:0', '--log-level', 'info']);
    const metrics = await printedUrl(() => reg?.stdout() ?? '', 'metrics');
    await eventually('registrar listening', () => /registrar listening on/.test(reg?.stderr() ?? ''), 30_000);
    const port = Number(/"listen":"127\.0\.0\.1:(\d+)"/.exec(reg.stderr())?.[1]);
    assert.ok(port > 0);
    assert.equal((await getJson(new URL('/readyz', metrics).href)).status, 200);
    phone = await SipClient.open(port);
    const aor = `sip:carol@127.0.0.1:${port}`;
    const r = await phone.request({
      method: 'REGISTER',
      uri: `sip:127.0.0.1:${port}`,
      from: aor,
      to: aor,
      contact: `<sip:carol@127.0.0.1:${phone.port}>`,
      expires: 600,
    });
    assert.equal(r.status, 200);
    const m = await scrape(metrics);
    assert.equal(metricValue(m, 'sip_requests_total', { direction: 'in', method: 'REGISTER', role: 'registrar' }), 1);
    assert.equal(metricValue(m, 'sip_responses_total', { direction: 'out', method: 'REGISTER', status: '200' }), 1);
    assert.equal(metricValue(m, 'sip_registrar_bindings'), 1);
    assert.equal(metricValue(m, 'sip_transactions_in_flight', { side: 'client' }), 0);
  });
});
