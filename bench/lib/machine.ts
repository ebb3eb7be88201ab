/** What the numbers were measured on: noted at the top of every report. */
import { cpus, loadavg, totalmem, type as osType, release } from 'node:os';

export interface MachineInfo {
  cores: number;
  cpu: string;
  node: string;
  os: string;
  memoryGiB: number;
  /** 1-minute load average when the run started and ended (others may share the machine). */
  loadStart: number;
  loadEnd?: number;
}

export function machineInfo(): MachineInfo {
  const c = cpus();
  return {
    cores: c.length,
    cpu: (c[0]?.model ?? 'unknown').replace(/\s+/g, ' ').trim(),
    node: process.version,
    os: `${osType()} ${release()}`,
    memoryGiB: Math.round((totalmem() / 2 ** 30) * 10) / 10,
    loadStart: Math.round(loadavg()[0] * 100) / 100,
  };
}

export function currentLoad(): number {
  return Math.round(loadavg()[0] * 100) / 100;
}
