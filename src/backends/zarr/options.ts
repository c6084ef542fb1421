/** The zarr backend's options for a hierarchy in a folder, checked (docs/backends/zarr.md lists them). */
import { OptionError } from '../../errors.js';
import { checkOptions } from '../../options.js';
import { parseCommitOption, type CommitOption } from '../hdf5/commit-mode.js';
import { S3_OPTIONS } from '../s3.js';

const FOLDER_OPTIONS = ['storage', 'directory', 'create', 'format', 'commit'];

/** A zarr connection to a folder, as its options say. */
export interface ZarrFolderOptions {
  /** The folder holding the connection's folder. */
  readonly directory: string;
  /** Make the connection's folder when missing. */
  readonly create: boolean;
  /** How new chunk files replace old ones, as the hdf5 backend's option (hdf5/commit-mode.ts). */
  readonly commit: CommitOption;
}

/** The options of a zarr connection to a folder, defaults filled in; throws OptionError for an unknown or bad one. */
export function parseFolderOptions(options: Readonly<Record<string, unknown>>): ZarrFolderOptions {
  const s3Only = Object.keys(options).filter((k) => S3_OPTIONS.includes(k) && !FOLDER_OPTIONS.includes(k));
  if (s3Only.length > 0) throw new OptionError(`zarr option ${s3Only[0]} is for a zarr hierarchy on S3: pass storage: 's3' with it (or directory for a folder)`);
  checkOptions('the zarr backend', options, FOLDER_OPTIONS);
  const directory = options.directory ?? '.';
  if (typeof directory !== 'string' || directory === '') throw new OptionError(`zarr option directory must be a folder path, got ${JSON.stringify(directory)}`);
  const create = options.create ?? false;
  if (typeof create !== 'boolean') throw new OptionError(`zarr option create must be true or false, got ${JSON.stringify(create)}`);
  return { directory, create, commit: parseCommitOption('zarr', options.commit) };
}
