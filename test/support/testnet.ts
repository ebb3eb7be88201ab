/**
 * A network of several hosts for cross-host tests, made of Linux network
 * namespaces: each host is a namespace with loopback up and one veth link
 * (`eth0`) into a bridge that lives in a namespace of its own, with its own
 * address on a private subnet (10.77.<subnet>.<i+1>/24). Nothing is added to
 * the root namespace and no traffic can leave what is created here.
 *
 *   const net = await Testnet.create(4);          // hosts h0..h3
 *   const p = net.spawn(net.hosts[0], ['node', 'x.mjs']);
 *   await net.partition([[h0, h1], [h2, h3]]);    // cut every link between groups
 *   await net.heal();
 *   await net.destroy();                          // also on failure: in an `after` hook
 *
 * Cuts are iptables DROP rules inside the receiving hosts (silence, as on
 * a real partition; `cut` can also be one-way). Without iptables, `partition` moves
 * each group's bridge ports onto a bridge of its own (same shapes, no one-way
 * cuts). `linkDown`/`linkUp` take one host off the wire. `addNatLan` puts
 * hosts on a private network behind one host acting as a NAT router.
 *
 * Namespaces are named `<prefix>-<pid>-<n>`: a run that crashed leaves them
 * behind, and the next `create` removes those whose pid is gone (processes
 * still inside them are killed first). `testnetUnavailable()` says why the
 * module cannot run here (not root, no `ip`, no namespaces allowed), so
 * tests skip with that reason.
 */
import { type ChildProcess, execFile, execFileSync, type SpawnOptions, spawn } from 'node:child_process';
import { promisify } from 'node:util';

const run = promisify(execFile);

export interface Host {
  /** h0, h1, ... */
  name: string;
  /** The network namespace. */
  ns: string;
  /** Its IPv4 address on the test subnet. */
  addr: string;
  /** Its port on the bridge (inside the bridge namespace). */
  port: string;
  /** For a host on a private network: the router whose address it is seen from outside. */
  behind?: Host;
}

export interface TestnetOptions {
  /** Third octet of 10.77.x.0/24 (each run has its own bridge, so runs never see each other). */
  subnet?: number;
  /** Namespace name prefix (default `sp2t`). */
  prefix?: string;
  /**
   * How `partition` cuts: iptables rules (the default where iptables works) or separate bridges.
   * The environment variable TESTNET_CUT=iptables|bridge chooses it for a whole run.
   */
  cutMethod?: CutMethod;
}

export type CutMethod = 'iptables' | 'bridge';

/** How a NAT router (addNatLan) behaves beyond MASQUERADE. */
export interface NatOptions {
  /**
   * A random source port for every connection (MASQUERADE --random-fully), a "symmetric" NAT: the port a peer
   * dials is never the one the next connection leaves from, so TCP simultaneous open cannot work through it.
   */
  randomFully?: boolean;
  /**
   * Drop new TCP connections to the router itself instead of answering them with a reset, as home routers do:
   * a simultaneous open's early SYN is lost, not refused. (Unsolicited connections are never forwarded inward.)
   */
  dropUnsolicited?: boolean;
}

const DEFAULT_PREFIX = 'sp2t';

function which(cmd: string): boolean {
  try {
    execFileSync('sh', ['-c', `command -v ${cmd}`], { stdio: 'ignore' });
    return true;
  } catch {
    return false;
  }
}

let probed: { unavailable: string | undefined; iptables: boolean } | undefined;

function probe(): { unavailable: string | undefined; iptables: boolean } {
  if (probed) return probed;
  let unavailable: string | undefined;
  let iptables = false;
  if (process.platform !== 'linux') unavailable = 'network namespaces need Linux';
  else if (process.getuid?.() !== 0) unavailable = 'network namespaces need root';
  else if (!which('ip')) unavailable = "no 'ip' command (Debian package iproute2)";
  else {
    const ns = `${DEFAULT_PREFIX}-${process.pid}-probe`;
    try {
      execFileSync('ip', ['netns', 'add', ns], { stdio: 'pipe' });
      try {
        execFileSync('ip', ['-n', ns, 'link', 'add', 'name', 'br0', 'type', 'bridge'], { stdio: 'pipe' });
        if (which('iptables')) {
          try {
            execFileSync('ip', ['netns', 'exec', ns, 'iptables', '-w', '-L', 'INPUT', '-n'], { stdio: 'pipe' });
            iptables = true;
          } catch {}
        }
      } finally {
        execFileSync('ip', ['netns', 'del', ns], { stdio: 'pipe' });
      }
    } catch (e) {
      const msg = ((e as { stderr?: Buffer }).stderr?.toString() || (e as Error).message).trim().split('\n')[0];
      unavailable = `cannot create network namespaces here (${msg})`;
    }
  }
  probed = { unavailable, iptables };
  return probed;
}

/** Why a test network cannot be built on this machine, or undefined when it can. */
export function testnetUnavailable(): string | undefined {
  return probe().unavailable;
}

/** Why cuts by iptables and NAT routers are not available here (the bridge method still is), or undefined. */
export function iptablesUnavailable(): string | undefined {
  return testnetUnavailable() ?? (probe().iptables ? undefined : "no working 'iptables' (Debian package iptables)");
}

/** Is the process `pid` still running? */
function alive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (e) {
    return (e as NodeJS.ErrnoException).code === 'EPERM';
  }
}

async function listNs(): Promise<string[]> {
  const { stdout } = await run('ip', ['netns', 'list']);
  return stdout
    .split('\n')
    .map((l) => l.trim().split(/\s+/)[0])
    .filter((s) => s);
}

/** Kill what still runs inside `ns`, then delete it (its veth ends go with it). */
async function removeNs(ns: string): Promise<void> {
  try {
    const { stdout } = await run('ip', ['netns', 'pids', ns]);
    for (const p of stdout.split(/\s+/).filter((s) => /^\d+$/.test(s)))
      try {
        process.kill(Number(p), 'SIGKILL');
      } catch {}
  } catch {}
  await run('ip', ['netns', 'del', ns]).catch(() => {});
}

/** Remove the namespaces of earlier runs with this prefix whose process is gone. */
export async function removeLeftovers(prefix = DEFAULT_PREFIX): Promise<string[]> {
  const re = new RegExp(`^${prefix}-(\\d+)-`);
  const gone: string[] = [];
  for (const ns of await listNs()) {
    const m = re.exec(ns);
    if (!m || Number(m[1]) === process.pid || alive(Number(m[1]))) continue;
    await removeNs(ns);
    gone.push(ns);
  }
  return gone;
}

/** A veth pair: `name` in namespace `ns`, its peer `peer` in `peerNs`. */
async function veth(name: string, ns: string, peer: string, peerNs: string): Promise<void> {
  await run('ip', ['link', 'add', 'name', name, 'netns', ns, 'type', 'veth', 'peer', 'name', peer, 'netns', peerNs]);
}

let runs = 0;

export class Testnet {
  readonly hosts: Host[] = [];
  /** Hosts on private networks behind NAT routers (see addNatLan). */
  readonly natHosts: Host[] = [];
  /** The namespace holding the bridge(s). */
  readonly switchNs: string;
  readonly cutMethod: CutMethod;
  private readonly procs = new Set<ChildProcess>();
  private extraBridges = 0;
  private lans = 0;
  private destroyed = false;

  private constructor(
    readonly id: string,
    readonly subnet: number,
    cutMethod: CutMethod | undefined,
  ) {
    this.switchNs = `${id}-sw`;
    if (cutMethod === 'iptables' && !probe().iptables) throw new Error('iptables does not work here');
    this.cutMethod = cutMethod ?? (probe().iptables ? 'iptables' : 'bridge');
  }

  /** Build `count` hosts h0..h{count-1} (at most 250). Throws with the reason when unavailable. */
  static async create(count: number, o: TestnetOptions = {}): Promise<Testnet> {
    const why = testnetUnavailable();
    if (why) throw new Error(why);
    if (count < 1 || count > 250) throw new Error('1..250 hosts');
    const prefix = o.prefix ?? DEFAULT_PREFIX;
    await removeLeftovers(prefix);
    const net = new Testnet(
      `${prefix}-${process.pid}-${runs++}`,
      o.subnet ?? 0,
      o.cutMethod ?? (process.env.TESTNET_CUT as CutMethod | undefined),
    );
    try {
      await net.build(count);
    } catch (e) {
      await net.destroy();
      throw e;
    }
    return net;
  }

  private async build(count: number): Promise<void> {
    const sw = this.switchNs;
    await run('ip', ['netns', 'add', sw]);
    await run('ip', ['-n', sw, 'link', 'add', 'name', 'br0', 'type', 'bridge']);
    await run('ip', ['-n', sw, 'link', 'set', 'br0', 'up']);
    for (let i = 0; i < count; i++) {
      const h: Host = { name: `h${i}`, ns: `${this.id}-h${i}`, addr: `10.77.${this.subnet}.${i + 1}`, port: `p${i}` };
      this.hosts.push(h);
      await this.attach(h, 'br0');
    }
  }

  /** Make `h`'s namespace, with loopback up and `eth0` (its address on it) plugged into `bridge`. */
  private async attach(h: Host, bridge: string): Promise<void> {
    const sw = this.switchNs;
    await run('ip', ['netns', 'add', h.ns]);
    await veth('eth0', h.ns, h.port, sw);
    await run('ip', ['-n', sw, 'link', 'set', h.port, 'master', bridge, 'up']);
    await run('ip', ['-n', h.ns, 'link', 'set', 'lo', 'up']);
    await run('ip', ['-n', h.ns, 'addr', 'add', `${h.addr}/24`, 'dev', 'eth0']);
    await run('ip', ['-n', h.ns, 'link', 'set', 'eth0', 'up']);
  }

  /**
   * A private network behind `router` (one of the hosts): `count` new hosts
   * on 10.78.<lan>.0/24 with the router as default gateway. What they send
   * to the test subnet leaves with the router's address (MASQUERADE);
   * nothing from outside reaches them unless it answers their own traffic.
   * Needs iptables. Partitions and cuts apply to the router (a NAT host's
   * packets reach others with the router's address).
   */
  async addNatLan(router: Host, count: number, o: NatOptions = {}): Promise<Host[]> {
    if (!probe().iptables) throw new Error('a NAT router needs iptables');
    const k = ++this.lans;
    const sw = this.switchNs;
    const lan = `lan${k}`;
    const rIf = `eth${k}`;
    const gw = `10.78.${k}.1`;
    await run('ip', ['-n', sw, 'link', 'add', 'name', lan, 'type', 'bridge']);
    await run('ip', ['-n', sw, 'link', 'set', lan, 'up']);
    await veth(rIf, router.ns, `r${k}`, sw);
    await run('ip', ['-n', sw, 'link', 'set', `r${k}`, 'master', lan, 'up']);
    await run('ip', ['-n', router.ns, 'addr', 'add', `${gw}/24`, 'dev', rIf]);
    await run('ip', ['-n', router.ns, 'link', 'set', rIf, 'up']);
    await this.exec(router, ['sh', '-c', 'echo 1 > /proc/sys/net/ipv4/ip_forward']);
    const ipt = (...a: string[]) => this.exec(router, ['iptables', '-w', ...a]);
    const masquerade = ['-j', 'MASQUERADE', ...(o.randomFully ? ['--random-fully'] : [])];
    await ipt('-t', 'nat', '-A', 'POSTROUTING', '-s', `10.78.${k}.0/24`, '-o', 'eth0', ...masquerade);
    const inbound = ['-A', 'FORWARD', '-i', 'eth0', '-o', rIf];
    await ipt(...inbound, '-m', 'conntrack', '--ctstate', 'ESTABLISHED,RELATED', '-j', 'ACCEPT');
    await ipt(...inbound, '-j', 'DROP');
    if (o.dropUnsolicited)
      await ipt('-A', 'INPUT', '-i', 'eth0', '-p', 'tcp', '-m', 'conntrack', '--ctstate', 'NEW', '-j', 'DROP');
    const out: Host[] = [];
    for (let j = 0; j < count; j++) {
      const h: Host = {
        name: `n${k}.${j}`,
        ns: `${this.id}-n${k}-${j}`,
        addr: `10.78.${k}.${j + 2}`,
        port: `n${k}p${j}`,
        behind: router,
      };
      this.natHosts.push(h);
      await this.attach(h, lan);
      await run('ip', ['-n', h.ns, 'route', 'add', 'default', 'via', gw]);
      out.push(h);
    }
    return out;
  }

  host(name: string): Host {
    const h = [...this.hosts, ...this.natHosts].find((x) => x.name === name);
    if (!h) throw new Error(`no host ${name}`);
    return h;
  }

  /** Run a command inside `host` and wait for it (rejects on a non-zero exit). */
  async exec(host: Host, cmd: string[], timeoutMs = 30_000): Promise<{ stdout: string; stderr: string }> {
    return run('ip', ['netns', 'exec', host.ns, ...cmd], { timeout: timeoutMs });
  }

  /**
   * Can `from` open a TCP connection to `to` (a refused connection counts: the host answered)?
   * False after `timeoutMs` of silence or on "no route to host".
   */
  async reaches(from: Host, to: Host, timeoutMs = 1500): Promise<boolean> {
    const probe = `exec 3<>/dev/tcp/${to.addr}/9`;
    try {
      await this.exec(from, ['timeout', String(timeoutMs / 1000), 'bash', '-c', probe], timeoutMs + 5000);
      return true;
    } catch (e) {
      return /refused/i.test((e as { stderr?: string }).stderr ?? '');
    }
  }

  /** Start a process inside `host`; it is killed by `destroy` if still running. */
  spawn(host: Host, cmd: string[], opts: SpawnOptions = {}): ChildProcess {
    const p = spawn('ip', ['netns', 'exec', host.ns, ...cmd], { stdio: ['ignore', 'pipe', 'pipe'], ...opts });
    this.procs.add(p);
    p.once('exit', () => this.procs.delete(p));
    return p;
  }

  /**
   * Cut the links between two groups of hosts: nothing from `a` reaches `b`,
   * and (unless `oneWay`) nothing from `b` reaches `a`. Needs iptables.
   *
   * Packets are dropped where they arrive (INPUT of the receiving host), as
   * a lost link drops them: the sender's TCP backs off its retransmissions as
   * on a real network. (Dropped in the sender's OUTPUT chain instead, the
   * sender sees a local error and TCP retries every 500 ms without backoff,
   * which makes a healed link look usable again sooner than it would be.)
   */
  async cut(a: Host[], b: Host[], o: { oneWay?: boolean } = {}): Promise<void> {
    if (this.cutMethod !== 'iptables') throw new Error('cut needs iptables; use partition');
    const rules: Promise<unknown>[] = [];
    const drop = (from: Host[], to: Host[]) => {
      for (const t of to)
        for (const f of from) rules.push(this.exec(t, ['iptables', '-w', '-A', 'INPUT', '-s', f.addr, '-j', 'DROP']));
    };
    drop(a, b);
    if (!o.oneWay) drop(b, a);
    await Promise.all(rules);
  }

  /** Split the hosts into groups that cannot reach each other (hosts in no group keep every link). */
  async partition(groups: Host[][]): Promise<void> {
    if (this.cutMethod === 'iptables') {
      for (let i = 0; i < groups.length; i++)
        for (let j = i + 1; j < groups.length; j++) await this.cut(groups[i], groups[j]);
      return;
    }
    // One bridge per group beyond the first: ports on different bridges share no link.
    for (const g of groups.slice(1)) {
      const br = `br${++this.extraBridges}`;
      await run('ip', ['-n', this.switchNs, 'link', 'add', 'name', br, 'type', 'bridge']);
      await run('ip', ['-n', this.switchNs, 'link', 'set', br, 'up']);
      for (const h of g) await run('ip', ['-n', this.switchNs, 'link', 'set', h.port, 'master', br]);
    }
  }

  /** Undo every cut and partition. */
  async heal(): Promise<void> {
    if (this.cutMethod === 'iptables')
      await Promise.all(
        this.hosts.flatMap((h) => [
          this.exec(h, ['iptables', '-w', '-F', 'INPUT']),
          this.exec(h, ['iptables', '-w', '-F', 'OUTPUT']),
        ]),
      );
    for (const h of this.hosts) await run('ip', ['-n', this.switchNs, 'link', 'set', h.port, 'master', 'br0']);
    for (; this.extraBridges > 0; this.extraBridges--)
      await run('ip', ['-n', this.switchNs, 'link', 'del', `br${this.extraBridges}`]).catch(() => {});
  }

  /** Take `host` off the wire (its bridge port down), or put it back. */
  async linkDown(host: Host): Promise<void> {
    await run('ip', ['-n', this.switchNs, 'link', 'set', host.port, 'down']);
  }

  async linkUp(host: Host): Promise<void> {
    await run('ip', ['-n', this.switchNs, 'link', 'set', host.port, 'up']);
  }

  /** Kill every process started here, then remove every namespace. Safe to call twice. */
  async destroy(): Promise<void> {
    if (this.destroyed) return;
    this.destroyed = true;
    const exits = [...this.procs].map((p) =>
      p.exitCode !== null || p.signalCode !== null ? Promise.resolve() : new Promise((r) => p.once('exit', r)),
    );
    for (const p of this.procs) p.kill('SIGKILL');
    await Promise.race([Promise.all(exits), new Promise((r) => setTimeout(r, 5000))]);
    for (const h of [...this.natHosts, ...this.hosts]) await removeNs(h.ns);
    await removeNs(this.switchNs);
  }
}
