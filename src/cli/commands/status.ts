/**
 * `secp2psip status --http host:port`: a running daemon's state in the
 * terminal, read from its operator listener (/api/state): role, id,
 * readiness, ring members and successors, users, recent calls. With
 * `--admin-token-file`, a bootstrap's administration: `--users` lists the
 * names it holds, `--release NAME` frees one.
 */
import type { DaemonState } from '../../ops/state.ts';
import { parseListenOption, readTokenFile } from '../../ops/ops-options.ts';
import { formatHostPort, optionsUsage, parseArgs, requiredOption } from '../../util/args.ts';
import { OverlayError } from '../../util/errors.ts';

export const summary = "print a running daemon's state from its --http listener; bootstrap user administration";

const SPEC = {
  http: {
    type: 'string',
    help: "the daemon's --http listener: host:port, or the URL it printed (a bare port: 127.0.0.1)",
  },
  json: { type: 'boolean', help: 'print the state as one JSON object' },
  'admin-token-file': { type: 'string', help: "file holding the bootstrap's administration token" },
  users: { type: 'boolean', help: "with --admin-token-file: list the bootstrap's users" },
  release: { type: 'string', help: 'with --admin-token-file: free this name at the bootstrap (its user lost the key)' },
  timeout: { type: 'string', default: '5000', help: 'ms to wait for the daemon' },
  help: { type: 'boolean', help: 'show this help' },
} as const;

const usage = () =>
  optionsUsage(
    'usage: secp2psip status --http <host:port> [--json]\n' +
      '       secp2psip status --http <host:port> --admin-token-file <file> --users | --release <name>',
    SPEC,
    16,
  );

const short = (id: string | undefined) => (id ? id.slice(0, 8) : '?');

async function call(base: string, path: string, timeoutMs: number, init: RequestInit = {}): Promise<unknown> {
  let res: Response;
  try {
    res = await fetch(`${base}${path}`, { ...init, signal: AbortSignal.timeout(timeoutMs) });
  } catch (e) {
    const why = (e as Error).cause ? String(((e as Error).cause as Error).message) : (e as Error).message;
    throw new OverlayError('RPC_UNREACHABLE', `no answer from ${base}: ${why}`);
  }
  const text = await res.text();
  let body: unknown;
  try {
    body = JSON.parse(text);
  } catch {
    throw new OverlayError(
      'RPC_MALFORMED',
      `${base}${path} answered ${res.status} without JSON (is it a --http listener?)`,
    );
  }
  if (!res.ok) {
    const err = (body as { error?: string }).error ?? `status ${res.status}`;
    throw new OverlayError(res.status === 401 ? 'BAD_ARGUMENT' : 'RPC_REFUSED', `${path}: ${err}`);
  }
  return body;
}

/** The state as lines for a terminal. */
export function formatState(s: DaemonState): string {
  const lines = [`${s.role} ${s.id || '(starting)'}  ${s.ready.ok ? 'ready' : 'NOT READY'}: ${s.ready.reason}`];
  lines.push(`  address ${s.addr}${s.sip ? `   sip ${s.sip}` : ''}`);
  if (s.ring) {
    const r = s.ring;
    lines.push(`ring: ${r.members.length} members known, successor list ${r.successors.length}/${r.replicas}`);
    for (const m of r.members) {
      const what = [m.bootstrap ? 'bootstrap' : '', m.id === s.id ? 'this' : ''].filter(Boolean).join(', ');
      const records = m.records === undefined ? '' : `  records ${m.records}`;
      lines.push(
        `  ${short(m.id)}  ${m.addr.padEnd(21)} range (${short(m.rangeFrom)}, ${short(m.id)}]${records}${what ? `  (${what})` : ''}`,
      );
    }
    lines.push(`  successors: ${r.successors.map(short).join(' ') || 'none'}`);
  }
  if (s.users) {
    lines.push(`users: ${s.usersTotal ?? s.users.length}`);
    for (const u of s.users.slice(0, 50))
      lines.push(`  ${u.name}${u.contacts.length ? `  ${u.contacts.join(', ')}` : ''}`);
    if (s.users.length > 50) lines.push(`  ... ${s.users.length - 50} more`);
  }
  if (s.calls) {
    lines.push(`recent calls: ${s.calls.length}`);
    for (const c of s.calls.slice(0, 10)) {
      const t = new Date(c.at).toISOString().slice(11, 19);
      const what = c.status === 302 ? 'verified 302' : `${c.status} ${c.code ?? ''} ${c.reason}`.trim();
      const pieces = c.badPieces.length ? `  (${c.badPieces.length} bad pieces corrected)` : '';
      lines.push(`  ${t}  ${c.caller} -> ${c.callee}  ${what}  ${c.mode}  ${c.ms.toFixed(1)} ms${pieces}`);
    }
  }
  if (s.whanau) {
    const w = s.whanau;
    lines.push(`whanau: ${w.peers.length} social peers (${w.peers.filter((p) => p.active).length} answering)`);
    lines.push(
      `  tables: ${
        Object.entries(w.tables)
          .map(([k, v]) => `${k} ${v}`)
          .join(', ') || 'none yet'
      }`,
    );
    lines.push(`  setups: ${w.setups.done} done, ${w.setups.failed} failed`);
  }
  return lines.join('\n');
}

export async function run(argv: string[]): Promise<number> {
  const args = parseArgs(argv, SPEC);
  if (args.help) {
    process.stdout.write(`${usage()}\n`);
    return 0;
  }
  // The URL a daemon prints (`http http://127.0.0.1:8080/`) is accepted as it is.
  const given = requiredOption(args, 'http')
    .replace(/^http:\/\//, '')
    .replace(/\/$/, '');
  const hp = parseListenOption(given, '--http');
  const timeout = Number(args.timeout);
  if (!Number.isInteger(timeout) || timeout < 100 || timeout > 600_000)
    throw new OverlayError(
      'BAD_ARGUMENT',
      `--timeout must be an integer between 100 and 600000, got '${args.timeout}'`,
    );
  const base = `http://${formatHostPort(hp)}`;
  const admin = args.users === true || args.release !== undefined;
  if (admin) {
    if (args['admin-token-file'] === undefined)
      throw new OverlayError('BAD_ARGUMENT', '--users and --release need --admin-token-file');
    const auth = { authorization: `Bearer ${readTokenFile(String(args['admin-token-file']))}` };
    if (args.release !== undefined) {
      await call(base, '/api/admin/release', timeout, {
        method: 'POST',
        headers: { ...auth, 'content-type': 'application/json' },
        body: JSON.stringify({ name: String(args.release) }),
      });
      process.stdout.write(`released ${String(args.release)}\n`);
      return 0;
    }
    const body = (await call(base, '/api/admin/users', timeout, { headers: auth })) as {
      users: Array<{ name: string; registeredAt: number; certified: boolean }>;
    };
    if (args.json) process.stdout.write(`${JSON.stringify(body)}\n`);
    else
      for (const u of body.users)
        process.stdout.write(
          `${u.name}  registered ${new Date(u.registeredAt).toISOString()}${u.certified ? '  certified' : ''}\n`,
        );
    return 0;
  }
  const state = (await call(base, '/api/state', timeout)) as DaemonState;
  process.stdout.write(args.json ? `${JSON.stringify(state)}\n` : `${formatState(state)}\n`);
  return 0;
}
