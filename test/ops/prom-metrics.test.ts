import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { callObserver, outcomeLabels } from '../../src/ops/call-metrics.ts';
import { PromMetrics } from '../../src/ops/prom-metrics.ts';
import type { CallRecord } from '../../src/secp2psip/call-record.ts';
import { metricValue } from './ops-procs.ts';

function call(over: Partial<CallRecord>): CallRecord {
  return {
    caller: 'alice',
    callee: 'bob',
    status: 302,
    ms: 12,
    mode: 'signed',
    at: Date.now(),
    callId: 'c1',
    reason: 'Moved Temporarily',
    trace: {},
    badPieces: [],
    badHolders: {},
    ...over,
  };
}

describe('Prometheus metrics of a daemon', () => {
  it('keeps each daemon apart: two registries in one process, process metrics in both', async () => {
    const a = new PromMetrics({ role: 'adapter' });
    const b = new PromMetrics({ role: 'bootstrap' });
    a.count('sip_requests_total', { direction: 'in', method: 'INVITE' });
    a.count('sip_requests_total', { direction: 'in', method: 'INVITE' }, 2);
    const ta = await a.exposition();
    const tb = await b.exposition();
    assert.equal(metricValue(ta, 'sip_requests_total', { method: 'INVITE', role: 'adapter' }), 3);
    assert.equal(metricValue(tb, 'sip_requests_total', { method: 'INVITE' }), undefined);
    assert.ok((metricValue(ta, 'process_cpu_seconds_total') ?? -1) >= 0);
    assert.ok((metricValue(tb, 'process_cpu_seconds_total') ?? -1) >= 0);
    assert.match(a.contentType, /^text\/plain/);
  });

  it('reads state at each scrape', async () => {
    const m = new PromMetrics({}, { processMetrics: false });
    let members = 2;
    const stats = { replayed: 1, stale: 4 };
    m.gauge('ring_members', 'members', () => members);
    m.counterOf(
      'refusals_total',
      'refusals',
      () => [
        [{ reason: 'replayed' }, stats.replayed],
        [{ reason: 'stale' }, stats.stale],
      ],
      ['reason'],
    );
    assert.equal(metricValue(await m.exposition(), 'ring_members'), 2);
    members = 7;
    stats.stale = 9;
    const t = await m.exposition();
    assert.equal(metricValue(t, 'ring_members'), 7);
    assert.equal(metricValue(t, 'refusals_total', { reason: 'stale' }), 9);
    assert.equal(metricValue(t, 'refusals_total', { reason: 'replayed' }), 1);
  });

  it('times calls by mode and outcome, a 403 with its reason class, and counts bad pieces by holder', async () => {
    assert.deepEqual(outcomeLabels(call({})), { outcome: 'verified', reason: '' });
    assert.deepEqual(outcomeLabels(call({ status: 403, code: 'VERIFICATION_FAILED' })), {
      outcome: '403',
      reason: 'verification_failed',
    });
    assert.deepEqual(outcomeLabels(call({ status: 480, code: 'CALLEE_UNREACHABLE' })), { outcome: '480', reason: '' });
    const m = new PromMetrics({}, { processMetrics: false });
    const seen: CallRecord[] = [];
    const observe = callObserver(m, (c) => seen.push(c));
    assert.ok(observe);
    observe(call({ ms: 3 }));
    observe(call({ mode: 'protected', ms: 40, badPieces: [2, 5], badHolders: { 2: 'abcd@127.0.0.1:7001' } }));
    observe(call({ status: 403, code: 'VERIFICATION_FAILED', ms: 9 }));
    observe(call({ status: 408, code: 'TIMEOUT', ms: 5000 }));
    const t = await m.exposition();
    const count = (labels: Record<string, string>) => metricValue(t, 'secp2psip_call_setup_seconds_count', labels);
    assert.equal(count({ mode: 'signed', outcome: 'verified' }), 1);
    assert.equal(count({ mode: 'protected', outcome: 'verified' }), 1);
    assert.equal(count({ mode: 'signed', outcome: '403_verification_failed' }), 1);
    assert.equal(count({ mode: 'signed', outcome: '408' }), 1);
    assert.equal(metricValue(t, 'secp2psip_call_setup_seconds_sum', { outcome: '408' }), 5);
    assert.equal(metricValue(t, 'secp2psip_bad_key_pieces_total', { holder: 'abcd@127.0.0.1:7001' }), 1);
    assert.equal(metricValue(t, 'secp2psip_bad_key_pieces_total', { holder: 'unknown' }), 1);
    assert.equal(seen.length, 4, 'the next observer is told too');
    assert.equal(callObserver(undefined), undefined, 'nothing to do without metrics');
  });
});
