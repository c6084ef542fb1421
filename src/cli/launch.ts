/**
 * `dosna launch -n N script [args...]`: runs a script as N ranks on this host for the
 * cluster-rank engine, the way mpiexec would: DOSNA_RANK/DOSNA_SIZE and MASTER_ADDR/PORT in
 * each process's environment. When a rank fails, the others get a grace period to notice
 * (their collectives fail) and are then stopped; the exit code is the first failure's.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { createServer } from 'node:net';
import { withHugePages } from '../huge-pages.js';

export interface LaunchOptions {
  readonly ranks: number;
  readonly script: string;
  readonly args: readonly string[];
  /** Hub port; a free one by default. */
  readonly port?: number;
  /** Seconds the other ranks get after one fails (default 10). */
  readonly graceSeconds?: number;
  /** Prefix every output line with `[rank]`. */
  readonly tagOutput?: boolean;
}

function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const server = createServer();
    server.once('error', reject);
    server.listen(0, '127.0.0.1', () => {
      const { port } = server.address() as { port: number };
      server.close(() => resolve(port));
    });
  });
}

/** How to run a script with this Node: TypeScript through tsx, JavaScript as is. */
export function nodeArgsFor(script: string): string[] {
  if (/\.(c|m)?tsx?$/.test(script)) return ['--import', import.meta.resolve('tsx'), script];
  return [script];
}

function pipeTagged(child: ChildProcess, rank: number): void {
  for (const [stream, out] of [[child.stdout, process.stdout], [child.stderr, process.stderr]] as const) {
    let rest = '';
    stream?.setEncoding('utf8');
    stream?.on('data', (data: string) => {
      const lines = (rest + data).split('\n');
      rest = lines.pop()!;
      for (const line of lines) out.write(`[${rank}] ${line}\n`);
    });
    stream?.on('end', () => { if (rest) out.write(`[${rank}] ${rest}\n`); });
  }
}

/** Runs the ranks; resolves with the exit code the launcher should exit with. */
export async function launch(options: LaunchOptions): Promise<number> {
  const port = options.port ?? (await freePort());
  const grace = (options.graceSeconds ?? 10) * 1000;
  const children: ChildProcess[] = [];
  const exits: Promise<number>[] = [];
  let firstFailure: number | undefined;
  let killTimer: NodeJS.Timeout | undefined;
  for (let rank = 0; rank < options.ranks; rank++) {
    const child = spawn(process.execPath, [...nodeArgsFor(options.script), ...options.args], {
      env: {
        ...withHugePages(process.env),
        DOSNA_RANK: String(rank), DOSNA_SIZE: String(options.ranks),
        MASTER_ADDR: '127.0.0.1', MASTER_PORT: String(port),
      },
      stdio: options.tagOutput ? ['inherit', 'pipe', 'pipe'] : 'inherit',
    });
    if (options.tagOutput) pipeTagged(child, rank);
    children.push(child);
    exits.push(new Promise((resolve) => {
      child.on('exit', (code, signal) => {
        const status = code ?? (signal ? 128 + (({ SIGKILL: 9, SIGTERM: 15, SIGINT: 2 } as Record<string, number>)[signal] ?? 1) : 1);
        if (status !== 0 && firstFailure === undefined) {
          firstFailure = status;
          process.stderr.write(`dosna launch: rank ${rank} exited with ${signal ?? `code ${code}`}; stopping the other ranks in ${grace / 1000} s if they do not exit\n`);
          killTimer = setTimeout(() => { for (const c of children) if (c.exitCode === null && c.signalCode === null) c.kill('SIGTERM'); }, grace);
        }
        resolve(status);
      });
      child.on('error', (error) => {
        process.stderr.write(`dosna launch: cannot start rank ${rank}: ${error.message}\n`);
        firstFailure ??= 127;
        resolve(127);
      });
    }));
  }
  const forward = (signal: NodeJS.Signals) => { for (const c of children) c.kill(signal); };
  process.on('SIGINT', forward);
  process.on('SIGTERM', forward);
  await Promise.all(exits);
  clearTimeout(killTimer);
  process.off('SIGINT', forward);
  process.off('SIGTERM', forward);
  return firstFailure ?? 0;
}
