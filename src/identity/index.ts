export { bundlesEqual, decodeBundle, encodeBundle, type PublicBundle } from './bundle.ts';
export { bytesEqual, canonicalEncode, fromHex, safeDecode, toHex } from './cbor.ts';
export { type VerifiedCertificate, verifyCertificateChain } from './certificate-chain.ts';
export {
  type CertificateAuthority,
  type CertificateOptions,
  createCa,
  createNodeCertificate,
  generateKeyPair,
  type IssuedCertificate,
  issueCertificate,
  type KeyType,
} from './certificates.ts';
export { isNodeId, nodeIdFromKey, sha1Hex, sha256, sha256Hex } from './fingerprint.ts';
export { IDENTITY_FILE, Identity } from './identity.ts';
export { ENC_LEN, open, SEAL_INFO, seal } from './seal.ts';
export { MIN_RSA_BITS, type SignatureKind, signedBytes } from './signature.ts';
export { UserKey, UserSigner } from './user-key.ts';
export { decodeSigned, encodeSigned, type VerifyKey, verify, verifyObject } from './verify.ts';
export { ADMISSION_CONTEXT, type Admission, issueAdmission, verifyAdmission } from './admission.ts';
export { ReplayCache, type ReplayCacheOptions, type ReplayVerdict } from './replay-cache.ts';
