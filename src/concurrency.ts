/**
 * The one place where work over many chunks is scheduled: a bounded pool of async runners
 * pulling tasks in order, with cancellation, progress, per-task timings and per-key locks.
 * Engines differ in what a task does (run here, post to a worker, skip other ranks' chunks),
 * never in how tasks are scheduled.
 *
 * Hand-written rather than p-limit/p-queue because the semantics we need are exact: stop
 * starting tasks on the first failure or abort, let tasks already running finish (so a failed
 * `map` can be cleaned up without racing its own writes), then reject with the first error.
 * p-limit's `clearQueue` leaves discarded promises pending forever, which breaks the last step.
 */
import { AbortError } from './errors.js';

/** Progress of a run, reported after each task. */
export interface Progress {
  readonly done: number;
  readonly total: number;
  /** Bytes read plus written so far. */
  readonly bytes: number;
}

/** Timings and traffic of one task. */
export interface TaskRecord {
  readonly chunk: readonly number[];
  /** Who ran it: thread id, rank, or 0 for the main thread. */
  readonly worker: number;
  /** From the run's start until the task started. */
  readonly queueMs: number;
  readonly ioMs: number;
  readonly computeMs: number;
  readonly totalMs: number;
  readonly bytesRead: number;
  readonly bytesWritten: number;
  /** What the chunk function of a reduction returned for this chunk. */
  readonly partial?: unknown;
}

/** What one engine run did: kept on the dataset as `lastRun` so users can inspect and save it. */
export interface RunReport {
  readonly operation: string;
  readonly engine: string;
  readonly concurrency: number;
  readonly chunks: number;
  readonly wallMs: number;
  readonly bytesRead: number;
  readonly bytesWritten: number;
  readonly tasks: readonly TaskRecord[];
}

export interface RunTasksOptions<T> {
  readonly concurrency: number;
  readonly signal?: AbortSignal;
  readonly onProgress?: (progress: Progress) => void;
  /** Tasks with the same key never overlap, within this run and across runs sharing `locks`. */
  readonly lockKey?: (item: T) => string | undefined;
  readonly locks?: KeyedMutex;
}

/** Per-task measurements a task reports back. */
export interface TaskResult {
  readonly worker?: number;
  readonly ioMs?: number;
  readonly computeMs?: number;
  readonly bytesRead?: number;
  readonly bytesWritten?: number;
  readonly partial?: unknown;
}

/** Runs `task` over `items` with at most `concurrency` at once; see the module comment for failure semantics. */
export async function runTasks<T extends readonly number[]>(
  items: readonly T[],
  task: (item: T) => Promise<TaskResult>,
  options: RunTasksOptions<T>,
): Promise<{ wallMs: number; records: TaskRecord[] }> {
  const { signal, onProgress, lockKey, locks } = options;
  const t0 = performance.now();
  const records: TaskRecord[] = [];
  let next = 0;
  let failure: { error: unknown } | undefined;
  let bytes = 0;
  const abortError = () => new AbortError('operation aborted', { cause: signal?.reason });
  const runner = async () => {
    while (!failure && next < items.length) {
      if (signal?.aborted) {
        failure ??= { error: abortError() };
        return;
      }
      const item = items[next++];
      const started = performance.now();
      try {
        const key = lockKey?.(item);
        const result = key !== undefined && locks ? await locks.run(key, () => task(item)) : await task(item);
        const ended = performance.now();
        const record: TaskRecord = {
          chunk: item, worker: result.worker ?? 0, queueMs: started - t0,
          ioMs: result.ioMs ?? 0, computeMs: result.computeMs ?? 0, totalMs: ended - started,
          bytesRead: result.bytesRead ?? 0, bytesWritten: result.bytesWritten ?? 0,
          ...(result.partial !== undefined ? { partial: result.partial } : {}),
        };
        records.push(record);
        bytes += record.bytesRead + record.bytesWritten;
        onProgress?.({ done: records.length, total: items.length, bytes });
      } catch (error) {
        failure ??= { error };
      }
    }
  };
  const n = Math.max(1, Math.min(options.concurrency, items.length));
  await Promise.all(Array.from({ length: n }, runner));
  if (!failure && signal?.aborted) failure = { error: abortError() };
  if (failure) throw failure.error;
  return { wallMs: performance.now() - t0, records };
}

/** Sums the records of a run into a report. */
export function summarize(operation: string, engine: string, concurrency: number, run: { wallMs: number; records: TaskRecord[] }): RunReport {
  let bytesRead = 0;
  let bytesWritten = 0;
  for (const r of run.records) {
    bytesRead += r.bytesRead;
    bytesWritten += r.bytesWritten;
  }
  return { operation, engine, concurrency, chunks: run.records.length, wallMs: run.wallMs, bytesRead, bytesWritten, tasks: run.records };
}

/** Runs `fn` over `items`, `concurrency` at a time; tries every item, then throws the first error. */
export async function tryEach<T>(items: readonly T[], concurrency: number, fn: (item: T) => Promise<void>): Promise<void> {
  let next = 0;
  let failure: { error: unknown } | undefined;
  const runner = async () => {
    while (next < items.length) {
      const item = items[next++];
      try {
        await fn(item);
      } catch (error) {
        failure ??= { error };
      }
    }
  };
  await Promise.all(Array.from({ length: Math.min(concurrency, items.length) }, runner));
  if (failure) throw failure.error;
}

/** How one item of a batch ended: its value, or the error it rejects with. */
export type BatchOutcome<R> = { readonly value: R } | { readonly error: unknown };

/**
 * Gathers items submitted one at a time into batches of up to `size`, so that work whose fixed
 * cost is per message (a worker thread's task) is paid once per batch. A batch goes out when it
 * is full, or once the submissions of the current turn of the event loop are in (`setImmediate`),
 * so a partial batch never waits for items that are not coming. `send` answers every item of a
 * batch, in order; each `submit` settles with its own item's outcome. With `size` 1 every item
 * goes out on its own at once.
 */
export class BatchQueue<T, R> {
  private pending: { item: T; resolve(value: R): void; reject(error: unknown): void }[] = [];
  private scheduled = false;

  constructor(
    private readonly size: number,
    private readonly send: (items: T[]) => Promise<BatchOutcome<R>[]>,
  ) {}

  submit(item: T): Promise<R> {
    return new Promise<R>((resolve, reject) => {
      this.pending.push({ item, resolve, reject });
      if (this.pending.length >= this.size) this.flush();
      else if (!this.scheduled) {
        this.scheduled = true;
        setImmediate(() => { this.scheduled = false; this.flush(); });
      }
    });
  }

  private flush(): void {
    const batch = this.pending;
    if (batch.length === 0) return;
    this.pending = [];
    this.send(batch.map((p) => p.item)).then((outcomes) => {
      // In order: the first error a caller sees is the first item's that failed.
      batch.forEach((p, i) => {
        const outcome = outcomes[i];
        if (!outcome) p.reject(new Error(`internal: a batch of ${batch.length} answered ${outcomes.length} items`));
        else if ('error' in outcome) p.reject(outcome.error);
        else p.resolve(outcome.value);
      });
    }, (error: unknown) => { for (const p of batch) p.reject(error); });
  }
}

/** Async mutual exclusion per key: `run(key, fn)` waits for earlier holders of the same key. */
export class KeyedMutex {
  private readonly tails = new Map<string, Promise<void>>();

  /** Whether someone holds (or waits for) `key` now. */
  isHeld(key: string): boolean {
    return this.tails.has(key);
  }

  async run<R>(key: string, fn: () => Promise<R>): Promise<R> {
    const previous = this.tails.get(key) ?? Promise.resolve();
    let release!: () => void;
    const mine = new Promise<void>((resolve) => { release = resolve; });
    const tail = previous.then(() => mine);
    this.tails.set(key, tail);
    await previous;
    try {
      return await fn();
    } finally {
      release();
      if (this.tails.get(key) === tail) this.tails.delete(key);
    }
  }
}
