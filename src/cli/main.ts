/**
 * The `dosna` command line:
 *   dosna ls     [GROUP] [--recursive] [connection flags] [--json]   the datasets and groups of a connection
 *   dosna info   [dataset|group] [connection flags] [--json]   shape, dtype, chunks, fill value, stored chunks and bytes, attributes
 *   dosna export DATASET FILE [--path P] [--overwrite]       one HDF5 file holding the dataset
 *   dosna import FILE PATH DATASET [--compression C]        a dataset from an HDF5 dataset
 *   dosna launch -n N script [args...]                    run a script as N ranks (cluster-rank engine)
 *   dosna serve  [--host H] [--port P] [--token T]         the viewer page and the h5grove API over HTTP
 *   dosna view   DATASET -o FILE.png [--axis A --index I]  one slice as a PNG
 *   dosna worker --redis URL [--queue Q] [--concurrency N]  a queue engine worker
 *   dosna bench  [bench flags]                            the benchmark command (from a checkout)
 *   dosna --version
 * Exit codes: 0 success, 1 the operation failed (message on stderr), 2 bad usage.
 */
import { spawnSync } from 'node:child_process';
import { existsSync, readFileSync } from 'node:fs';
import { resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';
import * as dn from '../index.js';
import { bytesPerElement } from '../dtypes.js';
import { describeCompression } from '../codecs/index.js';
import { CONNECTION_HELP, UsageError, withCliConnection } from './common.js';
import { launch } from './launch.js';
import { serveCommand } from './serve.js';
import { viewCommand } from './view.js';
import { workerCommand } from './worker.js';

const HELP = `usage: dosna <command> [options]

commands:
  ls [group]                  list the datasets and groups of a connection (or of one group)
  info [dataset|group]        describe a dataset (shape, dtype, chunks, stored bytes, attributes) or a group
  export DATASET FILE         write a dataset to one HDF5 file (h5py, HDFView, H5Web open it)
  import FILE PATH DATASET    make a dataset from an HDF5 dataset
  launch -n N script [args]   run a script as N ranks on this host (cluster-rank engine)
  serve                       serve the connection over HTTP: a viewer page, and the h5grove API for H5Web
  view DATASET -o FILE.png    draw one slice of a dataset as a PNG with a colour bar
  worker --redis URL          run the chunk tasks of scripts using the queue engine
  bench [flags]               run the benchmark command (npm run bench) from a checkout

Run 'dosna <command> --help' for a command's options; 'dosna --version' prints the version.
Exit codes: 0 ok, 1 failed, 2 bad usage.`;

const LS_HELP = `usage: dosna ls [GROUP] --connection NAME [--backend B] [--connection-options k=v ...] [--recursive] [--json]

Lists the datasets and groups at the top of the connection, or in GROUP (a path such as
scan1/raw), one per line; groups end in '/'. --recursive lists everything below, as paths.
--json prints an array of { path, kind } objects.

${CONNECTION_HELP}`;

const INFO_HELP = `usage: dosna info [dataset | group] --connection NAME [--backend B] [--connection-options k=v ...] [--json]

For a dataset (a path such as scan1/vol): its shape, dtype, chunk size and grid, fill value,
compression, stored chunks and bytes (and their ratio to the raw bytes), and attributes. For a group (the root when none is named): what it
holds and its attributes.

${CONNECTION_HELP}`;

const LAUNCH_HELP = `usage: dosna launch -n N [--port P] [--grace S] [--tag-output] script [args...]

  -n, --ranks N    number of ranks (processes) to run
  --port P         port of rank 0's hub (MASTER_PORT); a free one by default
  --grace S        seconds the other ranks get after one fails (default 10)
  --tag-output     prefix every output line with [rank]

Exit code: 0 when every rank succeeds, else the first failing rank's code.`;

/** An attribute as text: typed arrays with their dtype (`float32[2] [0.5, 0.25]`), the rest as JSON. */
function showAttr(value: dn.AttrValue): string {
  if (ArrayBuffer.isView(value)) {
    const items = Array.from(value as ArrayLike<number | bigint>, String);
    const dtype = value.constructor.name.replace(/Array$/, '').replace('BigInt', 'int').replace('BigUint', 'uint').toLowerCase();
    return `${dtype}[${items.length}] [${items.slice(0, 8).join(', ')}${items.length > 8 ? ', ...' : ''}]`;
  }
  if (typeof value === 'bigint') return `${value}n`;
  if (typeof value === 'number' && !Number.isFinite(value)) return String(value);
  return JSON.stringify(value);
}

/** An attribute as JSON for --json (typed arrays as arrays, bigints and non-finite numbers as strings). */
function jsonAttr(value: dn.AttrValue): unknown {
  if (ArrayBuffer.isView(value)) return Array.from(value as ArrayLike<number | bigint>, (v) => (typeof v === 'bigint' ? v.toString() : v));
  if (typeof value === 'bigint') return value.toString();
  if (typeof value === 'number' && !Number.isFinite(value)) return String(value);
  return value;
}

const mebibytes = (bytes: number) => `${(bytes / 2 ** 20).toFixed(bytes < 2 ** 20 ? 3 : 1)} MiB`;

const stringify = (value: unknown) => JSON.stringify(value, (_k, v) => (typeof v === 'bigint' ? v.toString() : v), 2);

async function ls(argv: readonly string[]): Promise<number> {
  return withCliConnection(argv, LS_HELP, { recursive: { type: 'boolean', short: 'r', default: false } }, async (con, positionals, json, values) => {
    if (positionals.length > 1) throw new UsageError(`ls takes at most one group, got ${positionals.join(' ')}\n\n${LS_HELP}`);
    const group = positionals[0] ?? '';
    const entries: { path: string; kind: string }[] = [];
    const walk = async (path: string) => {
      for (const e of await con.list(path)) {
        const full = path ? `${path}/${e.name}` : e.name;
        entries.push({ path: values.recursive || !path ? full : e.name, kind: e.kind });
        if (values.recursive && e.kind === 'group') await walk(full);
      }
    };
    await walk(group.replace(/^\/+|\/+$/g, ''));
    console.log(json ? stringify(entries) : entries.map((e) => (e.kind === 'group' ? `${e.path}/` : e.path)).join('\n'));
  });
}

async function info(argv: readonly string[]): Promise<number> {
  return withCliConnection(argv, INFO_HELP, {}, async (con, positionals, json) => {
    if (positionals.length > 1) throw new UsageError(`info takes one dataset or group, got ${positionals.join(' ')}\n\n${INFO_HELP}`);
    const path = positionals[0] ?? '';
    if (path.replace(/^\/+|\/+$/g, '') === '' || (await con.hasGroup(path))) await groupInfo(con, await con.getGroup(path), json);
    else await datasetInfo(con, await con.getDataset(path), json);
  });
}

/** Prints `name = value` lines under an `attributes` row. */
function printAttrs(attrs: dn.Attrs): void {
  const names = Object.keys(attrs);
  console.log(`${'attributes'.padEnd(14)}${names.length === 0 ? 'none' : names.length}`);
  for (const name of names) console.log(`  ${name} = ${showAttr(attrs[name])}`);
}

const jsonAttrs = (attrs: dn.Attrs) => Object.fromEntries(Object.entries(attrs).map(([k, v]) => [k, jsonAttr(v)]));

async function groupInfo(con: dn.Connection, group: dn.Group, json: boolean): Promise<void> {
  const children = await group.list();
  const attrs = await group.attrs.toObject();
  const count = (kind: string) => children.filter((c) => c.kind === kind).length;
  if (json) {
    console.log(stringify({ group: group.path, backend: con.backend, connection: con.name, datasets: count('dataset'), groups: count('group'), attrs: jsonAttrs(attrs) }));
    return;
  }
  console.log(`${'group'.padEnd(14)}${group.path || '/'} (${con.backend} connection ${con.name})`);
  console.log(`${'holds'.padEnd(14)}${count('dataset')} datasets, ${count('group')} groups`);
  printAttrs(attrs);
}

async function datasetInfo(con: dn.Connection, ds: dn.Dataset, json: boolean): Promise<void> {
  const stored = (await ds.storedChunks()).length;
  const attrs = await ds.attrs.toObject();
  const storedBytes = await ds.storedBytes();
  const rawBytes = ds.shape.reduce((a, b) => a * b, 1) * bytesPerElement(ds.dtype);
  const chunkRawBytes = ds.chunkSize.reduce((a, b) => a * b, 1) * bytesPerElement(ds.dtype);
  if (json) {
    console.log(stringify({
      name: ds.name, backend: con.backend, connection: con.name, shape: ds.shape, dtype: ds.dtype,
      chunkSize: ds.chunkSize, chunkGrid: ds.chunkGrid, totalChunks: ds.totalChunks, fillValue: ds.fillValue,
      compression: ds.meta.compression ?? null, storedChunks: stored, storedBytes, rawBytes,
      // Stored bytes over the raw bytes of the chunks stored (what compression saved).
      ratio: stored === 0 ? null : storedBytes / (stored * chunkRawBytes),
      attrs: jsonAttrs(attrs), ...(ds.meta.options ? { options: ds.meta.options } : {}),
    }));
    return;
  }
  const rows: [string, string][] = [
    ['dataset', `${ds.name} (${con.backend} connection ${con.name})`],
    ['shape', ds.shape.join(' x ')],
    ['dtype', ds.dtype],
    ['chunk size', ds.chunkSize.join(' x ')],
    ['chunk grid', `${ds.chunkGrid.join(' x ')} (${ds.totalChunks} chunks)`],
    ['fill value', String(ds.fillValue)],
    ['compression', describeCompression(ds.meta.compression)],
    ['stored chunks', `${stored} of ${ds.totalChunks}`],
    ['stored bytes', `${storedBytes} (${mebibytes(storedBytes)}; the whole array is ${mebibytes(rawBytes)} uncompressed)`],
  ];
  if (stored > 0) rows.push(['ratio', `${(storedBytes / (stored * chunkRawBytes)).toFixed(3)} (stored bytes / raw bytes of the chunks stored)`]);
  if (ds.meta.options) rows.push(['options', JSON.stringify(ds.meta.options)]);
  for (const [k, v] of rows) console.log(`${k.padEnd(14)}${v}`);
  printAttrs(attrs);
}

const EXPORT_HELP = `usage: dosna export DATASET FILE --connection NAME [--backend B] [--connection-options k=v ...] [--path /in/file] [--overwrite]

Writes the dataset to FILE as one chunked HDF5 dataset (at --path, the dataset's path by default)
with its attributes, for h5py, HDFView or H5Web.

${CONNECTION_HELP}`;

const IMPORT_HELP = `usage: dosna import FILE PATH DATASET --connection NAME [--backend B] [--connection-options k=v ...] [--compression gzip|zstd|lz4]

Makes DATASET from the HDF5 dataset at PATH in FILE (chunked or contiguous), with its chunks,
compression and attributes.

${CONNECTION_HELP}`;

async function exportCommand(argv: readonly string[]): Promise<number> {
  return withCliConnection(argv, EXPORT_HELP, { path: { type: 'string' }, overwrite: { type: 'boolean', default: false } }, async (con, positionals, _json, values) => {
    if (positionals.length !== 2) throw new UsageError(`export takes a dataset and a file\n\n${EXPORT_HELP}`);
    const ds = await con.getDataset(positionals[0]);
    await ds.exportHdf5(positionals[1], { ...(values.path ? { path: values.path as string } : {}), overwrite: values.overwrite as boolean });
    console.log(`wrote ${ds.name} (${ds.shape.join(' x ')} ${ds.dtype}) to ${positionals[1]}`);
  });
}

async function importCommand(argv: readonly string[]): Promise<number> {
  return withCliConnection(argv, IMPORT_HELP, { compression: { type: 'string' } }, async (con, positionals, _json, values) => {
    if (positionals.length !== 3) throw new UsageError(`import takes a file, a path in it and a dataset name\n\n${IMPORT_HELP}`);
    const [file, objPath, name] = positionals;
    const ds = await con.importHdf5(file, objPath, name, values.compression ? { compression: values.compression as dn.CompressionName } : undefined);
    console.log(`made ${ds.name} (${ds.shape.join(' x ')} ${ds.dtype}, chunks ${ds.chunkSize.join(' x ')}) from ${file}:${objPath}`);
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
  const script = rest[scriptAt];
  if (!existsSync(resolve(script))) throw new UsageError(`launch: no such script ${JSON.stringify(script)} (looked in ${process.cwd()})`);
  return launch({
    ranks, script, args: rest.slice(scriptAt + 1),
    port: values.port ? Number(values.port) : undefined,
    graceSeconds: values.grace ? Number(values.grace) : undefined,
    tagOutput: values['tag-output'],
  });
}

/** The benchmark's flags (bench/options.ts), from a checkout; undefined in an installed package. */
async function benchOptions(): Promise<{ BENCH_HELP: string; parseBenchArgs: (argv: readonly string[]) => { help: boolean } } | undefined> {
  const file = new URL('../../bench/options.ts', import.meta.url);
  return existsSync(file) ? import(file.href) : undefined;
}

async function bench(rest: readonly string[]): Promise<number> {
  const root = fileURLToPath(new URL('../..', import.meta.url));
  const flags = await benchOptions();
  if (!flags) throw new UsageError('dosna bench runs from a checkout of dosna: the benchmark is not part of the installed package');
  let parsed;
  try {
    parsed = flags.parseBenchArgs(rest);
  } catch (error) {
    throw new UsageError(`bench: ${(error as Error).message}\n\n${flags.BENCH_HELP}`);
  }
  if (parsed.help) {
    console.log(flags.BENCH_HELP);
    return 0;
  }
  const result = spawnSync('npm', ['run', 'bench', '--', ...rest], { cwd: root, stdio: 'inherit' });
  return result.status ?? 1;
}

function version(): string {
  return (JSON.parse(readFileSync(new URL('../../package.json', import.meta.url), 'utf8')) as { version: string }).version;
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
      case 'export': return await exportCommand(rest);
      case 'import': return await importCommand(rest);
      case 'launch': return await launchCommand(rest);
      case 'serve': return await serveCommand(rest);
      case 'view': return await viewCommand(rest);
      case 'worker': return await workerCommand(rest);
      case 'bench': return await bench(rest);
      case '--version': case '-V': case 'version': console.log(`dosna ${version()}`); return 0;
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
