/**
 * One side of bench/sip-path.ts: the registrar/redirect server of one checkout (the directory given as the first
 * argument) built as `secp2psip registrar` builds it (transport stack, admission control, element with a deferred
 * 100 Trying, registrar, redirect server), fed datagrams in process through the transport's `inject` (the path a
 * datagram from the socket takes, from parsing on) with its sends captured by a detour instead of the socket.
 * On each message from the parent it runs a batch at the given rate and reports its CPU time (user + system) and
 * the transactions answered.
 */
import { join } from 'node:path';
import { pathToFileURL } from 'node:url';

type Msg = { scenario: 'register' | 'invite-302'; n: number; rate: number };

const root = process.argv[2];
const load = (p: string) => import(pathToFileURL(join(root, p)).href);
const { TransportStack } = await load('src/sip/transport-stack.ts');
const { SipElement } = await load('src/sip/element.ts');
const { AdmissionControl } = await load('src/sip/admission.ts');
const { Registrar } = await load('src/sip/registrar.ts');
const { RedirectServer } = await load('src/sip/redirect-server.ts');
const { SystemClock } = await load('src/util/clock.ts');

const clock = new SystemClock();
const transport = await TransportStack.listen({ host: '127.0.0.1', port: 0 });
const admission = new AdmissionControl({ clock, busyMs: () => performance.eventLoopUtilization().active });
const element = new SipElement({ transport, clock }, { tryingDelayMs: 200, admission });
const registrar = new Registrar({ clock });
new RedirectServer({ element, registrar });

const USERS = 1000;
const PHONE = { transport: 'UDP', address: '127.0.0.1', port: 5061 };
let answered = 0;
let last = '';
transport.setDetour({
  owns: () => true,
  send: (buf: Buffer) => {
    answered++;
    last = buf.toString('latin1');
  },
});

let seq = 0;
const branch = (): string => `z9hG4bK-${process.pid}-${++seq}`;

function register(i: number): Buffer {
  const u = `user${i % USERS}`;
  return Buffer.from(
    `REGISTER sip:127.0.0.1:5060 SIP/2.0\r\nVia: SIP/2.0/UDP 127.0.0.1:5061;branch=${branch()};rport\r\n` +
      `From: <sip:${u}@127.0.0.1>;tag=${seq}SIPpTag00${i}\r\nTo: <sip:${u}@127.0.0.1>\r\n` +
      `Call-ID: ${i}-${process.pid}@127.0.0.1\r\nCSeq: 1 REGISTER\r\nContact: <sip:${u}@127.0.0.1:5061>\r\n` +
      'Max-Forwards: 70\r\nExpires: 300\r\nContent-Length: 0\r\n\r\n',
  );
}

function invite(i: number, b: string, ack: boolean, toTag = ''): Buffer {
  const u = `user${i % USERS}`;
  const method = ack ? 'ACK' : 'INVITE';
  const sdp = ack
    ? ''
    : 'v=0\r\no=user1 53655765 2353687637 IN IP4 127.0.0.1\r\ns=-\r\nc=IN IP4 127.0.0.1\r\nt=0 0\r\nm=audio 6000 RTP/AVP 0\r\n';
  return Buffer.from(
    `${method} sip:${u}@127.0.0.1:5060 SIP/2.0\r\nVia: SIP/2.0/UDP 127.0.0.1:5061;branch=${b};rport\r\n` +
      `From: sipp <sip:sipp@127.0.0.1:5061>;tag=${i}SIPpTag00\r\nTo: <sip:${u}@127.0.0.1>${toTag}\r\n` +
      `Call-ID: inv${i}-${process.pid}@127.0.0.1\r\nCSeq: 1 ${method}\r\nContact: <sip:sipp@127.0.0.1:5061>\r\n` +
      `Max-Forwards: 70\r\nSubject: Performance Test\r\n${ack ? '' : 'Content-Type: application/sdp\r\n'}` +
      `Content-Length: ${sdp.length}\r\n\r\n${sdp}`,
  );
}

// Every user registered once, so that each INVITE finds a binding.
for (let i = 0; i < USERS; i++) transport.inject(register(i), PHONE);

let call = 0;
/** One batch, spread over event-loop turns of 20 requests as datagrams arrive at a busy socket. */
async function batch({ scenario, n, rate }: Msg): Promise<{ cpuUs: number; answered: number }> {
  // The requests are written before the clock starts; an ACK (it needs the To tag of the 302) is two pieces joined.
  const first = call;
  const branches = Array.from({ length: n }, branch);
  const requests = branches.map((b, k) =>
    scenario === 'register' ? register(first + k) : invite(first + k, b, false),
  );
  const acks =
    scenario === 'register'
      ? []
      : branches.map((b, k) =>
          invite(first + k, b, true, '\u0000')
            .toString('latin1')
            .split('\u0000'),
        );
  call += n;
  const before = answered;
  const t0 = process.cpuUsage();
  const start = performance.now();
  for (let done = 0; done < n; ) {
    for (let k = 0; k < 20 && done < n; k++, done++) {
      transport.inject(requests[done], PHONE);
      if (scenario === 'invite-302') {
        const at = last.indexOf(';tag=', last.indexOf('\r\nTo:'));
        const tag = last.slice(at, last.indexOf('\r\n', at));
        transport.inject(Buffer.from(acks[done][0] + tag + acks[done][1], 'latin1'), PHONE);
      }
    }
    // Paced at the offered rate, so that the tables of completed transactions hold what they hold in service.
    const due = start + (done / rate) * 1000;
    const now = performance.now();
    await new Promise((r) => (due > now ? setTimeout(r, due - now) : setImmediate(r)));
  }
  const t = process.cpuUsage(t0);
  return { cpuUs: t.user + t.system, answered: answered - before };
}

process.on('message', async (m: Msg | 'exit') => {
  if (m === 'exit') {
    await transport.close();
    process.exit(0);
  }
  process.send?.(await batch(m));
});
process.send?.('ready');
