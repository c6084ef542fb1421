/**
 * The `dosna` command line:
 *   dosna ls     [connection flags] [--json]             the datasets of a connection
 *   dosna info   <dataset> [connection flags] [--json]   shape, dtype, chunks, fill value, stored chunks and bytes
 *   dosna launch -n N script [args...]                    run a script as N ranks (cluster-rank engine)
 *   dosna bench  [bench flags]                            the benchmark command (from a checkout)
 * Exit codes: 0 success, 1 the operation failed (message on stderr), 2 bad usage.
 */
import { spawnSync } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';
import * as dn from '../index.js';
import { bytesPerElement } from '../dtypes.js';
import { parseConnectionArgs, toConnectionOptions } from './connection-args.js';
import { launch } from './launch.js';

const CONNECTION_HELP = `connection flags (as run_tests.sh and the examples):
  --backend B                 ram, hdf5, s3 or ceph (default ram)
  --connection NAME           the connection: a folder (hdf5) or bucket (s3, ceph)
  --connection-options k=v    backend options, e.g. directory=/data endpoint=http://host:7480`;

const HELP = `usage: dosna <command> [options]

commands:
  ls                          list the datasets of a connection
  info <dataset>              describe a dataset: shape, dtype, chunks, fill value, stored chunks and bytes
  launch -n N script [args]   run a script as N ranks on this host (cluster-rank engine)
  bench [flags]               run the benchmark command (npm run bench) from a checkout

Run 'dosna <command> --help' for a command's options. Exit codes: 0 ok, 1 failed, 2 bad usage.`;

const LS_HELP = `usage: dosna ls --connection NAME [--backend B] [--connection-options k=v ...] [--json]

Lists the datasets of the connection, one per line (--json: a JSON array).

${CONNECTION_HELP}`;

const INFO_HELP = `usage: dosna info <dataset> --connection NAME [--backend B] [--connection-options k=v ...] [--json]

Prints the dataset's shape, dtype, chunk size and grid, fill value, and its stored chunks and bytes.

${CONNECTION_HELP}`;

const LAUNCH_HELP = `usage: dosna launch -n N [--port P] [--grace S] [--tag-output] script [args...]

  -n, --ranks N    number of ranks (processes) to run
  --port P         port of rank 0's hub (MASTER_PORT); a free one by default
  --grace S        seconds the other ranks get after one fails (default 10)
  --tag-output     prefix every output line with [rank]

Exit code: 0 when every rank succeeds, else the first failing rank's code.`;

class UsageError extends Error {}

const stringify = (value: unknown) => JSON.stringify(value, (_k, v) => (typeof v === 'bigint' ? v.toString() : v), 2);

async function withCliConnection<T>(argv: readonly string[], help: string, fn: (con: dn.Connection, positionals: string[], json: boolean) => Promise<T>): Promise<number> {
  let parsed;
  try {
    parsed = parseConnectionArgs(argv, { json: { type: 'boolean', default: false }, help: { type: 'boolean', short: 'h' } });
  } catch (error) {
    throw new UsageError(`${(error as Error).message}\n\n${help}`);
  }
  const { args, values, positionals } = parsed;
  if (values.help) {
    console.log(help);
    return 0;
  }
  if (!args.connection) throw new UsageError(`--connection NAME is required\n\n${help}`);
  await dn.withConnection(args.connection, toConnectionOptions(args), (con) => fn(con, positionals, values.json as boolean));
  return 0;
}

async function ls(argv: readonly string[]): Promise<number> {
  return withCliConnection(argv, LS_HELP, async (con, positionals, json) => {
    if (positionals.length > 0) throw new UsageError(`ls takes no arguments, got ${positionals.join(' ')}\n\n${LS_HELP}`);
    const names = await con.listDatasets();
    console.log(json ? stringify(names) : names.join('\n'));
  });
}

async function info(argv: readonly string[]): Promise<number> {
  return withCliConnection(argv, INFO_HELP, async (con, positionals, json) => {
    if (positionals.length !== 1) throw new UsageError(`info needs exactly one dataset name\n\n${INFO_HELP}`);
    const ds = await con.getDataset(positionals[0]);
    const stored = (await ds.storedChunks()).length;
    const chunkBytes = ds.chunkSize.reduce((a, b) => a * b, 1) * bytesPerElement(ds.dtype);
    const description = {
      name: ds.name, backend: con.backend, connection: con.name, shape: ds.shape, dtype: ds.dtype,
      chunkSize: ds.chunkSize, chunkGrid: ds.chunkGrid, totalChunks: ds.totalChunks, fillValue: ds.fillValue,
      storedChunks: stored, storedBytes: stored * chunkBytes, ...(ds.meta.options ? { options: ds.meta.options } : {}),
    };
    if (json) {
      console.log(stringify(description));
      return;
    }
    const rows: [string, string][] = [
      ['dataset', `${ds.name} (${con.backend} connection ${con.name})`],
      ['shape', ds.shape.join(' x ')],
      ['dtype', ds.dtype],
      ['chunk size', ds.chunkSize.join(' x ')],
      ['chunk grid', `${ds.chunkGrid.join(' x ')} (${ds.totalChunks} chunks)`],
      ['fill value', String(ds.fillValue)],
      ['stored chunks', `${stored} of ${ds.totalChunks}`],
      ['stored bytes', `${stored * chunkBytes} (${(stored * chunkBytes / 2 ** 20).toFixed(1)} MiB)`],
    ];
    if (ds.meta.options) rows.push(['options', JSON.stringify(ds.meta.options)]);
    for (const [k, v] of rows) console.log(`${k.padEnd(14)}${v}`);
  });
}

async function launchCommand(rest: readonly string[]): Promise<number> {
  // Options end at the script: everything after it belongs to the script.
  const scriptAt = rest.findIndex((a, i) => !a.startsWith('-') && !['-n', '--ranks', '--port', '--grace'].includes(rest[i - 1]));
  const own = scriptAt < 0 ? rest : rest.slice(0, scriptAt);
  let values;
  try {
    ({ values } = parseArgs({
      args: own.filter((a) => a !== '--'),
      options: { ranks: { type: 'string', short: 'n' }, port: { type: 'string' }, grace: { type: 'string' }, 'tag-output': { type: 'boolean' }, help: { type: 'boolean', short: 'h' } },
      strict: true,
    }));
  } catch (error) {
    throw new UsageError(`${(error as Error).message}\n\n${LAUNCH_HELP}`);
  }
  if (values.help) {
    console.log(LAUNCH_HELP);
    return 0;
  }
  const ranks = Number(values.ranks);
  if (scriptAt < 0 || !Number.isInteger(ranks) || ranks < 1) throw new UsageError(`launch needs -n N (a positive integer) and a script\n\n${LAUNCH_HELP}`);
  return launch({
    ranks, script: rest[scriptAt], args: rest.slice(scriptAt + 1),
    port: values.port ? Number(values.port) : undefined,
    graceSeconds: values.grace ? Number(values.grace) : undefined,
    tagOutput: values['tag-output'],
  });
}

function bench(rest: readonly string[]): number {
  const root = fileURLToPath(new URL('../..', import.meta.url));
  const result = spawnSync('npm', ['run', 'bench', '--', ...rest], { cwd: root, stdio: 'inherit' });
  return result.status ?? 1;
}

/** Runs the command line; returns the exit code. */
export async function main(argv: readonly string[]): Promise<number> {
  const [command, ...rest] = argv;
  try {
    switch (command) {
      case undefined: console.error(HELP); return 2;
      case '--help': case '-h': case 'help': console.log(HELP); return 0;
      case 'ls': return await ls(rest);
      case 'info': return await info(rest);
      case 'launch': return await launchCommand(rest);
      case 'bench': return bench(rest);
      default: throw new UsageError(`unknown command '${command}'\n\n${HELP}`);
    }
  } catch (error) {
    if (error instanceof UsageError) {
      console.error(`dosna: ${error.message}`);
      return 2;
    }
    const e = error as Error;
    console.error(`dosna: ${e.name}: ${e.message}`);
    return 1;
  }
}
