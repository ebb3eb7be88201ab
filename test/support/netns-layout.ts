/**
 * A cross-host layout described in one place and built on a test network
 * (testnet.ts): public hosts on the bridge, NAT routers (MASQUERADE, optionally
 * "symmetric" or dropping unsolicited connections) with hosts behind each, and
 * which daemons run where, every one of them bound to wildcards on its host.
 *
 *   const lay = await NetnsLayout.build({
 *     prefix: 'sp2tnat',
 *     hosts: ['boot', 'A'],
 *     nats: [{ router: 'home', behind: ['alice'] }],
 *     daemons: { boot: { kind: 'bootstrap', on: 'boot' }, A: { kind: 'adapter', on: 'A' } },
 *   });
 *   await lay.start();                              // every daemon, in the order given
 *   const alice = lay.phone('alice', 'alice', `sip:alice@${lay.host('A').addr}:5060`);
 *   await lay.destroy();                            // in an `after` hook
 *
 * Hosts get their addresses in the order given: public hosts first, then the
 * routers. Each daemon keeps its data in <tmp>/<daemon name>; WhanauSIP nodes
 * and gateways get an identity there at build time and know each other as
 * social peers at their hosts' addresses. Several bootstraps form one set:
 * each gets its node key at build time and names the others as peers; an
 * adapter joins the one it names (default: the first).
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Identity } from '../../src/identity/identity.ts';
import { callAndHangUp, type NetnsPhone, type NetnsPhoneOptions, startNetnsPhone } from './baresip-netns.ts';
import { ADAPTER_READY, BOOTSTRAP_READY, type NetnsDaemon, startNetnsDaemon, WHANAU_READY } from './netns-daemons.ts';
import { type Host, type NatOptions, Testnet } from './testnet.ts';

export interface NatSpec extends NatOptions {
  /** The router's name: a public host of its own. */
  router: string;
  /** The names of the hosts on its private network. */
  behind: string[];
}

export type DaemonSpec =
  /** `secp2psip bootstrap --listen 0.0.0.0:7000`, with `--peer` for every other bootstrap of the layout. */
  | { kind: 'bootstrap'; on: string; args?: string[] }
  /** `secp2psip adapter --sip 0.0.0.0:5060 --open-registration`, bootstrapping from `bootstrap` (default: the first). */
  | { kind: 'adapter'; on: string; mode?: string; bootstrap?: string; args?: string[] }
  /** WhanauSIP (`node` with open registration, or `gateway`): SIP and DHT on wildcards, every other one a peer. */
  | { kind: 'node' | 'gateway'; on: string; args?: string[] };

export interface LayoutSpec {
  /** Namespace prefix (one per test file, so two files never build the same namespaces). */
  prefix: string;
  /** Prefix of the temporary directory for data and phone configs (default `<prefix>-`). */
  tmp?: string;
  /** Public hosts on the bridge, by name. */
  hosts: string[];
  nats?: NatSpec[];
  /** Daemons by name, in start order. */
  daemons?: Record<string, DaemonSpec>;
}

export interface Started {
  d: NetnsDaemon;
  /** The match of the daemon's ready lines (bootstrap: spec, key; adapter: SIP, ring; WhanauSIP: hash, SIP URI, peer). */
  m: RegExpExecArray;
}

const WHANAU_LISTEN = ['--sip', '0.0.0.0:5060', '--dht', '0.0.0.0:7000'];

export class NetnsLayout {
  private readonly hostsByName = new Map<string, Host>();
  private readonly started = new Map<string, Started>();
  private readonly phones: NetnsPhone[] = [];
  private readonly hashes = new Map<string, string>();
  /** Bootstraps' node keys (hex), when the layout has several. */
  private readonly keys = new Map<string, string>();

  private constructor(
    readonly spec: LayoutSpec,
    readonly net: Testnet,
    /** The temporary directory (daemon data, phone configs), removed by destroy. */
    readonly base: string,
  ) {}

  /** Build the hosts and routers (no daemon yet); on failure nothing is left behind. */
  static async build(spec: LayoutSpec): Promise<NetnsLayout> {
    const nats = spec.nats ?? [];
    const net = await Testnet.create(spec.hosts.length + nats.length, { prefix: spec.prefix });
    const lay = new NetnsLayout(spec, net, mkdtempSync(join(tmpdir(), spec.tmp ?? `${spec.prefix}-`)));
    try {
      const names = [...spec.hosts, ...nats.map((n) => n.router)];
      for (const [i, name] of names.entries()) lay.name(name, net.hosts[i]);
      for (const { router, behind, ...o } of nats) {
        const lan = await net.addNatLan(lay.host(router), behind.length, o);
        for (const [j, name] of behind.entries()) lay.name(name, lan[j]);
      }
      const daemons = Object.entries(spec.daemons ?? {});
      const bootstraps = daemons.filter(([, d]) => d.kind === 'bootstrap').length;
      for (const [name, d] of daemons) {
        lay.host(d.on);
        if (d.kind === 'adapter' && d.bootstrap && spec.daemons?.[d.bootstrap]?.kind !== 'bootstrap')
          throw new Error(`adapter ${name}: no bootstrap ${d.bootstrap} in the layout`);
        if (d.kind === 'bootstrap' && bootstraps > 1) {
          const id = Identity.loadOrCreate(join(lay.base, name, 'node'));
          lay.keys.set(name, Buffer.from(id.bundle.sig).toString('hex'));
        }
        if (d.kind !== 'node' && d.kind !== 'gateway') continue;
        const id = Identity.generate();
        id.save(join(lay.base, name, 'identity.pem'));
        lay.hashes.set(name, id.id);
      }
    } catch (e) {
      await lay.destroy();
      throw e;
    }
    return lay;
  }

  private name(name: string, h: Host): void {
    if (this.hostsByName.has(name)) throw new Error(`two hosts named ${name}`);
    this.hostsByName.set(name, h);
  }

  host(name: string): Host {
    const h = this.hostsByName.get(name);
    if (!h) throw new Error(`no host ${name} in the layout`);
    return h;
  }

  /** A started daemon and the match of its ready line. */
  get(name: string): Started {
    const s = this.started.get(name);
    if (!s) throw new Error(`daemon ${name} has not started`);
    return s;
  }

  daemon(name: string): NetnsDaemon {
    return this.get(name).d;
  }

  /** A WhanauSIP daemon's node hash (its identity, made at build time). */
  hash(name: string): string {
    const h = this.hashes.get(name);
    if (!h) throw new Error(`${name} is not a WhanauSIP daemon of the layout`);
    return h;
  }

  /** A bootstrap's node key (hex), made at build time when the layout has several bootstraps. */
  key(name: string): string {
    const k = this.keys.get(name);
    if (!k) throw new Error(`${name} is not one of several bootstraps of the layout`);
    return k;
  }

  /** Start the named daemons of the spec one after another (by default every one not started yet). */
  async start(...names: string[]): Promise<Started[]> {
    const all = Object.keys(this.spec.daemons ?? {});
    const out: Started[] = [];
    for (const name of names.length ? names : all.filter((n) => !this.started.has(n)))
      out.push(await this.startDaemon(name));
    return out;
  }

  private daemonSpec(name: string): DaemonSpec {
    const d = this.spec.daemons?.[name];
    if (!d) throw new Error(`no daemon ${name} in the layout`);
    return d;
  }

  /** Start the daemon `name` as the spec says, or as `d` says (one the spec does not list). */
  async startDaemon(name: string, d = this.daemonSpec(name)): Promise<Started> {
    const data = ['--data', join(this.base, name)];
    let args: string[];
    let ready: RegExp;
    if (d.kind === 'bootstrap') {
      args = ['bootstrap', '--listen', '0.0.0.0:7000', ...data];
      for (const [n, key] of this.keys)
        if (n !== name) args.push('--peer', `${key}@${this.host(this.daemonSpec(n).on).addr}:7000`);
      ready = BOOTSTRAP_READY;
    } else if (d.kind === 'adapter') {
      const boot = this.bootstrapSpec(d.bootstrap);
      args = ['adapter', '--sip', '0.0.0.0:5060', '--bootstrap', boot, ...data, '--open-registration'];
      if (d.mode) args.push('--mode', d.mode);
      ready = ADAPTER_READY;
    } else {
      // A SETUP every 3 s, so that tests finish quickly; --expected-nodes counts the layout's WhanauSIP daemons.
      args = [d.kind, ...WHANAU_LISTEN, ...data, '--setup-period', '3', '--expected-nodes', String(this.hashes.size)];
      if (d.kind === 'node') args.push('--open-registration');
      // Every other one is a social peer at its host's address (a private one for a host behind a NAT).
      for (const [n, hash] of this.hashes)
        if (n !== name) args.push('--peer', `${hash}@${this.host(this.daemonSpec(n).on).addr}:7000`);
      ready = WHANAU_READY;
    }
    const s = await startNetnsDaemon(this.net, this.host(d.on), [...args, ...(d.args ?? [])], ready);
    this.started.set(name, s);
    return s;
  }

  /** The spec (`<id>@<addr>:<port>`) of the bootstrap `name` (default: the layout's first), which must have started. */
  bootstrapSpec(name?: string): string {
    const boot = name ?? Object.entries(this.spec.daemons ?? {}).find(([, d]) => d.kind === 'bootstrap')?.[0];
    if (!boot) throw new Error('the layout has no bootstrap');
    return this.get(boot).m[1];
  }

  /** Start baresip as `name` on the host `on`, registering `aor` (see startNetnsPhone). */
  phone(name: string, on: string, aor: string, o?: NetnsPhoneOptions): NetnsPhone {
    const p = startNetnsPhone(this.net, this.host(on), this.base, name, aor, o);
    this.phones.push(p);
    return p;
  }

  /** `caller` dials `target`; the callee answers and hangs up; its BYE reaches the caller. Fails with every log. */
  call(caller: NetnsPhone, callee: NetnsPhone, target: string): Promise<void> {
    return callAndHangUp(this.net, caller, callee, target, () => this.logs());
  }

  /** The tail of every phone's output and every daemon's log, for a failure message. */
  logs(tail = 12_000): string {
    return [
      ...this.phones.map((p) => [p.name, p.out()] as const),
      ...[...this.started].map(([n, s]) => [n, s.d.err()] as const),
    ]
      .map(([n, s]) => `--- ${n} ---\n${s.slice(-tail)}`)
      .join('\n');
  }

  /** Kill everything, remove the namespaces and the temporary directory. Safe to call twice. */
  async destroy(): Promise<void> {
    await this.net.destroy();
    rmSync(this.base, { recursive: true, force: true });
  }
}
