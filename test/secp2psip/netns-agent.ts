/**
 * Phones and a ring observer inside one host of the test network
 * (test/support/testnet.ts), driven by the test over stdin/stdout, one JSON
 * object per line: `{"id":1,"op":"register","user":"ann","adapter":"10.77.0.2:5060"}`
 * -> `{"id":1,"ok":true,"result":{...}}`.
 *
 *   register {user, adapter}      a phone for `user` on this host (own UDP port) registers there
 *   invite {from, to, adapter}    from's phone sends INVITE sip:<to>@<adapter>; the final answer
 *   walk {bootstrap: {addr, key}} follow successor pointers from that bootstrap around the ring
 *   where {keys}                  which members hold each key, and which should (after a walk)
 *
 * The walk asks each member for its neighbours (chord.neighbors, no notify)
 * over an admitted TLS link of its own; it never joins the ring.
 *
 * Usage: node --import tsx netns-agent.ts <host address>
 */
import { createInterface } from 'node:readline';
import { METHOD } from '../../src/dht/chord/messages.ts';
import { keyPosition } from '../../src/dht/store/ring-id.ts';
import { Identity } from '../../src/identity/identity.ts';
import { TlsRpcEndpoint } from '../../src/rpc/tls-endpoint.ts';
import type { NodeRef } from '../../src/rpc/types.ts';
import { requestAdmission } from '../../src/secp2psip/adapter-node.ts';
import { probeInvite } from '../../src/harness/call-probe.ts';
import type { BootstrapInfo } from '../../src/secp2psip/messages.ts';
import { admittedRef } from '../../src/secp2psip/ring-records.ts';
import { SipElement } from '../../src/sip/element.ts';
import { TransportStack } from '../../src/sip/transport-stack.ts';
import type { Peer } from '../../src/sip/transport.ts';
import { UserAgent } from '../../src/sip/user-agent.ts';
import { SystemClock } from '../../src/util/clock.ts';

const host = process.argv[2] ?? '127.0.0.1';
const clock = new SystemClock();
const phones = new Map<string, UserAgent>();
let observer: TlsRpcEndpoint | undefined;
/** Every member a walk met, by ring id. */
const known = new Map<string, NodeRef>();

function peer(hostport: string): Peer {
  const i = hostport.lastIndexOf(':');
  return { transport: 'UDP', address: hostport.slice(0, i), port: Number(hostport.slice(i + 1)) };
}

async function phone(user: string): Promise<UserAgent> {
  const had = phones.get(user);
  if (had) return had;
  const transport = await TransportStack.listen({ host, port: 0 });
  const element = new SipElement({ transport, clock });
  const ua = new UserAgent({ element }, { user, domain: host });
  phones.set(user, ua);
  return ua;
}

function keyOf(hex: string): Uint8Array {
  return new Uint8Array(Buffer.from(hex, 'hex'));
}

/** An admitted endpoint (ring members only answer admitted nodes); admitted once, through `b`. */
async function observerVia(b: BootstrapInfo): Promise<TlsRpcEndpoint> {
  if (observer) return observer;
  const id = Identity.generate();
  const keyPair = { privateKey: id.signingKey, publicKey: id.publicSigningKey };
  const temp = await TlsRpcEndpoint.listen({ host, port: 0, keyPair, clock });
  let admitted: Awaited<ReturnType<typeof requestAdmission>>;
  try {
    admitted = await requestAdmission(temp, b);
  } finally {
    await temp.close();
  }
  observer = await TlsRpcEndpoint.listen({
    host,
    port: 0,
    keyPair,
    self: { id: admitted.nodeId, admission: admitted.admission },
    verifyRef: admittedRef(
      admitted.bootstraps.map((x) => x.key),
      () => clock.wallNow(),
    ),
    clock,
  });
  return observer;
}

interface Hop {
  id: string;
  addr: string;
  succ: string | null;
}

async function walk(b: BootstrapInfo, limit = 64): Promise<{ hops: Hop[]; closed: boolean; error?: string }> {
  const ep = await observerVia(b);
  const hops: Hop[] = [];
  const seen = new Set<string>();
  // The bootstrap's ring id comes with its answer; the link only pins its key.
  let cur: NodeRef = { id: '', addr: b.addr, key: b.key };
  for (let i = 0; i < limit; i++) {
    let raw: { id?: string; succs?: unknown[] };
    try {
      raw = (await ep.request(cur, METHOD.NEIGHBORS, { notify: false }, { timeoutMs: 3000 })) as typeof raw;
    } catch (e) {
      return { hops, closed: false, error: `${cur.addr}: ${(e as Error).message}` };
    }
    const id = raw.id ?? cur.id;
    known.set(id, { ...cur, id });
    const s = (raw.succs?.[0] ?? null) as { id: string; addr: string; key: Uint8Array; admission?: Uint8Array } | null;
    hops.push({ id, addr: cur.addr, succ: s?.id ?? null });
    seen.add(id);
    if (!s) return { hops, closed: false, error: `${cur.addr} has no successor` };
    if (seen.has(s.id)) return { hops, closed: s.id === hops[0].id };
    cur = { id: s.id, addr: s.addr, key: s.key, admission: s.admission };
  }
  return { hops, closed: false, error: 'walk too long' };
}

/**
 * Who holds each key, asked of every member met by walks (chord.fetch), and
 * who should: the key's owner and the members after it, in ring order.
 */
async function where(keys: string[]): Promise<Record<string, { holders: string[]; owners: string[] }>> {
  if (!observer) throw new Error('walk first');
  const ep = observer;
  const ids = [...known.keys()].sort();
  const held = new Map<string, string[]>(keys.map((k) => [k, []]));
  await Promise.all(
    [...known.values()].map(async (ref) => {
      try {
        const r = (await ep.request(ref, METHOD.FETCH, { keys }, { timeoutMs: 3000 })) as { records: unknown[] };
        r.records.forEach((rec, i) => {
          if (rec) held.get(keys[i])?.push(ref.id.slice(0, 8));
        });
      } catch {}
    }),
  );
  const out: Record<string, { holders: string[]; owners: string[] }> = {};
  for (const k of keys) {
    const pos = keyPosition(k);
    const first = ids.findIndex((id) => id >= pos);
    const from = first < 0 ? 0 : first;
    const owners = [0, 1, 2].map((j) => ids[(from + j) % ids.length].slice(0, 8));
    out[k] = { holders: held.get(k) ?? [], owners };
  }
  return out;
}

type Cmd =
  | { id: number; op: 'register'; user: string; adapter: string }
  | { id: number; op: 'invite'; from: string; to: string; adapter: string; timeoutMs?: number }
  | { id: number; op: 'walk'; bootstrap: { addr: string; key: string } }
  | { id: number; op: 'where'; keys: string[] };

async function handle(c: Cmd): Promise<unknown> {
  switch (c.op) {
    case 'register': {
      const ua = await phone(c.user);
      const r = await ua.register(peer(c.adapter));
      return { status: r.status, reason: r.reason, contact: ua.contactUri };
    }
    case 'invite': {
      const ua = phones.get(c.from);
      if (!ua) throw new Error(`no phone for ${c.from} on ${host}`);
      const p = peer(c.adapter);
      const r = await probeInvite(ua.element, {
        caller: c.from,
        callee: c.to,
        adapter: p,
        domain: p.address,
        timeoutMs: c.timeoutMs ?? 8000,
      });
      return { status: r.status, reason: r.reason, contact: r.contact, ms: Math.round(r.ms) };
    }
    case 'walk':
      return walk({ addr: c.bootstrap.addr, key: keyOf(c.bootstrap.key) });
    case 'where':
      return where(c.keys);
  }
}

const out = (o: unknown) => process.stdout.write(`${JSON.stringify(o)}\n`);
createInterface({ input: process.stdin }).on('line', (line) => {
  let c: Cmd;
  try {
    c = JSON.parse(line) as Cmd;
  } catch {
    return;
  }
  handle(c).then(
    (result) => out({ id: c.id, ok: true, result }),
    (e) => out({ id: c.id, ok: false, error: (e as Error).message }),
  );
});
process.stdin.on('end', () => process.exit(0));
out({ ready: host });
