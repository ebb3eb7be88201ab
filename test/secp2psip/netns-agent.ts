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
 * Usage: node --import tsx netns-agent.ts <host address>; a test starts it on
 * a host of its layout with `startNetnsAgent` and asks it with `ask`.
 */
import type { ChildProcess } from 'node:child_process';
import { resolve } from 'node:path';
import { createInterface } from 'node:readline';
import { fileURLToPath } from 'node:url';
import { METHOD } from '../../src/dht/chord/messages.ts';
import { keyPosition } from '../../src/dht/store/ring-id.ts';
import { Identity } from '../../src/identity/identity.ts';
import { TlsRpcEndpoint } from '../../src/rpc/tls-endpoint.ts';
import type { NodeRef } from '../../src/rpc/types.ts';
import { requestAdmission } from '../../src/secp2psip/adapter-node.ts';
import { probeInvite } from '../../src/harness/call-probe.ts';
import type { BootstrapInfo } from '../../src/secp2psip/messages.ts';
import { admittedRef } from '../../src/secp2psip/ring-records.ts';
import { SystemClock } from '../../src/util/clock.ts';
import type { Host, Testnet } from '../support/testnet.ts';
import { TestPhones, udpPeer as peer } from './phones.ts';

const host = process.argv[2] ?? '127.0.0.1';
const clock = new SystemClock();
const phones = new TestPhones(host);
let observer: TlsRpcEndpoint | undefined;
/** Every member a walk met, by ring id. */
const known = new Map<string, NodeRef>();

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

export type AgentCommand =
  | { op: 'register'; user: string; adapter: string }
  | { op: 'invite'; from: string; to: string; adapter: string; timeoutMs?: number }
  | { op: 'walk'; bootstrap: { addr: string; key: string } }
  | { op: 'where'; keys: string[] };
type Cmd = AgentCommand & { id: number };

async function handle(c: Cmd): Promise<unknown> {
  switch (c.op) {
    case 'register': {
      const ua = await phones.phone(c.user);
      const r = await ua.register(peer(c.adapter));
      return { status: r.status, reason: r.reason, contact: ua.contactUri };
    }
    case 'invite': {
      if (!phones.has(c.from)) throw new Error(`no phone for ${c.from} on ${host}`);
      const ua = phones.get(c.from);
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

function serve(): void {
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
}

if (process.argv[1] && resolve(process.argv[1]) === fileURLToPath(import.meta.url)) serve();

export interface NetnsAgent {
  host: Host;
  proc: ChildProcess;
  ask(cmd: AgentCommand): Promise<unknown>;
}

/** This agent as a process on `host` of the test network, its phones on the host's address; resolves once ready. */
export function startNetnsAgent(net: Testnet, host: Host): Promise<NetnsAgent> {
  const proc = net.spawn(host, [process.execPath, '--import', 'tsx', fileURLToPath(import.meta.url), host.addr], {
    stdio: ['pipe', 'pipe', 'pipe'],
  });
  let seq = 0;
  const waiting = new Map<number, { resolve: (v: unknown) => void; reject: (e: Error) => void }>();
  let err = '';
  proc.stderr?.on('data', (b: Buffer) => (err += b.toString()));
  return new Promise((resolve, reject) => {
    const a: NetnsAgent = {
      host,
      proc,
      ask(cmd) {
        const id = ++seq;
        return new Promise((res, rej) => {
          waiting.set(id, { resolve: res, reject: rej });
          proc.stdin?.write(`${JSON.stringify({ ...cmd, id })}\n`);
        });
      },
    };
    const timer = setTimeout(() => reject(new Error(`agent on ${host.name} did not start:\n${err}`)), 60_000);
    proc.once('exit', (code) => {
      clearTimeout(timer);
      reject(new Error(`agent on ${host.name} exited with ${code}:\n${err}`));
      for (const w of waiting.values()) w.reject(new Error(`agent on ${host.name} exited`));
    });
    createInterface({ input: proc.stdout as NodeJS.ReadableStream }).on('line', (line) => {
      const m = JSON.parse(line) as { ready?: string; id?: number; ok?: boolean; result?: unknown; error?: string };
      if (m.ready) {
        clearTimeout(timer);
        resolve(a);
        return;
      }
      const w = waiting.get(m.id ?? -1);
      if (!w) return;
      waiting.delete(m.id ?? -1);
      if (m.ok) w.resolve(m.result);
      else w.reject(new Error(m.error));
    });
  });
}
