import { runWhanauSipCommand } from '../../whanausip/command.ts';

export { WHANAUSIP_SPEC as SPEC } from '../../whanausip/command.ts';

export const summary = 'WhanauSIP node: Whanau DHT member and SIP registrar for a phone';

/** `secp2psip node`: a phone registers as sip:<hash>@<node>; INVITEs to sip:<hash>@<node> get a 302 (seed 003 3.4.3). */
export function run(argv: string[]): Promise<number> {
  return runWhanauSipCommand('node', argv);
}
