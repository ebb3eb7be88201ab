import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { createSocket, type Socket } from 'node:dgram';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import WebSocket from 'ws';
import { getHeader, getHeaders, type SipMessage, type SipRequest } from '../../src/sip/message.ts';
import { parseMessage } from '../../src/sip/parser.ts';
import { buildResponse } from '../../src/sip/response.ts';
import { serialize } from '../../src/sip/serializer.ts';
import { type AdapterProc, type BootstrapProc, eventually, startAdapterProc, startBootstrapProc } from './procs.ts';

/**
 * Who is calling, as the callee's adapter tells a browser phone (X-Secp2psip-Verified, phone-flows.ts), cannot
 * be forged by the caller: mallory, a phone on another adapter, puts the header naming alice on her INVITE and
 * then also a From naming alice. Bob's phone, on a WebSocket (RFC 7118) and reached only over it, gets the
 * INVITE with one header naming mallory, the user the ring verified, and none when the From lies.
 */
const hex = (n: number) => randomBytes(n).toString('hex');

function request(lines: string[], body = ''): string {
  return [...lines, `Content-Length: ${Buffer.byteLength(body)}`, '', body].join('\r\n');
}

class UdpPhone {
  private waiters: Array<(m: SipMessage) => boolean> = [];
  private constructor(
    readonly sock: Socket,
    readonly port: number,
  ) {
    sock.on('message', (buf) => {
      const m = parseMessage(buf);
      if (m.ok) this.waiters = this.waiters.filter((w) => !w(m.value));
    });
  }

  static async open(): Promise<UdpPhone> {
    const s = createSocket('udp4');
    await new Promise<void>((r) => s.bind(0, '127.0.0.1', () => r()));
    return new UdpPhone(s, s.address().port);
  }

  /** Send and wait for the final response to this Call-ID. */
  send(text: string, port: number, callId: string): Promise<SipMessage> {
    const done = new Promise<SipMessage>((resolve, reject) => {
      const t = setTimeout(() => reject(new Error('no final response')), 20_000);
      this.waiters.push((m) => {
        if (m.kind !== 'response' || m.status < 200 || getHeader(m, 'Call-ID') !== callId) return false;
        clearTimeout(t);
        resolve(m);
        return true;
      });
    });
    this.sock.send(Buffer.from(text), port, '127.0.0.1');
    return done;
  }

  invite(uri: string, port: number, from: string, extra: string[]): Promise<SipMessage> {
    const callId = `${hex(6)}@mallory`;
    return this.send(
      request([
        `INVITE ${uri} SIP/2.0`,
        `Via: SIP/2.0/UDP 127.0.0.1:${this.port};branch=z9hG4bK${hex(6)};rport`,
        'Max-Forwards: 70',
        `From: <sip:${from}@127.0.0.1>;tag=${hex(3)}`,
        'To: <sip:bob@127.0.0.1>',
        `Call-ID: ${callId}`,
        'CSeq: 1 INVITE',
        `Contact: <sip:mallory@127.0.0.1:${this.port}>`,
        ...extra,
      ]),
      port,
      callId,
    );
  }
}

describe('the verified-caller header cannot be forged by the caller', { timeout: 120_000 }, () => {
  let base = '';
  let boot: BootstrapProc;
  let A: AdapterProc;
  let B: AdapterProc;
  let mallory: UdpPhone;
  let bob: WebSocket;
  const invites: SipRequest[] = [];

  before(async () => {
    base = mkdtempSync(join(tmpdir(), 'secp2psip-verified-'));
    boot = await startBootstrapProc(join(base, 'boot'));
    A = await startAdapterProc(boot.spec, join(base, 'A'));
    B = await startAdapterProc(boot.spec, join(base, 'B'), '127.0.0.1:0', ['--wss', 'off', '--ws', '127.0.0.1:0']);
    await eventually('ws line', () => /^ws ws:\/\//m.test(B.stdout()), 10_000, B.stdout);
    const wsUrl = /^ws (ws:\/\/\S+)/m.exec(B.stdout())?.[1] ?? '';
    bob = new WebSocket(wsUrl, 'sip');
    await new Promise<void>((resolve, reject) => {
      bob.once('open', () => resolve());
      bob.once('error', reject);
    });
    const registered = new Promise<number>((resolve) => {
      bob.on('message', (d: Buffer) => {
        const m = parseMessage(Buffer.from(d));
        if (!m.ok) return;
        if (m.value.kind === 'response') resolve(m.value.status);
        else if (m.value.method === 'INVITE') {
          invites.push(m.value);
          // Busy: the call ends here, the test only looks at what reached the phone.
          bob.send(serialize(buildResponse(m.value, 486, 'Busy Here', { toTag: hex(3) })).toString());
        }
      });
    });
    bob.send(
      request([
        `REGISTER sip:127.0.0.1 SIP/2.0`,
        `Via: SIP/2.0/WS bob.invalid;branch=z9hG4bK${hex(6)}`,
        'Max-Forwards: 70',
        `From: <sip:bob@127.0.0.1>;tag=${hex(3)}`,
        'To: <sip:bob@127.0.0.1>',
        `Call-ID: ${hex(6)}@bob`,
        'CSeq: 1 REGISTER',
        'Contact: <sip:bob@bob.invalid;transport=ws>',
        'Expires: 600',
      ]),
    );
    assert.equal(await registered, 200, 'bob registered over the WebSocket');
    mallory = await UdpPhone.open();
    const reg = await mallory.send(
      request([
        `REGISTER sip:127.0.0.1:${A.sipPort} SIP/2.0`,
        `Via: SIP/2.0/UDP 127.0.0.1:${mallory.port};branch=z9hG4bK${hex(6)};rport`,
        'Max-Forwards: 70',
        `From: <sip:mallory@127.0.0.1>;tag=${hex(3)}`,
        'To: <sip:mallory@127.0.0.1>',
        'Call-ID: mallory-reg@mallory',
        'CSeq: 1 REGISTER',
        `Contact: <sip:mallory@127.0.0.1:${mallory.port}>`,
        'Expires: 600',
      ]),
      A.sipPort,
      'mallory-reg@mallory',
    );
    assert.equal(reg.kind === 'response' && reg.status, 200, 'mallory registered');
  });

  after(async () => {
    bob?.terminate();
    mallory?.sock.close();
    await A?.stop();
    await B?.stop();
    await boot?.stop();
    rmSync(base, { recursive: true, force: true });
  });

  it("a forged header is replaced by the ring's verdict; a forged From gets none", async () => {
    const forged = ['X-Secp2psip-Verified: alice'];
    const first = await mallory.invite(`sip:bob@127.0.0.1:${A.sipPort}`, A.sipPort, 'mallory', forged);
    assert.equal(first.kind === 'response' && first.status, 302);
    const target = /<([^>]+)>/.exec(getHeader(first, 'Contact') ?? '')?.[1] ?? '';
    // bob is reached only over his WebSocket: the 302 names his adapter, not his phone.
    assert.match(target, new RegExp(`@127\\.0\\.0\\.1:${B.sipPort}`));
    const answer = await mallory.invite(target, B.sipPort, 'mallory', forged);
    assert.equal(answer.kind === 'response' && answer.status, 486, 'the INVITE reached bob over his WebSocket');
    assert.deepEqual(getHeaders(invites[0], 'X-Secp2psip-Verified'), ['mallory']);

    const lying = await mallory.invite(target, B.sipPort, 'alice', forged);
    assert.equal(lying.kind === 'response' && lying.status, 486);
    assert.equal(invites.length, 2);
    assert.equal(getHeader(invites[1], 'From')?.includes('alice'), true);
    assert.deepEqual(getHeaders(invites[1], 'X-Secp2psip-Verified'), [], 'no verified caller for a From that lies');
  });
});
