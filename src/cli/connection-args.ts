/**
 * The connection flags shared by run_tests.sh, the examples and the `dosna` command:
 * `--backend B --engine E --connection NAME --connection-options k=v ...`.
 * Built on node's own `util.parseArgs`, so no CLI dependency is needed.
 */
import { parseArgs, type ParseArgsConfig } from 'node:util';
import type { ConnectionOptions } from '../connection.js';

export interface ConnectionArgs {
  backend?: string;
  engine?: string;
  connection?: string;
  /** Backend options from `k=v` pairs; numbers and booleans typed. */
  connectionOptions: Record<string, unknown>;
  engineOptions: Record<string, unknown>;
}

export const connectionFlags = {
  backend: { type: 'string' },
  engine: { type: 'string' },
  connection: { type: 'string' },
  'connection-options': { type: 'string', multiple: true },
  'engine-options': { type: 'string', multiple: true },
} as const satisfies ParseArgsConfig['options'];

/** Parses `k=v` pairs; a value that is a number, `true` or `false` becomes one. */
export function parsePairs(pairs: readonly string[]): Record<string, unknown> {
  const out: Record<string, unknown> = {};
  for (const pair of pairs) {
    const eq = pair.indexOf('=');
    if (eq <= 0) throw new Error(`expected key=value, got ${JSON.stringify(pair)}`);
    const key = pair.slice(0, eq);
    const raw = pair.slice(eq + 1);
    out[key] = /^-?\d+(\.\d+)?$/.test(raw) ? Number(raw) : raw === 'true' ? true : raw === 'false' ? false : raw;
  }
  return out;
}

/**
 * Lets `--connection-options a=1 b=2` (several values after one flag, as DosNa's scripts
 * take them) through parseArgs, which wants one value per flag.
 */
export function expandMultiValueFlags(argv: readonly string[], flags: readonly string[]): string[] {
  const out: string[] = [];
  for (let i = 0; i < argv.length; i++) {
    const arg = argv[i];
    out.push(arg);
    if (flags.includes(arg)) {
      let first = true;
      while (i + 1 < argv.length && !argv[i + 1].startsWith('--') && argv[i + 1].includes('=')) {
        if (!first) out.push(arg);
        out.push(argv[++i]);
        first = false;
      }
    }
  }
  return out;
}

/** Parses the connection flags and any extra ones; unknown flags are errors. */
export function parseConnectionArgs<T extends ParseArgsConfig['options']>(argv: readonly string[], extra: T) {
  const { values, positionals } = parseArgs({
    args: expandMultiValueFlags(argv, ['--connection-options', '--engine-options']),
    options: { ...connectionFlags, ...extra },
    allowPositionals: true,
    strict: true,
  });
  const v = values as Record<string, unknown>;
  const args: ConnectionArgs = {
    backend: v.backend as string | undefined,
    engine: v.engine as string | undefined,
    connection: v.connection as string | undefined,
    connectionOptions: parsePairs((v['connection-options'] as string[] | undefined) ?? []),
    engineOptions: parsePairs((v['engine-options'] as string[] | undefined) ?? []),
  };
  return { args, values: v, positionals };
}

/**
 * Lets list flags take DosNa's argparse form (`--chunk-sizes 16 32`, `nargs='+'`) as well as
 * ours (`--chunk-sizes 16,32`): the values after such a flag, up to the next flag, are
 * joined with commas.
 */
export function joinListFlags(argv: readonly string[], flags: readonly string[]): string[] {
  const out: string[] = [];
  for (let i = 0; i < argv.length; i++) {
    const arg = argv[i];
    out.push(arg);
    if (arg === '--') {
      out.push(...argv.slice(i + 1));
      break;
    }
    if (!flags.includes(arg)) continue;
    const values: string[] = [];
    while (i + 1 < argv.length && !argv[i + 1].startsWith('-')) values.push(argv[++i]);
    if (values.length > 0) out.push(values.join(','));
  }
  return out;
}

/** Parses a list flag's value (`16,32` or `16, 32`) as positive integers; throws naming the flag. */
export function positiveIntegers(flag: string, text: string): number[] {
  const items = text.split(',').map((v) => v.trim()).filter((v) => v.length > 0);
  const numbers = items.map(Number);
  if (items.length === 0 || numbers.some((v) => !Number.isSafeInteger(v) || v < 1)) {
    throw new Error(`--${flag} takes positive integers (16 32, or 16,32), got ${JSON.stringify(text)}`);
  }
  return numbers;
}

/**
 * What a script (an example, a benchmark child) does with its command line: the connection
 * flags and its own, `--help` printing `usage` and exiting 0, and any mistake (an unknown
 * flag, a stray argument, a bad value thrown by `check`) printing one line and the usage to
 * stderr and exiting 2, without a stack trace.
 */
export function parseScriptArgs<T extends ParseArgsConfig['options'], R>(
  argv: readonly string[],
  script: { name: string; usage: string; flags: T; lists?: readonly string[] },
  check: (parsed: { args: ConnectionArgs; values: Record<string, unknown> }) => R,
): { args: ConnectionArgs; values: Record<string, unknown> } & R {
  try {
    const joined = joinListFlags(argv, (script.lists ?? []).map((flag) => `--${flag}`));
    const { args, values, positionals } = parseConnectionArgs(joined, { ...script.flags, help: { type: 'boolean', short: 'h' } });
    if (values.help) {
      console.log(script.usage);
      process.exit(0);
    }
    if (positionals.length > 0) throw new Error(`unexpected argument ${JSON.stringify(positionals[0])}`);
    return { args, values, ...check({ args, values }) };
  } catch (error) {
    console.error(`${script.name}: ${(error as Error).message}\n\n${script.usage}`);
    process.exit(2);
  }
}

/**
 * Connection options for a script that makes its own data: as `toConnectionOptions`, and on
 * the hdf5 and zarr backends the connection folder is created when missing (`create: true`)
 * unless the flags say otherwise.
 */
export function scriptConnectionOptions(args: ConnectionArgs, backend: string): ConnectionOptions {
  const options = toConnectionOptions(args);
  const folder = ['hdf5', 'zarr'].includes(args.backend ?? backend);
  if (folder && args.connectionOptions.create === undefined) Object.assign(options, { create: true });
  return options;
}

/** Connection options for `dn.connection` from parsed flags. */
export function toConnectionOptions(args: ConnectionArgs): ConnectionOptions {
  return {
    ...args.connectionOptions,
    ...(args.backend ? { backend: args.backend } : {}),
    ...(args.engine ? { engine: args.engine } : {}),
    ...(Object.keys(args.engineOptions).length > 0 ? { engineOptions: args.engineOptions } : {}),
  };
}
