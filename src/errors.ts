/**
 * Every error the library throws on purpose extends {@link DosnaError}, so a caller can catch
 * "anything dosna refused" in one place and still tell the cases apart by class.
 */

/** Base class of all errors thrown by dosna. */
export class DosnaError extends Error {
  constructor(message: string, options?: ErrorOptions) {
    super(message, options);
    this.name = new.target.name;
  }
}

/** A dataset that was asked for does not exist in the connection. */
export class DatasetNotFoundError extends DosnaError {}

/** A dataset of that name already exists in the connection. */
export class DatasetExistsError extends DosnaError {}

/** A group that was asked for does not exist. */
export class GroupNotFoundError extends DosnaError {}

/** A group of that path already exists. */
export class GroupExistsError extends DosnaError {}

/** An index is out of range, malformed, or has a step of 0. */
export class IndexError extends DosnaError {}

/** Shapes do not match: a value that cannot broadcast, data of the wrong shape, a bad chunk size. */
export class ShapeError extends DosnaError {}

/** An unknown dtype, or a value that the dataset's dtype cannot hold. */
export class DTypeError extends DosnaError {}

/** The backend cannot be reached, or the connection is not connected. */
export class ConnectionError extends DosnaError {}

/**
 * An options object that a function does not accept: an unknown key (the message names the
 * accepted ones) or a value of the wrong kind. Nothing has been done when it is thrown.
 */
export class OptionError extends DosnaError {}

/** A dataset or connection name that is empty, escapes its folder or prefix, or has unstorable characters. */
export class InvalidNameError extends DosnaError {}

/** A function given to `map`/`apply` failed on a chunk; `cause` holds the original error and its stack. */
export class KernelError extends DosnaError {
  /** Grid index of the chunk the function failed on. */
  readonly chunk: readonly number[];
  constructor(message: string, chunk: readonly number[], options?: ErrorOptions) {
    super(message, options);
    this.chunk = chunk;
  }
}

/** A map/apply function cannot be sent to where the engine runs it (it uses variables of its enclosing scope). */
export class KernelShippingError extends DosnaError {}

/** Stored bytes (a chunk, or a dataset's metadata) cannot be read; `file` names the file or object. */
export class CorruptChunkError extends DosnaError {
  /** The file (or object key) that could not be read. */
  readonly file: string;
  constructor(message: string, file: string, options?: ErrorOptions) {
    super(message, options);
    this.file = file;
  }
}

/**
 * A chunk could not be committed because other writers kept changing it between this
 * process's read and its conditional write (after many attempts with backoff).
 */
export class ConflictError extends DosnaError {
  /** Grid index of the chunk. */
  readonly chunk: readonly number[];
  constructor(message: string, chunk: readonly number[], options?: ErrorOptions) {
    super(message, options);
    this.chunk = chunk;
  }
}

/** `createChunk` was asked for a chunk that is already stored. */
export class ChunkExistsError extends DosnaError {}

/** An operation was cancelled through its `AbortSignal`. */
export class AbortError extends DosnaError {}
