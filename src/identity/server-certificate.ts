import { X509Certificate, createPrivateKey } from 'node:crypto';
import { existsSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { createSecureContext } from 'node:tls';
import { OverlayError } from '../util/errors.ts';
import { createServerCertificate } from './certificates.ts';
import { assertPrivateFile, writeSecretFileAtomic } from './key-file.ts';

/**
 * The certificate a daemon shows phones on its SIP over TLS and WSS ports
 * (RFC 3261 26.2, RFC 7118). Either the operator's (`--sip-tls-cert`,
 * `--sip-tls-key`, e.g. from an ACME client), or one made at first start and
 * kept in the data directory (`sip-tls/cert.pem`, `sip-tls/key.pem` 0600):
 * self-signed, so phones pin its SHA-256 fingerprint, which the daemon prints.
 * Both files are read again on SIGHUP (`reload`), so a renewed certificate
 * takes effect without a restart.
 */
export interface ServerCertificate {
  cert: string;
  key: string;
  /** SHA-256 of the DER certificate as `AA:BB:...`, the form phones and `openssl x509 -fingerprint` show. */
  fingerprint: string;
  /** Where it was read from (undefined: made in memory, no data directory). */
  certFile?: string;
  keyFile?: string;
  /** Made at this start. */
  created: boolean;
}

export interface ServerCertificateSource {
  certFile?: string;
  keyFile?: string;
  /** Where a made certificate is kept when no files are given; in memory only when absent too. */
  dataDir?: string;
  /** Names (IP addresses, host names) a made certificate is for. */
  names: string[];
}

/** The files of a certificate made and kept in the data directory. */
export function generatedCertificateFiles(dataDir: string): { certFile: string; keyFile: string } {
  return { certFile: join(dataDir, 'sip-tls', 'cert.pem'), keyFile: join(dataDir, 'sip-tls', 'key.pem') };
}

/** Read and check a certificate and its key: a pair that TLS could not use is a one-line error naming the file. */
export function readServerCertificate(certFile: string, keyFile: string): ServerCertificate {
  let cert: string;
  let key: string;
  try {
    cert = readFileSync(certFile, 'utf8');
  } catch (e) {
    throw new OverlayError('BAD_CONFIG', `TLS certificate ${certFile}: ${(e as Error).message}`);
  }
  try {
    assertPrivateFile(keyFile);
    key = readFileSync(keyFile, 'utf8');
  } catch (e) {
    throw new OverlayError('BAD_CONFIG', `TLS key ${keyFile}: ${(e as Error).message}`);
  }
  return checked(cert, key, certFile, keyFile, false);
}

function checked(
  cert: string,
  key: string,
  certFile: string | undefined,
  keyFile: string | undefined,
  created: boolean,
) {
  let x: X509Certificate;
  try {
    x = new X509Certificate(cert);
  } catch (e) {
    throw new OverlayError(
      'BAD_CONFIG',
      `TLS certificate ${certFile ?? ''}: not a PEM certificate (${(e as Error).message})`,
    );
  }
  try {
    if (!x.checkPrivateKey(createPrivateKey(key))) throw new Error('the key does not belong to the certificate');
    createSecureContext({ cert, key });
  } catch (e) {
    throw new OverlayError('BAD_CONFIG', `TLS key ${keyFile ?? ''}: ${(e as Error).message}`);
  }
  return { cert, key, fingerprint: x.fingerprint256, certFile, keyFile, created };
}

/**
 * The configured certificate, else the one kept in the data directory, else a new one (kept there when there is
 * a data directory). Giving only one of the two files is an error.
 */
export async function loadServerCertificate(src: ServerCertificateSource): Promise<ServerCertificate> {
  if ((src.certFile === undefined) !== (src.keyFile === undefined))
    throw new OverlayError('BAD_ARGUMENT', '--sip-tls-cert and --sip-tls-key go together: give both or neither');
  if (src.certFile && src.keyFile) return readServerCertificate(src.certFile, src.keyFile);
  if (src.dataDir) {
    const { certFile, keyFile } = generatedCertificateFiles(src.dataDir);
    if (existsSync(certFile) && existsSync(keyFile)) return readServerCertificate(certFile, keyFile);
    const made = await createServerCertificate(src.names);
    // Key first, exclusively: two daemons starting on one directory cannot end up with mismatched halves.
    if (writeSecretFileAtomic(keyFile, made.keyPem, { exclusive: true })) {
      writeSecretFileAtomic(certFile, made.certPem);
      return checked(made.certPem, made.keyPem, certFile, keyFile, true);
    }
    return readServerCertificate(certFile, keyFile);
  }
  const made = await createServerCertificate(src.names);
  return checked(made.certPem, made.keyPem, undefined, undefined, true);
}

/** Read the files again (SIGHUP); a certificate made in memory stays as it is. */
export function reloadServerCertificate(current: ServerCertificate): ServerCertificate {
  if (!current.certFile || !current.keyFile) return current;
  return readServerCertificate(current.certFile, current.keyFile);
}
