/**
 * The SecP2PSIP overlay on the in-memory network for tests: one or more
 * bootstraps and adapters on a simulated clock (src/harness/memory-overlay.ts),
 * under the names the tests use.
 */
export {
  bindPhone,
  MemoryOverlay as SecTestnet,
  type MemoryOverlayInit as TestnetInit,
  phoneInvite,
  phoneMessage,
} from '../../src/harness/memory-overlay.ts';
