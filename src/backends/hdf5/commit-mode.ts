/**
 * Which way a chunk commit puts its new file in place when the connection leaves it to dosna
 * (the `commit` option's default, `'auto'`): the file system decides.
 *
 * A rename over a file is what makes a power cut leave each chunk old or new on a journaling
 * ext4: the journal orders the rename after the new file's data, which ext4 starts writing out at
 * the rename (auto_da_alloc). That write-out is the price: measured on the development VM, 512
 * rewrites of 128 KiB files took ~105 ms renamed over the old ones against ~42 ms swapped in
 * (renameat2 RENAME_EXCHANGE, locks.ts): a renamed file gets its blocks at once, freed again
 * (and discarded on a `discard` mount) at the next rewrite, where a file swapped in and replaced
 * before the page cache writes it out never gets any. Where the file system has no journal the
 * rename guarantees nothing (its metadata reaches the disk in no set order, so after a power
 * cut an old name may point at blocks already given to a new file), so the swap, just as atomic
 * for every process, breaks no promise there and is the default. Everywhere else, or when dosna
 * cannot tell, the default renames.
 */
import fs from 'node:fs';
import path from 'node:path';
import { OptionError } from '../../errors.js';
import { nativeModule } from '../../native.js';
import type { CommitMode } from './locks.js';

/** The `commit` option: a mode, or `'auto'` to let the folder's file system choose. */
export type CommitOption = CommitMode | 'auto';

const COMMIT_OPTIONS: readonly CommitOption[] = ['auto', 'rename', 'exchange'];

/** The `commit` option of `backend` (default `'auto'`); OptionError for another value. */
export function parseCommitOption(backend: string, value: unknown): CommitOption {
  const commit = value ?? 'auto';
  if (!COMMIT_OPTIONS.includes(commit as CommitOption)) throw new OptionError(`${backend} option commit must be ${COMMIT_OPTIONS.map((m) => JSON.stringify(m)).join(', ')}, got ${JSON.stringify(commit)}`);
  return commit as CommitOption;
}

/** statfs's f_type of ext2, ext3 and ext4. */
const EXT_SUPER_MAGIC = 0xef53;

/** The mode a commit uses in `folder` for `option` (`'auto'` resolved as above). */
export function resolveCommitMode(option: CommitOption, folder: string): CommitMode {
  if (option !== 'auto') return option;
  return nativeModule()?.exchangeFiles && renameOrdersData(folder) === false ? 'exchange' : 'rename';
}

/**
 * Whether a rename in `folder` is ordered after the renamed file's data on disk: false only on
 * an ext4 without a journal; undefined when that cannot be told (another file system, or no
 * sysfs entry to read), which callers treat as true.
 */
export function renameOrdersData(folder: string): boolean | undefined {
  try {
    if (fs.statfsSync(folder).type !== EXT_SUPER_MAGIC) return undefined;
    const journal = ext4JournalTask(fs.statSync(folder, { bigint: true }).dev);
    return journal === undefined ? undefined : journal !== '<none>';
  } catch {
    return undefined;
  }
}

/**
 * What Linux's /sys/fs/ext4/<device>/journal_task says of the file system on device number
 * `dev` (`<none>` without a journal, else the journal thread's id); undefined when there is no
 * such entry (an older kernel, or not ext4).
 */
function ext4JournalTask(dev: bigint): string | undefined {
  // glibc's encoding of a device number (gnu_dev_major and gnu_dev_minor).
  const major = ((dev >> 8n) & 0xfffn) | ((dev >> 32n) & 0xfffff000n);
  const minor = (dev & 0xffn) | ((dev >> 12n) & 0xffffff00n);
  try {
    const device = path.basename(fs.realpathSync(`/sys/dev/block/${major}:${minor}`));
    return fs.readFileSync(`/sys/fs/ext4/${device}/journal_task`, 'utf8').trim();
  } catch {
    return undefined;
  }
}
