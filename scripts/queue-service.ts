/**
 * A Redis server and `dosna worker`s for the queue engine's tests and benchmark, as
 * scripts/ceph-rgw.sh is the RGW for s3: Debian's redis-server (installed by the project's
 * script when missing) on a free loopback port, without persistence, and worker processes. The
 * test suite's global setup starts one with three workers on the queue `dosna-test` when the
 * queue engine is tested; everything stops, and its folder goes, at teardown.
 */
import { execFile, spawn, type ChildProcess } from 'node:child_process';
import { existsSync, mkdtempSync, rmSync } from 'node:fs';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { Redis } from 'ioredis';

/** The checkout: the folder holding bin/dosna.mjs, above this file (scripts/, or build/scripts/ for the benchmark). */
const ROOT = ((): string => {
  for (let dir = import.meta.dirname; dir !== dirname(dir); dir = dirname(dir)) if (existsSync(join(dir, 'bin', 'dosna.mjs'))) return dir;
  throw new Error(`no checkout of dosna above ${import.meta.dirname}`);
})();
export const TEST_QUEUE = 'dosna-test';

/** A free TCP port on loopback. */
export function freePort(): Promise<number> {
  return new Promise((resolvePort, reject) => {
    const server = createServer();
    server.once('error', reject);
    server.listen(0, '127.0.0.1', () => {
      const { port } = server.address() as { port: number };
      server.close(() => resolvePort(port));
    });
  });
}

function ensureRedisServer(): Promise<void> {
  return new Promise((ok, fail) => {
    execFile('bash', [join(ROOT, 'scripts', 'ensure-debian-packages.sh'), 'redis-server'], { timeout: 900_000 }, (error, _out, stderr) => {
      if (error) fail(new Error(`the queue engine's tests need Debian's redis-server, and installing it failed: ${stderr.trim() || error.message}\nInstall it (apt-get install redis-server), or leave the queue engine out: run_tests.sh --engine cpu,worker-pool,cluster-rank`));
      else ok();
    });
  });
}

/** A redis-server on a free loopback port; `stop` shuts it down and removes its folder. */
export async function startRedis(): Promise<{ url: string; port: number; stop: () => Promise<void> }> {
  await ensureRedisServer();
  const port = await freePort();
  const dir = mkdtempSync(join(tmpdir(), 'dosna-redis-'));
  const server = spawn('redis-server', ['--port', String(port), '--bind', '127.0.0.1', '--save', '', '--appendonly', 'no', '--dir', dir], { stdio: 'ignore' });
  const url = `redis://127.0.0.1:${port}`;
  const deadline = Date.now() + 15_000;
  for (;;) {
    const client = new Redis(url, { lazyConnect: true, retryStrategy: () => null, maxRetriesPerRequest: 0 });
    client.on('error', () => {});
    try {
      await client.connect();
      await client.ping();
      client.disconnect();
      break;
    } catch {
      client.disconnect();
      if (Date.now() > deadline || server.exitCode !== null) throw new Error(`redis-server did not start on port ${port}`);
      await new Promise((r) => setTimeout(r, 100));
    }
  }
  return {
    url, port,
    stop: async () => {
      await stopProcess(server);
      rmSync(dir, { recursive: true, force: true });
    },
  };
}

/** Stops a child: SIGTERM, then SIGKILL after `graceMs`. */
export async function stopProcess(child: ChildProcess, graceMs = 10_000): Promise<void> {
  if (child.exitCode !== null || child.signalCode !== null) return;
  const exited = new Promise<void>((r) => child.once('exit', () => r()));
  child.kill('SIGTERM');
  const timer = setTimeout(() => child.kill('SIGKILL'), graceMs);
  await exited;
  clearTimeout(timer);
}

/** Starts `count` `dosna worker` processes; resolves when Redis lists them all on the queue. */
export async function startWorkers(url: string, queue: string, count: number, env: NodeJS.ProcessEnv = {}, concurrency = 2): Promise<ChildProcess[]> {
  const workers = Array.from({ length: count }, () => spawn(process.execPath, [join(ROOT, 'bin', 'dosna.mjs'), 'worker', '--redis', url, '--queue', queue, '--concurrency', String(concurrency), '--quiet'], {
    cwd: ROOT, stdio: ['ignore', 'ignore', 'inherit'], env: { ...process.env, ...env },
  }));
  const { Queue } = await import('bullmq');
  const probe = new Queue(queue, { connection: { host: '127.0.0.1', port: Number(new URL(url).port) } });
  try {
    const deadline = Date.now() + 60_000;
    while ((await probe.getWorkers()).length < count) {
      if (Date.now() > deadline) throw new Error(`${count} dosna workers did not come up on queue ${queue}`);
      if (workers.some((w) => w.exitCode !== null)) throw new Error('a dosna worker exited while starting (see its stderr above)');
      await new Promise((r) => setTimeout(r, 200));
    }
  } finally {
    await probe.close();
  }
  return workers;
}
