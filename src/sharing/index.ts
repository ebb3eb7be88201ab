export { choosePieceIndices, combineSeed } from './combine-seed.ts';
export { combineRobust, type RobustResult } from './combine-robust.ts';
export {
  decodePiece,
  decodePieceAt,
  encodePiece,
  isWellFormedPiece,
  MAX_PIECES,
  MAX_SECRET_BYTES,
  type PubKeyPiece,
  pieceCheck,
} from './piece.ts';
export { splitKey } from './split.ts';
