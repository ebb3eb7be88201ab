/**
 * A WhanauSIP node keeps its phone's UDP flow across a restart (it uses the
 * registrar's bindings file, sip/registrar-sqlite.ts): a phone whose Contact
 * only its flow reaches (`ob`, RFC 5626) is called over that flow right after
 * the node restarts on the same port, without registering again, and gets the
 * node's keep-alives again (sip/flow-keepalive.ts).
 */
import assert from 'node:assert/strict';
import { createSocket, type Socket } from 'node:dgram';
import { mkdtempSync, rmSync } from 'node:fs';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, describe, it } from 'node:test';
import { getHeader } from '../../src/sip/message.ts';
import { parseMessage } from '../../src/sip/parser.ts';
import { startCli, stopCli } from './cli-process.ts';
import { sipRequest } from './sip-probe.ts';

/** Whether `port` is free on the loopback for UDP and TCP. */
async function free(port: number): Promise<boolean> {
  const u = createSocket('udp4');
  const udp = await new Promise<boolean>((r) => {
    u.once('error', () => r(false));
    u.bind(port, '127.0.0.1', () => r(true));
  });
  if (udp) await new Promise<void>((r) => u.close(() => r()));
  if (!udp) return false;
  const t = createServer();
  const tcp = await new Promise<boolean>((r) => {
    t.once('error', () => r(false));
    t.listen(port, '127.0.0.1', () => r(true));
  });
  if (tcp) await new Promise<void>((r) => t.close(() => r()));
  return tcp;
}

/** A SIP port free now with the two after it (the node takes them for TLS and WebSocket), at both starts. */
async function freePort(): Promise<number> {
  for (;;) {
    const port = 20_000 + Math.floor(Math.random() * 30_000);
    if ((await free(port)) && (await free(port + 1)) && (await free(port + 2))) return port;
  }
}

/** A phone's UDP socket that records what reaches it and answers every INVITE with 486. */
function phone(): Promise<{ sock: Socket; port: number; got: string[]; keepAlives: () => number }> {
  const sock = createSocket('udp4');
  const got: string[] = [];
  let keepAlives = 0;
  sock.on('message', (buf, from) => {
    const text = buf.toString();
    if (text === '\r\n\r\n') {
      keepAlives++;
      return;
    }
    got.push(text);
    const m = parseMessage(buf);
    if (!m.ok || m.value.kind !== 'request' || m.value.method !== 'INVITE') return;
    const copy = ['Via', 'From', 'To', 'Call-ID', 'CSeq'].flatMap((n) =>
      m.value.headers.filter((h) => h.name.toLowerCase() === n.toLowerCase()).map((h) => `${h.name}: ${h.value}`),
    );
    const to = getHeader(m.value, 'To') ?? '';
    const headers = copy.map((l) => (l.startsWith('To:') && !/;tag=/.test(to) ? `${l};tag=busy` : l));
    sock.send(['SIP/2.0 486 Busy Here', ...headers, 'Content-Length: 0', '', ''].join('\r\n'), from.port, from.address);
  });
  return new Promise((resolve) =>
    sock.bind(0, '127.0.0.1', () => resolve({ sock, port: sock.address().port, got, keepAlives: () => keepAlives })),
  );
}

/** Wait until `got` holds a message matching `re`. */
async function waitFor(got: string[], re: RegExp, ms: number): Promise<string> {
  const end = Date.now() + ms;
  for (;;) {
    const m = got.find((x) => re.test(x));
    if (m) return m;
    if (Date.now() > end) assert.fail(`nothing matching ${re} reached the phone:\n${got.join('\n---\n')}`);
    await new Promise((r) => setTimeout(r, 50));
  }
}

describe('WhanauSIP node restarted with a phone registered over UDP', { timeout: 240_000 }, () => {
  const base = mkdtempSync(join(tmpdir(), 'whanausip-flow-'));
  after(() => rmSync(base, { recursive: true, force: true }));

  it('calls the phone over its restored flow and sends it keep-alives, with no new REGISTER', async () => {
    const sip = await freePort();
    const args = ['--sip', `127.0.0.1:${sip}`, '--dht', '127.0.0.1:0', '--data', join(base, 'n')];
    const first = await startCli('node', [...args, '--setup-period', '3600', '--log-level', 'info']);
    const p = await phone();
    try {
      // Contact on a port where nothing listens, marked `ob`: only the flow (the socket's own port) reaches it.
      const register = [
        `REGISTER sip:127.0.0.1:${sip} SIP/2.0`,
        `Via: SIP/2.0/UDP 127.0.0.1:${p.port};branch=z9hG4bK-flow-reg;rport`,
        'Max-Forwards: 70',
        `From: <${first.uri}>;tag=ph`,
        `To: <${first.uri}>`,
        'Call-ID: flow-restart@phone',
        'CSeq: 1 REGISTER',
        'Contact: <sip:phone@127.0.0.1:9;ob>',
        'Expires: 3600',
        'Content-Length: 0',
        '',
        '',
      ].join('\r\n');
      p.sock.send(register, sip, '127.0.0.1');
      await waitFor(p.got, /^SIP\/2.0 200 /, 10_000);
      assert.equal(await stopCli(first), 0);

      const second = await startCli('node', [...args, '--setup-period', '3600', '--log-level', 'info']);
      try {
        assert.equal(second.sipPort, sip);
        assert.match(second.stderr(), /"restored":1/);
        const invite = await sipRequest(sip, 'INVITE', second.uri, { timeoutMs: 20_000 });
        // The phone's answer came back: the INVITE reached it over the flow, addressed to its Contact.
        assert.equal(invite.status, 486, `${invite.status} ${invite.reason}`);
        assert.match(await waitFor(p.got, /^INVITE /, 1000), /^INVITE sip:phone@127\.0\.0\.1:9;ob SIP\/2\.0/);
        const before = p.keepAlives();
        const end = Date.now() + 30_000;
        while (p.keepAlives() <= before) {
          if (Date.now() > end) assert.fail(`no keep-alive from the restarted node\n${second.stderr().slice(-3000)}`);
          await new Promise((r) => setTimeout(r, 200));
        }
        assert.equal(p.got.filter((m) => m.startsWith('SIP/2.0 200 ')).length, 1, 'one registration only');
      } finally {
        await stopCli(second);
      }
    } finally {
      p.sock.close();
      await stopCli(first);
    }
  });
});
