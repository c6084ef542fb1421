/**
 * The `cluster-rank` engine: DosNa's MPI engine. The script runs as N processes (started by
 * `mpiexec`, `srun` or `dosna launch`); each connection learns its rank and size. Creation,
 * deletion and cloning run on the root while the others wait; load, map, apply and clear
 * deal chunk i to rank i % size and end in a collective that gathers every rank's error;
 * get and set are each rank's own. Without a launcher the script is one rank, unchanged.
 */
import { runChunks, writtenDataset } from '../chunk-ops.js';
import { Communicator, type CommunicatorOptions } from '../cluster/communicator.js';
import { detectRank, type RankInfo } from '../cluster/ranks.js';
import { KeyedMutex, summarize } from '../concurrency.js';
import { allocateUninitialized } from '../dtypes.js';
import type { Engine, EngineSession } from '../engine.js';
import { DosnaError, OptionError } from '../errors.js';
import { checkOptions } from '../options.js';
import { reviveError, serializeError } from '../remote-error.js';
import { concurrencyOption, DEFAULT_CONCURRENCY } from './cpu.js';

/** One communicator per process, shared by its connections (collectives are ordered process-wide). */
let shared: { comm: Promise<Communicator>; users: number } | undefined;

function acquire(info: RankInfo, options: CommunicatorOptions): Promise<Communicator> {
  if (!shared) {
    shared = { comm: Communicator.open(info, options), users: 0 };
    shared.comm.catch(() => { shared = undefined; });
  }
  shared.users++;
  return shared.comm;
}

async function release(): Promise<void> {
  if (!shared) return;
  const current = shared;
  if (--current.users > 0) return;
  shared = undefined;
  await (await current.comm).close();
}

function timeoutOption(value: unknown, name: string): number | undefined {
  if (value === undefined) return undefined;
  if (typeof value !== 'number' || !Number.isFinite(value) || value <= 0) {
    throw new OptionError(`engine option ${name} must be a positive number of milliseconds, got ${JSON.stringify(value) ?? String(value)}`);
  }
  return value;
}

export const engine: Engine = {
  name: 'cluster-rank',
  async open(context): Promise<EngineSession> {
    const info = detectRank();
    if (info.size > 1 && context.store.capabilities.processLocal) {
      throw new DosnaError(
        `the ${context.settings.backend} backend keeps data in each process's own memory, so ${info.size} ranks would each see `
        + 'different data; use a backend the ranks share (hdf5, s3, ceph) with the cluster-rank engine',
      );
    }
    checkOptions('the cluster-rank engine', context.options, ['concurrency', 'connectTimeoutMs', 'collectiveTimeoutMs']);
    const concurrency = concurrencyOption(context.options, DEFAULT_CONCURRENCY);
    const comm = await acquire(info, {
      connectTimeoutMs: timeoutOption(context.options.connectTimeoutMs, 'connectTimeoutMs'),
      collectiveTimeoutMs: timeoutOption(context.options.collectiveTimeoutMs, 'collectiveTimeoutMs'),
    });
    const env = { store: context.store, storeFor: context.storeFor };
    const locks = new KeyedMutex();
    const { rank, size } = comm;
    let closed = false;

    const session: EngineSession = {
      rank,
      size,
      async onRoot(fn, what = 'a collective call') {
        if (size === 1) return fn();
        if (rank !== 0) {
          const { payload, errors } = await comm.collective(what);
          if (errors[0]) throw reviveError(errors[0], 'rank 0');
          return payload as never;
        }
        let value: Awaited<ReturnType<typeof fn>>;
        try {
          value = await fn();
        } catch (error) {
          await comm.collective(what, undefined, serializeError(error));
          throw error;
        }
        await comm.collective(what, value);
        return value;
      },
      async barrier(what = 'barrier()') {
        await comm.collective(what);
      },
      async allgather<T>(value: T, what = 'allgather') {
        const { payloads, errors } = await comm.collective(what, value);
        const first = errors.findIndex((e) => e !== null);
        if (first >= 0) throw reviveError(errors[first]!, `rank ${first}`);
        return payloads as T[];
      },
      allocate: (dtype, length) => allocateUninitialized(dtype, length),
      async run(job, chunks, options) {
        const mine = options.collective ? chunks.filter((_, i) => i % size === rank) : chunks;
        const target = writtenDataset(job);
        let failure: unknown;
        let run: Awaited<ReturnType<typeof runChunks>> = { wallMs: 0, records: [] };
        try {
          run = await runChunks(env, job, mine, {
            worker: rank,
            concurrency,
            signal: options.signal,
            onProgress: options.onProgress,
            locks,
            lockKey: target ? (index) => `${target.name}\u0000${index.join(',')}` : undefined,
          });
        } catch (error) {
          failure = error;
        }
        if (options.collective && size > 1) {
          const { errors } = await comm.collective(`${options.operation} (its chunks)`, undefined, failure === undefined ? null : serializeError(failure));
          const first = errors.findIndex((e) => e !== null);
          if (first >= 0) throw first === rank ? failure : reviveError(errors[first]!, `rank ${first}`);
        } else if (failure !== undefined) {
          throw failure;
        }
        return summarize(options.operation, 'cluster-rank', concurrency, run);
      },
      async close() {
        if (closed) return;
        closed = true;
        await release();
      },
    };
    return session;
  },
};
