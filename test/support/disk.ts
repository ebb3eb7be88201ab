/**
 * Disks that refuse writes, for the disk-fault tests. chmod does not stop
 * root, so as root a directory is made read-only with a read-only bind mount
 * and a disk fills up as a tiny tmpfs; without root, chmod makes a directory
 * read-only and a full disk is not available (the test is skipped).
 */
import { execFileSync } from 'node:child_process';
import { chmodSync, closeSync, openSync, rmSync, writeSync } from 'node:fs';

export const isRoot = process.getuid?.() === 0;

function mount(args: string[]): boolean {
  try {
    execFileSync('mount', args, { stdio: 'ignore' });
    return true;
  } catch {
    return false;
  }
}

/** A tiny tmpfs mounted on `dir` (root only); false when it cannot be mounted. */
export function mountTinyTmpfs(dir: string, size = '512k'): boolean {
  return isRoot && mount(['-t', 'tmpfs', '-o', `size=${size},mode=0700`, 'tmpfs', dir]);
}

export function unmount(dir: string): void {
  execFileSync('umount', ['-l', dir], { stdio: 'ignore' });
}

/** Fill the file system holding `dir` with one file; returns its path (remove it to free the space). */
export function fillDisk(dir: string): string {
  const file = `${dir}/filler`;
  const fd = openSync(file, 'w');
  const chunk = Buffer.alloc(64 * 1024);
  try {
    for (;;) writeSync(fd, chunk);
  } catch {
    // ENOSPC: full.
  } finally {
    closeSync(fd);
  }
  return file;
}

export function freeDisk(filler: string): void {
  rmSync(filler, { force: true });
}

/** chmod for a process that is not root (the daemons under test run unprivileged when we are root). */
export function setWritable(dir: string, writable: boolean): void {
  chmodSync(dir, writable ? 0o700 : 0o500);
}
