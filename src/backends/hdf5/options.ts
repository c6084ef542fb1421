/** The hdf5 backend's connection options, checked (docs/backends/hdf5.md lists them). */
import { InvalidNameError, OptionError } from '../../errors.js';
import { checkOptions } from '../../options.js';
import { parseCommitOption, type CommitOption } from './commit-mode.js';

const OPTIONS = ['directory', 'create', 'fastPath', 'commit'];

export interface Hdf5Options {
  /** The folder holding the connection's folder. */
  readonly directory: string;
  /** Make the connection's folder when missing. */
  readonly create: boolean;
  /** Read and write uncompressed chunk files as plain bytes when they are HDF5's own layout. */
  readonly fastPath: boolean;
  /** How new chunk files replace old ones (locks.ts), or 'auto' (commit-mode.ts). */
  readonly commit: CommitOption;
}

/** The options given to a connection, defaults filled in; throws OptionError for an unknown or bad one. */
export function parseOptions(options: Readonly<Record<string, unknown>>): Hdf5Options {
  checkOptions('the hdf5 backend', options, OPTIONS);
  const directory = options.directory ?? '.';
  if (typeof directory !== 'string' || directory.length === 0) throw new OptionError(`hdf5 option directory must be a non-empty string, got ${JSON.stringify(directory)}`);
  if (directory.includes('\0')) throw new InvalidNameError('hdf5 option directory contains a NUL character');
  const create = options.create ?? false;
  if (typeof create !== 'boolean') throw new OptionError(`hdf5 option create must be true or false, got ${JSON.stringify(create)}`);
  const fastPath = options.fastPath ?? true;
  if (typeof fastPath !== 'boolean') throw new OptionError(`hdf5 option fastPath must be true or false, got ${JSON.stringify(fastPath)}`);
  return { directory, create, fastPath, commit: parseCommitOption('hdf5', options.commit) };
}
