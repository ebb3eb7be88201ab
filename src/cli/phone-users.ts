/**
 * `--add-user NAME [--password P]` and `--remove-user NAME` of `secp2psip
 * adapter` and `secp2psip node`: edit the phone users of the data directory
 * (sip/phone-credentials.ts) and exit. A running daemon sees the change
 * within a second.
 */
import { addPhoneUser, removePhoneUser } from '../sip/phone-credentials.ts';
import { dataDirOption, type ParsedArgs } from '../util/args.ts';
import { OverlayError } from '../util/errors.ts';

/** The exit code when the command line asked for a phone-user change, else undefined (run the daemon). */
export function phoneUserCommand(args: ParsedArgs, role: string): number | undefined {
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
    process.stdout.write(given === undefined ? `user ${name} added; password ${password}\n` : `user ${name} added\n`);
    return 0;
  }
  const name = String(remove);
  if (!removePhoneUser(dir, name))
    throw new OverlayError('BAD_ARGUMENT', `--remove-user: no phone user '${name}' in ${dir} (${role})`);
  process.stdout.write(`user ${name} removed\n`);
  return 0;
}
