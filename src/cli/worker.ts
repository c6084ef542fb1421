/**
 * `dosna worker`: runs the chunk tasks of `queue` engine runs, until interrupted.
 */
import { parseArgs } from 'node:util';
import { availableParallelism } from 'node:os';
import { DEFAULT_QUEUE } from '../queue/protocol.js';
import { startWorker } from '../queue/worker.js';
import { UsageError } from './common.js';

export const WORKER_HELP = `usage: dosna worker --redis URL [--queue NAME] [--concurrency N] [--quiet]

Takes the chunk tasks of scripts using the queue engine from Redis and runs them, until
interrupted (SIGINT, SIGTERM: the tasks running finish first). Start any number, on any
machines that can open the scripts' stores (hdf5 on a shared filesystem, s3, ceph, zarr).
Credentials never travel through Redis: the worker takes them from its own environment
(AWS_ACCESS_KEY_ID, ~/.aws, a ceph conf file); DOSNA_WORKER_OPTIONS (JSON) adds connection
options of this machine's own.

  --redis URL        the Redis of the queue, e.g. redis://host:6379
  --queue NAME       the queue (default ${DEFAULT_QUEUE}), as the scripts' engine option queue
  --concurrency N    chunk tasks at once, each in its own thread (default: the cores, ${availableParallelism()} here)
  --quiet            no line per task`;

export async function workerCommand(argv: readonly string[]): Promise<number> {
  let values;
  try {
    ({ values } = parseArgs({
      args: [...argv],
      options: { redis: { type: 'string' }, queue: { type: 'string' }, concurrency: { type: 'string' }, quiet: { type: 'boolean' }, help: { type: 'boolean', short: 'h' } },
      strict: true,
    }));
  } catch (error) {
    throw new UsageError(`${(error as Error).message}\n\n${WORKER_HELP}`);
  }
  if (values.help) {
    console.log(WORKER_HELP);
    return 0;
  }
  if (!values.redis) throw new UsageError(`worker needs --redis URL\n\n${WORKER_HELP}`);
  const concurrency = values.concurrency === undefined ? availableParallelism() : Number(values.concurrency);
  if (!Number.isSafeInteger(concurrency) || concurrency < 1) throw new UsageError(`--concurrency must be a positive integer, got ${JSON.stringify(values.concurrency)}`);
  const worker = await startWorker({
    redis: values.redis, queue: values.queue ?? DEFAULT_QUEUE, concurrency,
    ...(values.quiet ? {} : { log: (line: string) => console.error(line) }),
  });
  console.log(`dosna worker ${worker.name}: queue ${values.queue ?? DEFAULT_QUEUE} at ${values.redis}, ${concurrency} at once`);
  await new Promise<void>((resolve) => {
    process.once('SIGINT', () => resolve());
    process.once('SIGTERM', () => resolve());
  });
  await worker.close();
  return 0;
}
