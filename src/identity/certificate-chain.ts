import 'reflect-metadata';
import { type KeyObject, X509Certificate } from 'node:crypto';
import * as x509 from '@peculiar/x509';
import { fail, ok, type Result } from '../util/errors.ts';
import { MIN_RSA_BITS, type SignatureKind, signatureKind } from './signature.ts';

/** Longest chain followed from the leaf to a trust anchor. */
const MAX_DEPTH = 8;

export interface VerifiedCertificate {
  subject: string;
  publicKey: KeyObject;
  kind: SignatureKind;
  notAfter: Date;
  /** Subjects from the leaf up to (and including) the trust anchor. */
  path: string[];
}

interface Parsed {
  node: X509Certificate;
  der: Buffer;
  notBefore: Date;
  notAfter: Date;
  isCa: boolean;
  pathLength?: number;
  /** undefined when the certificate has no keyUsage extension */
  canSignCerts?: boolean;
  /** Memo of issued(this, parent): a signature check's answer never changes. */
  issuedBy: WeakMap<Parsed, boolean>;
}

/**
 * Parsing costs about a millisecond per certificate (two ASN.1 parsers), and
 * verifiers see the same CA bundle and intermediates again and again: parsed
 * certificates are cached by content. Only immutable facts are cached; every
 * check against `now` runs each time.
 */
const cache = new Map<string, Parsed>();
const CACHE_MAX = 512;

function parse(input: string | Uint8Array): Parsed {
  const id =
    typeof input === 'string'
      ? input
      : Buffer.from(input.buffer, input.byteOffset, input.byteLength).toString('base64');
  const hit = cache.get(id);
  if (hit) return hit;
  const parsed = parseUncached(input);
  if (cache.size >= CACHE_MAX) cache.delete(cache.keys().next().value as string);
  cache.set(id, parsed);
  return parsed;
}

function parseUncached(input: string | Uint8Array): Parsed {
  const node = new X509Certificate(typeof input === 'string' ? input : Buffer.from(input));
  const der = node.raw;
  const p = new x509.X509Certificate(der);
  const bc = p.getExtension(x509.BasicConstraintsExtension);
  const ku = p.getExtension(x509.KeyUsagesExtension);
  return {
    node,
    der,
    notBefore: p.notBefore,
    notAfter: p.notAfter,
    isCa: bc?.ca === true,
    pathLength: bc?.pathLength,
    canSignCerts: ku ? (ku.usages & x509.KeyUsageFlags.keyCertSign) !== 0 : undefined,
    issuedBy: new WeakMap(),
  };
}

/** Keys we accept in a chain: Ed25519, ECDSA P-256 (P-384 for CAs), RSA >= 2048 bits. */
function keyProblem(key: KeyObject, isIssuer: boolean): string | undefined {
  const t = key.asymmetricKeyType;
  if (t === 'rsa') {
    const bits = key.asymmetricKeyDetails?.modulusLength ?? 0;
    return bits >= MIN_RSA_BITS ? undefined : `RSA key of ${bits} bits (minimum ${MIN_RSA_BITS})`;
  }
  if (signatureKind(key)) return undefined;
  if (isIssuer && t === 'ec' && key.asymmetricKeyDetails?.namedCurve === 'secp384r1') return undefined;
  return `unsupported key ${t}${t === 'ec' ? ` ${key.asymmetricKeyDetails?.namedCurve}` : ''}`;
}

function validityProblem(c: Parsed, now: number): string | undefined {
  if (now < c.notBefore.getTime()) return `${c.node.subject} not valid before ${c.notBefore.toISOString()}`;
  if (now > c.notAfter.getTime()) return `${c.node.subject} expired ${c.notAfter.toISOString()}`;
  return undefined;
}

/** Name chaining and signature only; whether the issuer may issue is checked separately so errors say why. */
function issued(child: Parsed, parent: Parsed): boolean {
  const known = child.issuedBy.get(parent);
  if (known !== undefined) return known;
  let yes: boolean;
  try {
    yes = child.node.issuer === parent.node.subject && child.node.verify(parent.node.publicKey);
  } catch {
    yes = false;
  }
  child.issuedBy.set(parent, yes);
  return yes;
}

/**
 * Verify a user certificate up to a configured trust anchor (RFC 5280 section
 * 6.1, the subset that matters here): each signature verifies under its
 * issuer's key, every certificate (anchor included) is inside its validity
 * period at `now`, every issuer is a CA (basicConstraints cA, keyCertSign when
 * keyUsage is present, pathLenConstraint respected), and every key is
 * acceptable (RSA below 2048 bits refused). `chain` holds intermediates in any
 * order. Never throws.
 */
export function verifyCertificateChain(
  leaf: string | Uint8Array,
  chain: readonly (string | Uint8Array)[],
  caBundle: readonly (string | Uint8Array)[],
  now: Date | number,
): Result<VerifiedCertificate> {
  const at = typeof now === 'number' ? now : now.getTime();
  let leafC: Parsed;
  const intermediates: Parsed[] = [];
  const anchors: Parsed[] = [];
  try {
    leafC = parse(leaf);
    for (const c of chain) intermediates.push(parse(c));
    for (const c of caBundle) anchors.push(parse(c));
  } catch (e) {
    return fail(`unreadable certificate: ${(e as Error).message}`);
  }
  if (anchors.length === 0) return fail('no trust anchors configured');

  const leafKey = leafC.node.publicKey;
  const kind = signatureKind(leafKey);
  const leafKeyProblem = keyProblem(leafKey, false);
  if (leafKeyProblem || !kind) return fail(`leaf: ${leafKeyProblem ?? 'unsupported key'}`);
  const leafTime = validityProblem(leafC, at);
  if (leafTime) return fail(leafTime);

  const path: string[] = [leafC.node.subject];
  const used = new Set<string>([leafC.der.toString('base64')]);
  let cur = leafC;
  for (let depth = 0; depth < MAX_DEPTH; depth++) {
    const anchor = anchors.find((a) => issued(cur, a));
    const parent = anchor ?? intermediates.find((c) => !used.has(c.der.toString('base64')) && issued(cur, c));
    if (!parent) return fail(`no trusted issuer found for ${cur.node.subject}`);
    const problem = issuerProblem(parent, depth, at);
    if (problem) return fail(problem);
    path.push(parent.node.subject);
    if (anchor) {
      return ok({ subject: leafC.node.subject, publicKey: leafKey, kind, notAfter: leafC.notAfter, path });
    }
    used.add(parent.der.toString('base64'));
    cur = parent;
  }
  return fail(`chain longer than ${MAX_DEPTH}`);
}

/** `below` = number of intermediate CA certificates between this issuer and the leaf. */
function issuerProblem(c: Parsed, below: number, at: number): string | undefined {
  if (!c.isCa) return `${c.node.subject} is not a CA (basicConstraints)`;
  if (c.canSignCerts === false) return `${c.node.subject} may not sign certificates (keyUsage)`;
  if (c.pathLength !== undefined && below > c.pathLength) return `${c.node.subject} pathLenConstraint exceeded`;
  const keyIssue = keyProblem(c.node.publicKey, true);
  if (keyIssue) return `${c.node.subject}: ${keyIssue}`;
  return validityProblem(c, at);
}
