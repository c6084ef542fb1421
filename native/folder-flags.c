/*
 * spreadSubfolders(path) -> true when the folder's subfolders are now placed apart (ext2/3/4's
 * "top of a hierarchy" flag, FS_TOPDIR_FL, `chattr +T`), false where it cannot be set (another
 * file system, a folder of another owner, a system without the flag).
 *
 * Why (src/backends/hdf5/folder-placement.ts): ext4 puts a new file's inode in its folder's block
 * group, and a subfolder's near its parent unless the parent has this flag, when the Orlov
 * allocator spreads subfolders over the groups with the most room. A dataset's chunk files
 * then come from a group of their own, not from the one where the datasets deleted before
 * it freed theirs: without a journal, ext4 skips the inodes freed in the last minutes one by
 * one for every new file.
 */
#define _GNU_SOURCE
#include <fcntl.h>
#include <stdbool.h>
#include <stdlib.h>
#include <unistd.h>
#include "dosna.h"
#if defined(__linux__)
#include <sys/ioctl.h>
#include <linux/fs.h>
#endif

napi_value dosna_spread_subfolders(napi_env env, napi_callback_info info) {
  size_t argc = 1;
  napi_value argv[1];
  napi_get_cb_info(env, info, &argc, argv, NULL, NULL);
  char *path = argc < 1 ? NULL : dosna_path_arg(env, argv[0]);
  if (!path) return dosna_fail(env, "spreadSubfolders(path): a folder's path");
  bool spread = false;
#if defined(__linux__) && defined(FS_IOC_GETFLAGS) && defined(FS_TOPDIR_FL)
  int fd = open(path, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  if (fd >= 0) {
    /* The kernel reads and writes an int here, whatever the ioctl's declared type. */
    int flags = 0;
    if (ioctl(fd, FS_IOC_GETFLAGS, &flags) == 0) {
      spread = (flags & FS_TOPDIR_FL) != 0;
      if (!spread) {
        flags |= FS_TOPDIR_FL;
        spread = ioctl(fd, FS_IOC_SETFLAGS, &flags) == 0;
      }
    }
    close(fd);
  }
#endif
  free(path);
  napi_value result;
  napi_get_boolean(env, spread, &result);
  return result;
}
