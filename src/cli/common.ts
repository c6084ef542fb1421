/**
 * What the `dosna` subcommands share: the usage error (exit code 2), the connection flags' help,
 * and opening the connection the flags name.
 */
import { type ParseArgsConfig } from 'node:util';
import * as dn from '../index.js';
import { parseConnectionArgs, toConnectionOptions } from './connection-args.js';

export const CONNECTION_HELP = `connection flags (as run_tests.sh and the examples):
  --backend B                 ram, hdf5, s3, ceph or zarr (default ram)
  --connection NAME           the connection: a folder (hdf5) or bucket (s3, ceph)
  --connection-options k=v    backend options, e.g. directory=/data endpoint=http://host:7480`;

/** Bad usage: printed with the command's help, exit code 2. */
export class UsageError extends Error {}

/**
 * Parses a command's flags (the connection's, --json, --help and `flags`), opens the connection
 * and runs `fn` in it; prints `help` for --help. A backend whose datasets live in one process's
 * memory (ram) is refused: a new process sees none of them.
 */
export async function withCliConnection<T>(
  argv: readonly string[], help: string, flags: ParseArgsConfig['options'],
  fn: (con: dn.Connection, positionals: string[], json: boolean, values: Record<string, unknown>) => Promise<T>,
): Promise<number> {
  let parsed;
  try {
    parsed = parseConnectionArgs(argv, { json: { type: 'boolean', default: false }, help: { type: 'boolean', short: 'h' }, ...flags });
  } catch (error) {
    throw new UsageError(`${(error as Error).message}\n\n${help}`);
  }
  const { args, values, positionals } = parsed;
  if (values.help) {
    console.log(help);
    return 0;
  }
  if (!args.connection) throw new UsageError(`--connection NAME is required\n\n${help}`);
  await dn.withConnection(args.connection, toConnectionOptions(args), (con) => {
    if (con.store.capabilities.processLocal) {
      throw new UsageError(`the ${con.backend} backend keeps datasets in the memory of the process that made them, `
        + 'so this new process sees none; use a backend that stores them (--backend hdf5, s3 or ceph)');
    }
    return fn(con, positionals, values.json as boolean, values);
  });
  return 0;
}
