import { randomBytes } from 'node:crypto';
import {
  close,
  closeSync,
  existsSync,
  fdatasync,
  fsync,
  fsyncSync,
  linkSync,
  mkdirSync,
  open,
  openSync,
  renameSync,
  rmSync,
  statSync,
  unlinkSync,
  writeSync,
} from 'node:fs';
import { dirname } from 'node:path';
import { OverlayError } from '../util/errors.ts';

/**
 * Secret files: directory 0700, file 0600, written atomically (temp file in
 * the same directory, fsync, rename, fsync of the directory), so a crash
 * leaves either the old key or the new one, never half a key. With
 * `exclusive`, an existing file is kept and false is returned. With
 * `durable: false` nothing is fsynced (syncFileAndDir does it later): for a
 * file that can be made again, whose reader recognises a torn copy
 * (user-keys.ts); a crash may then leave the new name with a short file.
 */
export function writeSecretFileAtomic(
  file: string,
  data: string | Uint8Array,
  opts: { exclusive?: boolean; durable?: boolean } = {},
): boolean {
  const durable = opts.durable !== false;
  const dir = dirname(file);
  mkdirSync(dir, { recursive: true, mode: 0o700 });
  const tmp = `${file}.tmp-${process.pid}-${randomBytes(6).toString('hex')}`;
  const fd = openSync(tmp, 'wx', 0o600);
  try {
    writeSync(fd, typeof data === 'string' ? Buffer.from(data, 'utf8') : data);
    if (durable) fsyncSync(fd);
  } catch (e) {
    closeSync(fd);
    unlinkSync(tmp);
    throw e;
  }
  closeSync(fd);
  try {
    if (opts.exclusive) {
      // link() fails if the name exists: two processes creating a key at once cannot both win.
      try {
        linkSync(tmp, file);
      } catch (e) {
        if ((e as NodeJS.ErrnoException).code === 'EEXIST') return false;
        throw e;
      }
    } else {
      renameSync(tmp, file);
    }
  } finally {
    if (opts.exclusive) rmSync(tmp, { force: true });
    else if (existsSync(tmp)) rmSync(tmp, { force: true });
  }
  if (!durable) return true;
  try {
    const dfd = openSync(dir, 'r');
    try {
      fsyncSync(dfd);
    } finally {
      closeSync(dfd);
    }
  } catch {
    // Some platforms cannot fsync a directory; the rename itself is still atomic.
  }
  return true;
}

/**
 * fsync (or, with `dataOnly`, fdatasync) of the file or directory at `path` on libuv's thread pool, not
 * on the event loop. The callback API: fs/promises' FileHandle costs the event loop about twice as much
 * per call and three times the latency.
 */
export function syncPath(path: string, dataOnly = false): Promise<void> {
  return new Promise((resolve, reject) => {
    open(path, 'r', (err, fd) => {
      if (err) return reject(err);
      (dataOnly ? fdatasync : fsync)(fd, (syncErr) => {
        close(fd, () => (syncErr ? reject(syncErr) : resolve()));
      });
    });
  });
}

/**
 * Make a file written by writeSecretFileAtomic with `durable: false` durable: fsync of the file, then of
 * its directory (the link), off the event loop.
 */
export async function syncFileAndDir(file: string): Promise<void> {
  await syncPath(file);
  // Some platforms cannot fsync a directory; the link itself is still atomic.
  await syncPath(dirname(file)).catch(() => {});
}

/** Refuse key files others can read, as ssh does: a leaked key is an impersonation. */
export function assertPrivateFile(file: string): void {
  const st = statSync(file);
  if (!st.isFile()) throw new OverlayError('IDENTITY_BAD_KEY', `${file} is not a regular file`);
  if (process.platform !== 'win32' && (st.mode & 0o077) !== 0) {
    throw new OverlayError(
      'IDENTITY_BAD_KEY',
      `${file} is accessible by others (mode ${(st.mode & 0o777).toString(8)}); chmod 600 it`,
    );
  }
}
