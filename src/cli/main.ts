/**
 * The `dosna` command line. Subcommands:
 *   dosna launch -n N script [args...]   run a script as N ranks (cluster-rank engine)
 */
import { parseArgs } from 'node:util';
import { launch } from './launch.js';

const HELP = `usage: dosna <command> [options]

commands:
  launch -n N [--port P] [--grace S] [--tag-output] script [args...]
      run a script as N ranks on this host for the cluster-rank engine
      (sets DOSNA_RANK, DOSNA_SIZE, MASTER_ADDR, MASTER_PORT for each rank)

Run 'dosna <command> --help' for a command's options.`;

const LAUNCH_HELP = `usage: dosna launch -n N [--port P] [--grace S] [--tag-output] script [args...]

  -n, --ranks N    number of ranks (processes) to run
  --port P         port of rank 0's hub (MASTER_PORT); a free one by default
  --grace S        seconds the other ranks get after one fails (default 10)
  --tag-output     prefix every output line with [rank]

Exit code: 0 when every rank succeeds, else the first failing rank's code.`;

export async function main(argv: readonly string[]): Promise<number> {
  const [command, ...rest] = argv;
  if (!command || command === '--help' || command === '-h' || command === 'help') {
    console.log(HELP);
    return command ? 0 : 2;
  }
  if (command === 'launch') {
    // Options end at the script: everything after it belongs to the script.
    const scriptAt = rest.findIndex((a, i) => !a.startsWith('-') && !['-n', '--ranks', '--port', '--grace'].includes(rest[i - 1]));
    const own = scriptAt < 0 ? rest : rest.slice(0, scriptAt);
    const { values } = parseArgs({
      args: own.filter((a) => a !== '--'),
      options: { ranks: { type: 'string', short: 'n' }, port: { type: 'string' }, grace: { type: 'string' }, 'tag-output': { type: 'boolean' }, help: { type: 'boolean', short: 'h' } },
      strict: true,
    });
    if (values.help) { console.log(LAUNCH_HELP); return 0; }
    const ranks = Number(values.ranks);
    if (scriptAt < 0 || !Number.isInteger(ranks) || ranks < 1) {
      console.error(`dosna launch: needs -n N (a positive integer) and a script\n\n${LAUNCH_HELP}`);
      return 2;
    }
    return launch({
      ranks, script: rest[scriptAt], args: rest.slice(scriptAt + 1),
      port: values.port ? Number(values.port) : undefined,
      graceSeconds: values.grace ? Number(values.grace) : undefined,
      tagOutput: values['tag-output'],
    });
  }
  console.error(`dosna: unknown command '${command}'\n\n${HELP}`);
  return 2;
}
