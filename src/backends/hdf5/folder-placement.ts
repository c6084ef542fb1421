/**
 * Where the file system puts a new dataset's folder, for the file-per-chunk layouts (hdf5, and
 * zarr's folders, which share these helpers).
 *
 * ext4 takes a new file's inode from its folder's block group, and places a new subfolder near
 * its parent's unless the parent is marked as the top of a hierarchy (`chattr +T`,
 * FS_TOPDIR_FL), when its Orlov allocator spreads the subfolders over the groups with the most
 * room. Without the mark every dataset of a connection takes its chunk files' inodes from the
 * group where the datasets deleted before it freed theirs; and ext4 without a journal (this
 * project's benchmark machine) skips, one by one, for every new file, the inodes freed in the
 * last one to six minutes. Measured by hand there (create + load of a 256^3 float32 cube in
 * 32^3 chunks, twelve times a process, each time after deleting the last one; medians, builds
 * alternating, three processes each): 135, 164 and 177 ms without the mark, rising with every
 * process, against 46, 50 and 51 ms with it (backends/hdf5.md has more). Datasets and groups
 * are unrelated trees, as the mark means, and a journaled ext4 only spreads them.
 *
 * So each time dosna makes a dataset's or a group's folder, the folder it goes in is marked
 * first (an open, two ioctls and a close, next to the files a new dataset writes: not worth
 * remembering, and a folder deleted and made again, or unmarked by hand, is marked again). On
 * other file systems, or a folder of another owner, nothing happens: the mark is a placement
 * hint, never needed for correctness; without the native module neither.
 */
import * as fs from 'node:fs';
import { nativeModule } from '../../native.js';
import { asideName } from './locks.js';

/** Marks `parent` so that the file system spreads its subfolders (see above); whether it is marked. */
export function spreadSubfolders(parent: string): boolean {
  const native = nativeModule();
  if (!native) return false;
  try {
    return native.spreadSubfolders(parent);
  } catch {
    return false; // a path the call refuses (it cannot hold a NUL): a hint, not a failure
  }
}

/**
 * Makes the hidden folder a new node (dataset or group) named `name` is built in, in `parent`
 * (marked first, see above), and returns its path; the caller renames it into place.
 */
export async function makeStagingFolder(parent: string, name: string): Promise<string> {
  const staging = asideName(parent, name, 'creating');
  spreadSubfolders(parent);
  await fs.promises.mkdir(staging);
  return staging;
}
