import assert from 'node:assert/strict';
import { get } from 'node:http';
import { after, before, describe, it } from 'node:test';
import WebSocket from 'ws';
import { buildResponse } from '../../src/sip/response.ts';
import { addSecureTransports } from '../../src/sip/secure-transports.ts';
import type { InboundMessage } from '../../src/sip/transport.ts';
import { TransportStack } from '../../src/sip/transport-stack.ts';

/**
 * SIP over WebSocket (RFC 7118) in the transport stack: the `sip` subprotocol is required, each WebSocket message
 * is one SIP message, responses and requests to the phone go back over its connection (never dialled), bad input
 * is answered on that connection, and connections are capped per address.
 */
const REGISTER = [
  'REGISTER sip:127.0.0.1 SIP/2.0',
  'Via: SIP/2.0/WS abc.invalid;branch=z9hG4bK-ws-1',
  'Max-Forwards: 70',
  'From: <sip:alice@127.0.0.1>;tag=1',
  'To: <sip:alice@127.0.0.1>',
  'Call-ID: ws-1@test',
  'CSeq: 1 REGISTER',
  'Contact: <sip:alice@abc.invalid;transport=ws>',
  '',
  '',
].join('\r\n');

function open(url: string, protocol?: string): Promise<WebSocket> {
  const ws = protocol ? new WebSocket(url, protocol) : new WebSocket(url);
  return new Promise((resolve, reject) => {
    ws.once('open', () => resolve(ws));
    ws.once('error', reject);
    ws.once('unexpected-response', (_req, res) => reject(new Error(`HTTP ${res.statusCode}`)));
  });
}

function next(ws: WebSocket): Promise<string> {
  return new Promise((resolve) => ws.once('message', (d: Buffer) => resolve(d.toString())));
}

describe('SIP over WebSocket in the transport stack', () => {
  let stack: TransportStack;
  let url = '';
  const inbound: InboundMessage[] = [];

  before(async () => {
    stack = await TransportStack.listen({ host: '127.0.0.1', port: 0 });
    const opened = await addSecureTransports(stack, {
      ws: { host: '127.0.0.1', port: 0, secure: false },
      certificate: { cert: '', key: '' },
    });
    url = `ws://127.0.0.1:${opened.ws?.port}`;
    stack.onMessage((m) => inbound.push(m));
  });
  after(() => stack.close());

  it('refuses a handshake without the sip subprotocol', async () => {
    await assert.rejects(open(url), /HTTP 400/);
    await assert.rejects(open(url, 'chat'), /HTTP 400/);
  });

  it('takes a request from a WebSocket and answers over the same connection', async () => {
    const ws = await open(url, 'sip');
    assert.equal(ws.protocol, 'sip');
    ws.send(REGISTER);
    await new Promise((r) => setTimeout(r, 200));
    const got = inbound.at(-1);
    assert.ok(got && got.msg.kind === 'request' && got.msg.method === 'REGISTER');
    const req = got.msg;
    assert.equal(got.source.transport, 'WS');
    assert.ok(got.source.connId !== undefined);
    assert.ok(stack.isOpen(got.source));
    const reply = next(ws);
    stack.sendResponse(buildResponse(req, 200, 'OK'), got.source);
    assert.match(await reply, /^SIP\/2\.0 200 OK\r\n/);
    // A body that is not UTF-8 goes in a binary frame, byte for byte (RFC 7118 5.1).
    const binary = new Promise<{ data: Buffer; isBinary: boolean }>((resolve) =>
      ws.once('message', (data: Buffer, isBinary: boolean) => resolve({ data, isBinary })),
    );
    const body = new Uint8Array([0x68, 0xe9, 0x6c, 0x6c, 0x6f]);
    stack.sendResponse(buildResponse(req, 200, 'OK', { body }), got.source);
    const b = await binary;
    assert.equal(b.isBinary, true);
    assert.deepEqual(new Uint8Array(b.data.subarray(b.data.length - body.length)), body);
    // A WebSocket phone is never dialled: once its connection is gone, sends to it fail.
    ws.close();
    await new Promise((r) => setTimeout(r, 200));
    assert.equal(stack.isOpen(got.source), false);
    const failed = await new Promise<Error>((resolve) =>
      stack.send(buildResponse(req, 200, 'OK'), got.source, (e) => resolve(e)),
    );
    assert.match(failed.message, /WebSocket connection of this flow is closed/);
  });

  it('answers a malformed request with 400 on its connection, ignores keep-alives', async () => {
    const ws = await open(url, 'sip');
    ws.send('\r\n\r\n');
    const reply = next(ws);
    ws.send(REGISTER.replace('CSeq: 1 REGISTER', 'CSeq: one REGISTER'));
    assert.match(await reply, /^SIP\/2\.0 400 /);
    ws.close();
  });

  it('answers plain HTTP with 404 when no page is served', async () => {
    const status = await new Promise<number | undefined>((resolve) =>
      get(`${url.replace('ws:', 'http:')}/phone`, (res) => {
        res.resume();
        resolve(res.statusCode);
      }),
    );
    assert.equal(status, 404);
  });
});
