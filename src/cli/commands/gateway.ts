import { runWhanauSipCommand } from '../../whanausip/command.ts';

export { WHANAUSIP_SPEC as SPEC } from '../../whanausip/command.ts';

export const summary = 'WhanauSIP gateway: answers sip:<hash>@gateway with a 302';

/** `secp2psip gateway`: INVITE sip:<40-hex>@gateway gets a 302 to the record found in the DHT (seed 003 4.7). */
export function run(argv: string[]): Promise<number> {
  return runWhanauSipCommand('gateway', argv);
}
