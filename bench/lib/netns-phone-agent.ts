/**
 * Scripted phones inside one host of the test network, driven over
 * stdin/stdout, one JSON object a line (`{"id":1,"op":"register",...}` ->
 * `{"id":1,"ok":true,"result":{...}}`), for bench/cross-host-calls.ts:
 *
 *   register {user, adapter}     a phone for `user` (own UDP port on this host) registers at adapter host:port
 *   probe {from, to, adapter}    INVITE sip:<to>@<adapter> until the final answer (seed 000: INVITE to 302), ms
 *   call {from, to, adapter}     a full call set-up: INVITE, the 302 followed, 200 and ACK; then BYE; ms to the 200
 *
 * Usage: node --import tsx bench/lib/netns-phone-agent.ts <host address>
 */
import { createInterface } from 'node:readline';
import { probeInvite } from '../../src/harness/call-probe.ts';
import { SipElement } from '../../src/sip/element.ts';
import type { Peer } from '../../src/sip/transport.ts';
import { TransportStack } from '../../src/sip/transport-stack.ts';
import { UserAgent } from '../../src/sip/user-agent.ts';
import { SystemClock } from '../../src/util/clock.ts';

const host = process.argv[2] ?? '127.0.0.1';
const clock = new SystemClock();
const phones = new Map<string, UserAgent>();

function peer(hostport: string): Peer {
  const i = hostport.lastIndexOf(':');
  return { transport: 'UDP', address: hostport.slice(0, i), port: Number(hostport.slice(i + 1)) };
}

async function phone(user: string, domain: string): Promise<UserAgent> {
  const had = phones.get(user);
  if (had) return had;
  const transport = await TransportStack.listen({ host, port: 0 });
  const element = new SipElement({ transport, clock });
  const ua = new UserAgent({ element }, { user, domain });
  phones.set(user, ua);
  return ua;
}

async function handle(cmd: Record<string, string>): Promise<unknown> {
  const adapter = peer(cmd.adapter);
  const domain = cmd.adapter;
  if (cmd.op === 'register') {
    const ua = await phone(cmd.user, domain);
    for (let i = 0; ; i++) {
      const r = await ua.register(adapter, 600);
      if (r.status !== 503 || i >= 20) return { status: r.status };
      await new Promise((res) => setTimeout(res, 1000));
    }
  }
  if (cmd.op === 'probe') {
    const ua = await phone(cmd.from, domain);
    return probeInvite(ua.element, { caller: cmd.from, callee: cmd.to, adapter, domain });
  }
  if (cmd.op === 'call') {
    const ua = await phone(cmd.from, domain);
    const t0 = performance.now();
    const call = await ua.invite(`sip:${cmd.to}@${domain}`, adapter);
    const ms = performance.now() - t0;
    const bye = await ua.bye(call);
    return { ms, bye: bye.status, via: call.redirectedTo, routes: call.routes?.length ?? 0 };
  }
  throw new Error(`unknown op ${cmd.op}`);
}

createInterface({ input: process.stdin }).on('line', (line) => {
  let cmd: Record<string, string> & { id: number };
  try {
    cmd = JSON.parse(line);
  } catch {
    return;
  }
  handle(cmd).then(
    (result) => process.stdout.write(`${JSON.stringify({ id: cmd.id, ok: true, result })}\n`),
    (e: unknown) => process.stdout.write(`${JSON.stringify({ id: cmd.id, ok: false, error: String(e) })}\n`),
  );
});
process.stdout.write(`${JSON.stringify({ ready: true })}\n`);
