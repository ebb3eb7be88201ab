import { type ChildProcess, spawn, spawnSync } from 'node:child_process';
import { createSocket } from 'node:dgram';
import { createServer } from 'node:net';

export function haveBinary(name: string): boolean {
  return spawnSync('sh', ['-c', `command -v ${name}`], { stdio: 'ignore' }).status === 0;
}

export interface Running {
  proc: ChildProcess;
  port: number;
  stderr: () => string;
}

/** Start `secp2psip registrar` on a free port and resolve once its listening log line names the port. */
export function startRegistrar(extra: string[] = [], host = '127.0.0.1'): Promise<Running> {
  const listen = host.includes(':') ? `[${host}]:0` : `${host}:0`;
  const proc = spawn(process.execPath, ['bin/secp2psip.mjs', 'registrar', '--listen', listen, ...extra], {
    stdio: ['ignore', 'pipe', 'pipe'],
    env: { ...process.env, NODE_ENV: 'production' },
  });
  let err = '';
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => {
      proc.kill('SIGKILL');
      reject(new Error(`registrar did not start: ${err}`));
    }, 15_000);
    proc.stderr?.on('data', (d: Buffer) => {
      err += d.toString();
      for (const line of err.split('\n')) {
        if (!line.includes('registrar listening')) continue;
        const port = (JSON.parse(line) as { port: number }).port;
        clearTimeout(timer);
        resolve({ proc, port, stderr: () => err });
        return;
      }
    });
    proc.on('exit', (code) => {
      clearTimeout(timer);
      reject(new Error(`registrar exited with ${code}: ${err}`));
    });
  });
}

/**
 * A port free on both UDP and TCP right now, with the next port free too
 * (baresip binds SIP/TLS on sip_listen's port + 1, an adapter its TLS there)
 * and the one after on TCP (an adapter's WSS). Ports are drawn below the
 * kernel's ephemeral range so that outgoing connections of tests running in
 * parallel cannot take them between this check and the client's bind.
 */
export async function freePort(): Promise<number> {
  for (;;) {
    const port = 20000 + Math.floor(Math.random() * 12000);
    // port + 2: an adapter on `port` also listens for WSS there by default.
    if (
      (await tcpFree(port)) &&
      (await udpFree(port)) &&
      (await tcpFree(port + 1)) &&
      (await udpFree(port + 1)) &&
      (await tcpFree(port + 2))
    )
      return port;
  }
}

function tcpFree(port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const s = createServer();
    s.once('error', () => resolve(false));
    s.listen(port, '127.0.0.1', () => s.close(() => resolve(true)));
  });
}

function udpFree(port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const u = createSocket('udp4');
    u.once('error', () => resolve(false));
    u.bind(port, '127.0.0.1', () => u.close(() => resolve(true)));
  });
}

/** Run a program to completion with a hard time limit; resolves with its exit code and output. */
export function runProgram(
  cmd: string,
  args: string[],
  timeoutMs: number,
  cwd?: string,
): Promise<{ code: number | null; out: string }> {
  return new Promise((resolve) => {
    const p = spawn(cmd, args, { cwd, stdio: ['ignore', 'pipe', 'pipe'] });
    let out = '';
    p.stdout?.on('data', (d: Buffer) => (out += d.toString()));
    p.stderr?.on('data', (d: Buffer) => (out += d.toString()));
    const t = setTimeout(() => p.kill('SIGKILL'), timeoutMs);
    p.on('exit', (code) => {
      clearTimeout(t);
      resolve({ code, out });
    });
  });
}

export function stop(r: Running | undefined): Promise<number | null> {
  if (!r || r.proc.exitCode !== null) return Promise.resolve(r?.proc.exitCode ?? null);
  return new Promise((resolve) => {
    const t = setTimeout(() => r.proc.kill('SIGKILL'), 5000);
    r.proc.once('exit', (code) => {
      clearTimeout(t);
      resolve(code);
    });
    r.proc.kill('SIGTERM');
  });
}
