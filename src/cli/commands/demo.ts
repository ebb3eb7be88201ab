import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { FlowEvent, SecurityMode } from '../../secp2psip/call-common.ts';
import { bootstrapSpecOf } from '../../secp2psip/bootstrap-spec.ts';
import { LocalOverlay, summarizeCalls } from '../../harness/local-overlay.ts';
import { callObserver } from '../../ops/call-metrics.ts';
import { parseListenOption, startOps } from '../../ops/ops-options.ts';
import { overlayTarget } from '../../ops/overlay-target.ts';
import { phonePage } from '../../phone/phone-page.ts';
import {
  intOption,
  LOG_LEVELS,
  logLevelOption,
  type OptionSpec,
  optionGiven,
  optionsUsage,
  parseArgs,
} from '../../util/args.ts';
import { configPreamble, DAEMON_OPTIONS, logFormatOption } from '../../util/config-options.ts';
import { reloadOnSighup } from '../../util/reload.ts';
import { OverlayError } from '../../util/errors.ts';
import { createLogger } from '../../util/log.ts';
import { percentile } from '../../util/stats.ts';

export const summary = 'start a bootstrap and N adapters on loopback, place calls, stay up for real phones';

export const SPEC = {
  adapters: { type: 'string', default: '8', min: 2, max: 200, help: 'adapters (one demo user and phone each), 2..200' },
  calls: { type: 'string', default: '16', min: 0, max: 100_000, help: 'timed call setups to place, 0..100000' },
  mode: {
    type: 'string',
    default: 'signed',
    choices: ['signed', 'protected'],
    help: 'signed | protected (SECP2PSIP messages sealed to the callee)',
  },
  k: { type: 'string', default: '3', min: 1, max: 255, help: 'pieces needed to rebuild a key' },
  n: { type: 'string', default: '5', min: 1, max: 255, help: 'pieces stored per key' },
  'base-port': {
    type: 'string',
    min: 1,
    max: 65535,
    help: 'SIP port of adapter 1 (adapter i gets base+i-1; default any free port)',
  },
  http: {
    type: 'string',
    default: '127.0.0.1:0',
    help: 'serve the live dashboard (and metrics, health, JSON state) on host:port; port 0: any free port',
  },
  json: { type: 'boolean', help: 'run the calls, print one JSON object, exit (0 only if every call succeeded)' },
  'log-level': {
    type: 'string',
    default: 'warn',
    choices: LOG_LEVELS,
    help: 'fatal, error, warn, info, debug, silent',
  },
  ...DAEMON_OPTIONS,
  help: { type: 'boolean', help: 'show this help' },
} as const satisfies Record<string, OptionSpec>;

const usage = () => optionsUsage('usage: secp2psip demo [options]', SPEC, 12);

const fmt = (ms: number) => `${ms.toFixed(2)} ms`;

/** `secp2psip demo`: the whole SecP2PSIP flow of seed 000 on loopback, then stays up for real phones. */
export async function run(argv: string[]): Promise<number> {
  const args = parseArgs(argv, SPEC);
  if (args.help) {
    process.stdout.write(`${usage()}\n`);
    return 0;
  }
  const early = configPreamble(args, 'demo');
  if (early !== undefined) return early;
  const adapters = intOption(args, 'adapters');
  const calls = intOption(args, 'calls');
  const k = intOption(args, 'k');
  const n = intOption(args, 'n');
  if (k > n) throw new OverlayError('BAD_ARGUMENT', `--k must not exceed --n (${k} > ${n})`);
  const mode = String(args.mode);
  if (mode !== 'signed' && mode !== 'protected')
    throw new OverlayError('BAD_ARGUMENT', `--mode must be signed or protected, got '${mode}'`);
  const basePort = args['base-port'] === undefined ? undefined : intOption(args, 'base-port', 1, 65535 - adapters);
  const json = args.json === true;
  // With --json the demo exits after its calls: a dashboard only when asked for.
  const http = !json || optionGiven(args, 'http') ? parseListenOption(String(args.http), '--http') : undefined;
  const log = createLogger({ level: logLevelOption(args), format: logFormatOption(args) });
  const out = (s: string) => {
    if (!json) process.stdout.write(`${s}\n`);
  };

  const ops = await startOps({ http }, 'demo', log);
  const observeCall = callObserver(ops.metrics);
  const dataDir = mkdtempSync(join(tmpdir(), 'secp2psip-demo-'));
  const events: Array<{ adapter: number; e: FlowEvent }> = [];
  const t0 = performance.now();
  let overlay: LocalOverlay;
  try {
    overlay = await LocalOverlay.start({
      adapters,
      dataDir,
      k,
      n,
      mode: mode as SecurityMode,
      basePort,
      logger: log,
      onEvent: (adapter, e) => events.push({ adapter, e }),
      metrics: ops.metrics,
      onCall: observeCall ? (_i, c) => observeCall(c) : undefined,
      // SIP over TLS and the browser phone on every adapter, on free ports (consecutive SIP ports leave no +1, +2).
      ...(json
        ? {}
        : {
            secure: { tls: { host: '127.0.0.1', port: 0 }, ws: { host: '127.0.0.1', port: 0, secure: true } },
            onHttp: await phonePage({ logger: log }),
          }),
    });
  } catch (e) {
    await ops.close();
    rmSync(dataDir, { recursive: true, force: true });
    throw e;
  }
  ops.attach(overlayTarget(overlay), undefined);
  const startMs = performance.now() - t0;
  out(`SecP2PSIP demo (seed 000): 1 bootstrap, ${adapters} adapters, k=${k} n=${n}, mode ${mode}`);
  out(`  bootstrap ${bootstrapSpecOf(overlay.boot.info)}   data in ${dataDir}`);
  out(`  overlay up in ${fmt(startMs)} (every adapter admitted by the bootstrap and joined the Chord ring over TLS)`);
  out('  open registration: phones register any name without a password (loopback demo only; see --add-user)');
  for (const s of ops.servers) out(`  dashboard ${s.url}  (live: the ring, the users, each call as a ladder)`);

  const reg = await overlay.registerPhones();
  out('');
  out('Registration (phone REGISTER -> adapter registers the user with the bootstrap -> key split into pieces):');
  for (const u of overlay.users)
    out(`  ${u.name.padEnd(8)} phone ${u.phone.element.hostport.padEnd(16)} -> adapter sip:${u.adapter.sipAddr}`);
  out(`  ${reg.ms.length} registered, ${reg.failed} failed; p50 ${fmt(percentile(reg.ms, 50))}`);

  const samples = await overlay.placeCalls(calls);
  const s = summarizeCalls(samples);
  if (!json && samples.length > 0) {
    out('');
    out('Calls (phone INVITE -> adapters verify each other through the ring -> 302 to the callee phone):');
    const shown = samples.slice(0, 8);
    for (const c of shown) {
      const seen = events.filter((x) => x.e.verified === c.caller || x.e.verified === c.callee).slice(-2);
      const how = seen.length > 0 ? `verified in ${seen[0].e.mode} mode` : '';
      out(`  ${c.caller} -> ${c.callee}: ${c.status} in ${fmt(c.ms)}  ${how}`);
    }
    if (samples.length > shown.length) out(`  ... ${samples.length - shown.length} more`);
    const byInvite = events.filter((x) => x.e.kind === 'invite-verified').length;
    const byRedirect = events.filter((x) => x.e.kind === 'redirect-verified').length;
    out(`  callee adapters verified ${byInvite} SECP2PSIP INVITEs; caller adapters verified ${byRedirect} REDIRECTs`);
    out(
      `  ${s.succeeded}/${s.calls} verified 302s; setup p50 ${fmt(s.setupMsP50)}, p99 ${fmt(s.setupMsP99)} (seed 000: 481.03 ms)`,
    );
  }
  if (json) {
    const result = {
      adapters,
      mode,
      k,
      n,
      startMs: Math.round(startMs),
      registrations: reg.ms.length,
      registrationsFailed: reg.failed,
      registrationMsP50: percentile(reg.ms, 50),
      ...s,
      verifiedInvites: events.filter((x) => x.e.kind === 'invite-verified').length,
      verifiedRedirects: events.filter((x) => x.e.kind === 'redirect-verified').length,
    };
    process.stdout.write(`${JSON.stringify(result)}\n`);
    await ops.close();
    await overlay.close();
    rmSync(dataDir, { recursive: true, force: true });
    log.flush();
    return s.failed === 0 && reg.failed === 0 && s.calls === calls ? 0 : 1;
  }

  // A full call between two built-in phones: the 302 is followed and the callee's phone answers directly.
  if (overlay.users.length >= 2) {
    const [a, b] = overlay.users;
    try {
      const call = await a.phone.invite(`sip:${b.name}@${a.adapter.sipAddr}`, peerOf(a.adapter.sipAddr));
      const src = b.phone.incoming.at(-1)?.source;
      out('');
      out(`Full call ${a.name} -> ${b.name}: 302 to ${call.redirectedTo}, answered 200 OK by ${b.name}'s phone`);
      out(`  ${b.name}'s phone got the INVITE from ${src?.address}:${src?.port} (${a.name}'s phone, not an adapter)`);
      await a.phone.bye(call);
    } catch (e) {
      out(`Full call ${a.name} -> ${b.name} failed: ${(e as Error).message}`);
    }
  }
  const first = overlay.users[0];
  out('');
  out('Point a real phone at an adapter (the demo stays up; Ctrl-C stops it):');
  out(`  account: sip:<yourname>@${first.adapter.sipAddr}  (any unused name; no password; UDP or TCP)`);
  out(`  then call: ${overlay.users.map((u) => `sip:${u.name}@${first.adapter.sipAddr}`).join(', ')}`);
  out(
    `  baresip:  mkdir -p /tmp/phone && echo '<sip:me@${first.adapter.sipAddr}>;regint=600;answermode=auto' > /tmp/phone/accounts`,
  );
  out(
    `            baresip -f /tmp/phone, then type:  /dial sip:${overlay.users[1]?.name ?? 'bob'}@${first.adapter.sipAddr}`,
  );
  out(`  Linphone: SIP account, username <yourname>, SIP server address ${first.adapter.sipAddr}, transport UDP`);
  const [s1, s2] = overlay.adapters.map((a) => a.secure);
  if (s1?.tls && s1.ws && s2?.ws) {
    const tls = `127.0.0.1:${s1.tls.port}`;
    out(`  over TLS: sip:<yourname>@${tls};transport=tls  (certificate sha256 ${s1.certificate.fingerprint})`);
    out(
      `            baresip: '<sip:me@${tls};transport=tls>;mediaenc=srtp-mand;regint=600' with 'module srtp.so' in its config`,
    );
    out('  browser phone (WebRTC; accept the self-signed certificate): open two tabs, register two names, call');
    out(`            https://127.0.0.1:${s1.ws.port}/phone   and   https://127.0.0.1:${s2.ws.port}/phone`);
  }
  out(`  other adapters: ${overlay.adapters.map((a) => a.sipAddr).join(' ')}`);
  out('  behind a NAT: SIP needs nothing (the adapter reaches the phone over its registration); for audio give the');
  out(
    '  phone a STUN/TURN server, e.g. coturn: turnserver -n --listening-ip <public ip> --lt-cred-mech --realm r --user u:p',
  );
  out('  baresip:  append ;medianat=turn;stunserver=turn:<public ip>:3478;stunuser=u;stunpass=p to the account line');
  out('            (and module stun.so, module turn.so in its config)');
  out('  Linphone: Preferences > Network > NAT and firewall: STUN/TURN server <public ip>:3478, enable TURN, user u');
  const reloader = reloadOnSighup(args, { argv, spec: SPEC, role: 'demo', log });
  await new Promise<void>((resolve) => {
    process.once('SIGINT', resolve);
    process.once('SIGTERM', resolve);
  });
  reloader.close();
  await ops.close();
  await overlay.close();
  rmSync(dataDir, { recursive: true, force: true });
  log.flush();
  return 0;
}

function peerOf(hostport: string) {
  const i = hostport.lastIndexOf(':');
  return { transport: 'UDP' as const, address: hostport.slice(0, i), port: Number(hostport.slice(i + 1)) };
}
