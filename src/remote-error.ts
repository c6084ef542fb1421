/**
 * Errors that cross a thread or process boundary: flattened to plain data on the far side,
 * rebuilt here as the same dosna error class, with the far side's stack kept (in `stack`
 * and in `cause`), so the caller sees where the failure really happened.
 */
import * as errors from './errors.js';

export interface SerializedError {
  readonly name: string;
  readonly message: string;
  readonly stack?: string;
  readonly chunk?: readonly number[];
  readonly file?: string;
  readonly cause?: SerializedError;
}

export function serializeError(error: unknown): SerializedError {
  if (!(error instanceof Error)) return { name: 'Error', message: String(error) };
  const chunk = (error as { chunk?: readonly number[] }).chunk;
  return {
    name: error.name,
    message: error.message,
    stack: error.stack,
    ...(chunk ? { chunk: [...chunk] } : {}),
    ...(error instanceof errors.CorruptChunkError ? { file: error.file } : {}),
    ...(error.cause !== undefined ? { cause: serializeError(error.cause) } : {}),
  };
}

const classes: Record<string, new (message: string, options?: ErrorOptions) => Error> = {
  DosnaError: errors.DosnaError, DatasetNotFoundError: errors.DatasetNotFoundError,
  DatasetExistsError: errors.DatasetExistsError, IndexError: errors.IndexError, ShapeError: errors.ShapeError,
  DTypeError: errors.DTypeError, ConnectionError: errors.ConnectionError, InvalidNameError: errors.InvalidNameError,
  AbortError: errors.AbortError, ChunkExistsError: errors.ChunkExistsError, KernelShippingError: errors.KernelShippingError,
};

/** Rebuilds an error from the far side; `where` says where it ran (e.g. "worker thread 3"). */
export function reviveError(data: SerializedError, where: string): Error {
  const cause = data.cause ? reviveError(data.cause, where) : undefined;
  let error: Error;
  if (data.name === 'KernelError') {
    error = new errors.KernelError(data.message, data.chunk ?? [], { cause });
  } else if (data.name === 'ConflictError') {
    error = new errors.ConflictError(data.message, data.chunk ?? [], { cause });
  } else if (data.name === 'CorruptChunkError') {
    error = new errors.CorruptChunkError(data.message, data.file ?? '', { cause });
  } else {
    const Class = classes[data.name];
    error = Class ? new Class(data.message, { cause }) : Object.assign(new Error(data.message, { cause }), { name: data.name });
  }
  if (data.stack) error.stack = `${data.stack}\n    (in ${where})`;
  return error;
}
