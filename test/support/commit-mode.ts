/**
 * What the hdf5 and zarr backends' `commit: 'auto'` should choose for a folder, found another
 * way than src/backends/hdf5/commit-mode.ts finds it: the mount from util-linux's findmnt, then
 * its ext4 entry in sysfs.
 */
import { execFileSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as path from 'node:path';

/** Whether a rename in `folder` is ordered after its data: false on an ext4 without a journal, undefined when not ext4 or not known. */
export function expectedRenameOrdersData(folder: string): boolean | undefined {
  // The last line is the mount on top where several are stacked on one place.
  const line = execFileSync('findmnt', ['-n', '-o', 'MAJ:MIN,FSTYPE', '--target', folder], { encoding: 'utf8' }).trim().split('\n').at(-1)!;
  const [device, type] = line.trim().split(/\s+/);
  if (type !== 'ext4' && type !== 'ext3' && type !== 'ext2') return undefined;
  let entry: string;
  try {
    entry = `/sys/fs/ext4/${path.basename(fs.realpathSync(`/sys/dev/block/${device}`))}/journal_task`;
  } catch {
    return undefined;
  }
  return fs.existsSync(entry) ? fs.readFileSync(entry, 'utf8').trim() !== '<none>' : undefined;
}

/** The commit mode `'auto'` should resolve to in `folder` (with dosna's native module). */
export function expectedAutoCommit(folder: string): 'rename' | 'exchange' {
  return expectedRenameOrdersData(folder) === false ? 'exchange' : 'rename';
}
