import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import type { SipMessage, SipResponse } from '../../src/sip/message.ts';
import { ObservedTransport, observeTransport } from '../../src/sip/observed-transport.ts';
import type { InboundMessage, Peer, SipTransport } from '../../src/sip/transport.ts';
import type { CounterName, MetricLabels, Metrics } from '../../src/util/metrics.ts';

class FakeTransport implements SipTransport {
  readonly local = { host: '127.0.0.1', port: 5060 };
  readonly stats = { received: 0, sent: 0 } as SipTransport['stats'];
  readonly sent: SipMessage[] = [];
  handler: ((m: InboundMessage) => void) | undefined;
  send(msg: SipMessage): void {
    this.sent.push(msg);
  }
  sendResponse(resp: SipResponse): void {
    this.sent.push(resp);
  }
  onMessage(h: (m: InboundMessage) => void): void {
    this.handler = h;
  }
  async close(): Promise<void> {}
}

class Counts implements Metrics {
  readonly seen: Array<[CounterName, MetricLabels]> = [];
  count(name: CounterName, labels: MetricLabels = {}): void {
    this.seen.push([name, labels]);
  }
  observe(): void {}
}

const peer: Peer = { transport: 'UDP', address: '127.0.0.1', port: 5070 };
const request = (method: string): SipMessage => ({
  kind: 'request',
  method,
  uri: 'sip:bob@127.0.0.1',
  version: 'SIP/2.0',
  headers: [{ name: 'CSeq', value: `1 ${method}` }],
  body: new Uint8Array(0),
});
const response = (status: number, method: string): SipResponse => ({
  kind: 'response',
  status,
  reason: 'x',
  version: 'SIP/2.0',
  headers: [{ name: 'CSeq', value: `1 ${method}` }],
  body: new Uint8Array(0),
});

describe('ObservedTransport', () => {
  it('counts requests by method and responses by CSeq method and status, both ways, and passes all on', () => {
    const inner = new FakeTransport();
    const m = new Counts();
    const t = new ObservedTransport(inner, m);
    const got: InboundMessage[] = [];
    t.onMessage((x) => got.push(x));
    inner.handler?.({ msg: request('INVITE'), source: peer });
    inner.handler?.({ msg: response(180, 'INVITE'), source: peer });
    t.sendResponse(response(302, 'INVITE'), peer);
    t.send(request('ACK'), peer);
    assert.equal(got.length, 2);
    assert.equal(inner.sent.length, 2);
    assert.deepEqual(m.seen, [
      ['sip_requests_total', { direction: 'in', method: 'INVITE' }],
      ['sip_responses_total', { direction: 'in', method: 'INVITE', status: '180' }],
      ['sip_responses_total', { direction: 'out', method: 'INVITE', status: '302' }],
      ['sip_requests_total', { direction: 'out', method: 'ACK' }],
    ]);
    assert.equal(t.local.port, 5060);
  });

  it('folds unknown methods into one label value, so a peer cannot grow the series', () => {
    const inner = new FakeTransport();
    const m = new Counts();
    const t = new ObservedTransport(inner, m);
    t.onMessage(() => {});
    inner.handler?.({ msg: request('XFOO123'), source: peer });
    inner.handler?.({ msg: response(200, 'XBAR'), source: peer });
    assert.deepEqual(
      m.seen.map(([, l]) => l.method),
      ['other', 'other'],
    );
  });

  it('is not there at all without metrics', () => {
    const inner = new FakeTransport();
    assert.equal(observeTransport(inner, undefined), inner);
    assert.ok(observeTransport(inner, new Counts()) instanceof ObservedTransport);
  });
});
