/**
 * The `cpu` engine: everything in this thread. Compute is sequential (one JS thread), but up
 * to `concurrency` chunk tasks are in flight, so I/O to remote stores overlaps.
 */
import { runChunks, writtenDataset } from '../chunk-ops.js';
import { KeyedMutex, summarize } from '../concurrency.js';
import { allocateUninitialized } from '../dtypes.js';
import type { Engine, EngineSession } from '../engine.js';
import { OptionError } from '../errors.js';
import { checkOptions } from '../options.js';

/** Chunk tasks in flight at once by default: enough to hide remote latency, few enough to bound memory. */
export const DEFAULT_CONCURRENCY = 8;

/** The `concurrency` engine option (chunk tasks in flight), shared by every engine. */
export function concurrencyOption(options: Readonly<Record<string, unknown>>, fallback: number): number {
  const value = options.concurrency ?? fallback;
  if (typeof value !== 'number' || !Number.isInteger(value) || value < 1) {
    throw new OptionError(`engine option concurrency must be a positive integer, got ${JSON.stringify(value) ?? String(value)}`);
  }
  return value;
}

export const engine: Engine = {
  name: 'cpu',
  async open(context): Promise<EngineSession> {
    checkOptions('the cpu engine', context.options, ['concurrency']);
    const concurrency = concurrencyOption(context.options, DEFAULT_CONCURRENCY);
    const locks = new KeyedMutex();
    const env = { store: context.store, storeFor: context.storeFor };
    return {
      rank: 0,
      size: 1,
      onRoot: (fn) => fn(),
      barrier: async () => {},
      allgather: async (value) => [value],
      allocate: (dtype, length) => allocateUninitialized(dtype, length),
      async run(job, chunks, options) {
        const target = writtenDataset(job);
        const run = await runChunks(env, job, chunks, {
          concurrency,
          signal: options.signal,
          onProgress: options.onProgress,
          locks,
          lockKey: target ? (index) => `${target.name}\u0000${index.join(',')}` : undefined,
        });
        return summarize(options.operation, 'cpu', concurrency, run);
      },
      close: async () => {},
    };
  },
};
