/**
 * `--add-user NAME [--password P]` and `--remove-user NAME` of `secp2psip
 * adapter` and `secp2psip node`: edit the phone users of the data directory
 * (phone-credentials.ts); the command prints the line returned and exits.
 * A running daemon sees the change within a second.
 */
import { addPhoneUser, removePhoneUser } from './phone-credentials.ts';
import { dataDirOption, type ParsedArgs } from '../util/args.ts';
import { OverlayError } from '../util/errors.ts';

/** The line to print when the command line asked for a phone-user change (done), else undefined (run the daemon). */
export function phoneUserOptions(args: ParsedArgs, role: string): string | undefined {
  const add = args['add-user'];
  const remove = args['remove-user'];
  if (add === undefined && remove === undefined) {
    if (args.password !== undefined) throw new OverlayError('BAD_ARGUMENT', '--password goes with --add-user');
    return undefined;
  }
  if (add !== undefined && remove !== undefined)
    throw new OverlayError('BAD_ARGUMENT', '--add-user and --remove-user cannot be combined');
  const dir = dataDirOption(args);
  if (add !== undefined) {
    const name = String(add);
    const given = args.password === undefined ? undefined : String(args.password);
    const password = addPhoneUser(dir, name, given);
    return given === undefined ? `user ${name} added; password ${password}` : `user ${name} added`;
  }
  const name = String(remove);
  if (!removePhoneUser(dir, name))
    throw new OverlayError('BAD_ARGUMENT', `--remove-user: no phone user '${name}' in ${dir} (${role})`);
  return `user ${name} removed`;
}
