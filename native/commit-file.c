/*
 * A chunk file's commit in one step: the new file written with no name, then made the chunk's
 * lock, checked and put in place of the chunk (renamed over it, or swapped with it), on libuv's
 * thread pool (or inline in worker threads).
 *
 * Why: profiled on ext4 (perf, the misaligned block written into 32^3 chunks), a quarter of the
 * samples were pool threads spinning on the chunk folder's lock and a quarter allocating inodes
 * under it: a named temporary file is created under the folder's lock, and so is every link,
 * rename and unlink. A file opened with O_TMPFILE gets its inode without that lock, and with
 * no temporary name there is nothing to unlink: two changes of the folder per commit (the
 * lock's link and the rename) instead of four, and one hand-off to the pool instead of four.
 * The lock's owner, which src/backends/hdf5/locks.ts finds through the temporary file's name
 * in the other protocol, is noted on the file itself (extended attribute user.dosna.owner).
 *
 * commitNewFile(lock, views, stampSeconds, owner, folder, folderIno, file, expected, replace, sync)
 *   Writes the views' bytes to a new unnamed file in `lock`'s folder, notes `owner` on it, sets
 *   its times to stampSeconds, and links it as `lock` (fails if the name exists: an exclusive
 *   create, the lock). Then, holding the lock, checks that `folder`'s inode is still
 *   `folderIno` (a decimal string) and, unless `expected` is undefined, that `file`'s generation
 *   is `expected` (null: that there is no `file`); then, as `replace` says, renames the lock over
 *   `file` ("rename"), swaps the two ("exchange", below), or keeps the lock ("hold").
 *   -> the new file's generation ("inode:mtimeNs") when the checks held (with "hold",
 *   the lock is then still held: the caller puts it in place); else a status, nothing left
 *   behind: 0 a check of `expected` failed, 1 the lock is held by someone else, 2 this file
 *   system cannot do it (no O_TMPFILE, no user extended attributes, no /proc), 3 `folder` is not
 *   the folder it was. A Promise unless `sync`; a failed system call rejects (or throws) an
 *   Error with Node's code, errno and syscall.
 *   "exchange" swaps the new file and the old one in one step (renameat2 RENAME_EXCHANGE) and
 *   removes the old, which then holds the lock's name: a rename over a file makes ext4 give the
 *   new file its blocks and start writing it out at once (auto_da_alloc), blocks freed again
 *   (and discarded on a `discard` mount) when the chunk is next rewritten; after a swap nothing
 *   is forced, and a file replaced before the page cache writes it out never gets blocks. Where
 *   there is no old file, the old file has other names, or there is no swap (another file
 *   system, an older kernel), it renames (swap_in below).
 * commitCounts() -> { renamed, swapped }: how many of this process's one-call commits put their
 *   file in place each way, for tests and benchmarks.
 * fileOwner(path) -> the owner noted on the file, or null when there is none or no such file;
 *   on the calling thread.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/uio.h>
#ifdef __linux__
#include <sys/xattr.h>
#endif
#include <unistd.h>
#include "dosna.h"

#define OWNER_ATTRIBUTE "user.dosna.owner"

enum { COMMITTED = -1, CONFLICT = 0, LOCKED = 1, UNSUPPORTED = 2, FOLDER_CHANGED = 3 };

/* What a commit does with the lock once the checks hold. */
typedef enum { HOLD, RENAME, EXCHANGE } replace_mode;

/* Commits that put their file in place by a rename and by a swap, since the module loaded (commitCounts). */
static uint64_t renamed_count, swapped_count;

typedef struct {
  napi_async_work work;
  napi_deferred deferred;
  napi_ref views;
  char *lock, *owner, *folder, *file, *expected; /* expected NULL: no check of the file */
  bool expect_absent;
  replace_mode replace;
  uint64_t folder_ino;
  double stamp;
  struct iovec *iov;
  size_t iov_count;
  int status;
  int error;
  const char *syscall;
  const char *error_path;
  uint64_t ino;
  int64_t mtime_ns;
} commit_task;

#ifdef __linux__
static void fail(commit_task *task, const char *syscall, const char *path) {
  task->error = errno;
  task->syscall = syscall;
  task->error_path = path;
}

/* Errors that mean this file system (or system) cannot make an unnamed file, note an owner or link through /proc. */
static bool unsupported(int error) {
  return error == EOPNOTSUPP || error == ENOTSUP || error == EISDIR || error == EINVAL || error == ENOSYS || error == EXDEV;
}

/* Writes, stamps and notes the unnamed file; false on an error or when unsupported (task->status). */
static bool fill(commit_task *task, int fd) {
  if (fsetxattr(fd, OWNER_ATTRIBUTE, task->owner, strlen(task->owner), 0) != 0) {
    if (unsupported(errno) || errno == EPERM) task->status = UNSUPPORTED;
    else fail(task, "fsetxattr", task->lock);
    return false;
  }
  if (dosna_write_all(fd, task->iov, task->iov_count) != 0) { fail(task, "write", task->lock); return false; }
  if (dosna_stamp(fd, task->stamp) != 0) { fail(task, "futime", task->lock); return false; }
  struct stat st;
  if (fstat(fd, &st) != 0) { fail(task, "fstat", task->lock); return false; }
  task->ino = (uint64_t)st.st_ino;
  task->mtime_ns = (int64_t)st.st_mtim.tv_sec * 1000000000LL + (int64_t)st.st_mtim.tv_nsec;
  return true;
}

/* The checks made holding the lock: COMMITTED when they hold, else the status; -2 on an error. */
static int check(commit_task *task) {
  struct stat st;
  if (stat(task->folder, &st) != 0) {
    if (errno == ENOENT || errno == ENOTDIR) return FOLDER_CHANGED;
    fail(task, "stat", task->folder);
    return -2;
  }
  if ((uint64_t)st.st_ino != task->folder_ino) return FOLDER_CHANGED;
  if (!task->expected) return COMMITTED;
  if (stat(task->file, &st) != 0) {
    if (errno != ENOENT && errno != ENOTDIR) {
      fail(task, "stat", task->file);
      return -2;
    }
    return task->expect_absent ? COMMITTED : CONFLICT;
  }
  if (task->expect_absent) return CONFLICT;
  char now[48];
  char *end = dosna_put_generation(now, (uint64_t)st.st_ino, (int64_t)st.st_mtim.tv_sec * 1000000000LL + (int64_t)st.st_mtim.tv_nsec);
  *end = '\0';
  return strcmp(now, task->expected) == 0 ? COMMITTED : CONFLICT;
}


/*
 * Swaps the lock (the new file) with `file` and removes the old one, releasing the lock; renames
 * where it does not swap. False on an error (task->error set), the lock still held.
 *
 * Only a file with no other name is swapped: between the swap and its removal the old file is
 * the lock, which waiters judge by its owner (src/backends/hdf5/locks.ts, lockOwner): by the
 * temporary names linked to it first, and a name a dead writer left on the chunk would make
 * the lock look abandoned. The old file is noted as this process's before the swap for the same
 * reason; its ctime, which the note and the swap both renew, is what a waiter without dosna's
 * native module goes by. A note left on a chunk where the swap then fails is harmless.
 */
static bool swap_in(commit_task *task) {
  struct stat st;
  int swap = -1;
  if (lstat(task->file, &st) == 0 && S_ISREG(st.st_mode) && st.st_nlink == 1 &&
      lsetxattr(task->file, OWNER_ATTRIBUTE, task->owner, strlen(task->owner), 0) == 0) {
    swap = dosna_swap_files(task->lock, task->file);
    if (swap > 0) {
      errno = swap;
      fail(task, "renameat2", task->file);
      return false;
    }
  }
  if (swap != 0) {
    if (rename(task->lock, task->file) != 0) { fail(task, "rename", task->lock); return false; }
    __atomic_fetch_add(&renamed_count, 1, __ATOMIC_RELAXED);
    return true;
  }
  __atomic_fetch_add(&swapped_count, 1, __ATOMIC_RELAXED);
  /* Committed. Should the old file's removal fail (it cannot for want of permission: its folder
   * was just written), the commit stands and the lock, noted as this process's, goes stale
   * with it: never a second unlink, which could take a lock someone else holds by then. */
  unlink(task->lock);
  return true;
}
#endif

#ifndef __linux__
/* O_TMPFILE, linkat through /proc and user extended attributes are Linux's: elsewhere the caller commits through a named file. */
static void run(napi_env env, void *data) {
  (void)env;
  ((commit_task *)data)->status = UNSUPPORTED;
}
#else
static void run(napi_env env, void *data) {
  (void)env;
  commit_task *task = data;
  task->status = COMMITTED;
  char dir[PATH_MAX];
  const char *slash = strrchr(task->lock, '/');
  size_t dir_length = slash ? (size_t)(slash - task->lock) : 0;
  if (dir_length >= sizeof dir) { errno = ENAMETOOLONG; fail(task, "open", task->lock); return; }
  if (slash == task->lock) dir_length = 1; /* a file of / */
  memcpy(dir, slash ? task->lock : ".", slash ? dir_length : 1);
  dir[slash ? dir_length : 1] = '\0';

  int fd;
  do fd = open(dir, O_TMPFILE | O_WRONLY | O_CLOEXEC, 0666); while (fd < 0 && errno == EINTR);
  if (fd < 0) {
    if (unsupported(errno)) task->status = UNSUPPORTED;
    else fail(task, "open", dir);
    return;
  }
  bool linked = false;
  if (fill(task, fd)) {
    char proc[64];
    snprintf(proc, sizeof proc, "/proc/self/fd/%d", fd);
    if (linkat(AT_FDCWD, proc, AT_FDCWD, task->lock, AT_SYMLINK_FOLLOW) == 0) linked = true;
    else if (errno == EEXIST) task->status = LOCKED;
    /* ENOENT is no /proc, or the folder gone since the open: only the first is unsupported. */
    else if (unsupported(errno) || errno == EPERM || (errno == ENOENT && access("/proc/self/fd", F_OK) != 0)) task->status = UNSUPPORTED;
    else fail(task, "link", task->lock);
  }
  if (close(fd) != 0 && task->error == 0 && linked) fail(task, "close", task->lock); /* a delayed write error */
  if (!linked) return;
  int outcome = task->error == 0 ? check(task) : -2;
  if (outcome == COMMITTED && task->replace == EXCHANGE && !swap_in(task)) outcome = -2;
  else if (outcome == COMMITTED && task->replace == RENAME) {
    if (rename(task->lock, task->file) == 0) __atomic_fetch_add(&renamed_count, 1, __ATOMIC_RELAXED);
    else {
      fail(task, "rename", task->lock);
      outcome = -2;
    }
  }
  if (outcome != COMMITTED) {
    unlink(task->lock); /* releases the lock; the file goes with its only name */
    if (outcome != -2) task->status = outcome;
  }
}

#endif

static void release(napi_env env, commit_task *task) {
  if (task->views) napi_delete_reference(env, task->views);
  free(task->lock);
  free(task->owner);
  free(task->folder);
  free(task->file);
  free(task->expected);
  free(task->iov);
  free(task);
}

static napi_value result_of(napi_env env, commit_task *task) {
  napi_value result;
  if (task->status != COMMITTED) {
    napi_create_int32(env, task->status, &result);
    return result;
  }
  char text[48];
  char *end = dosna_put_generation(text, task->ino, task->mtime_ns);
  napi_create_string_latin1(env, text, (size_t)(end - text), &result);
  return result;
}

static napi_value error_of(napi_env env, commit_task *task) {
  return dosna_errno_error(env, task->error, task->syscall, task->error_path ? task->error_path : task->lock);
}

static void done(napi_env env, napi_status status, void *data) {
  commit_task *task = data;
  if (status != napi_ok && task->error == 0) { task->error = ECANCELED; task->syscall = "queue"; }
  if (task->error == 0) napi_resolve_deferred(env, task->deferred, result_of(env, task));
  else napi_reject_deferred(env, task->deferred, error_of(env, task));
  napi_delete_async_work(env, task->work);
  release(env, task);
}

napi_value dosna_commit_new_file(napi_env env, napi_callback_info info) {
  size_t argc = 10;
  napi_value argv[10];
  napi_get_cb_info(env, info, &argc, argv, NULL, NULL);
  commit_task *task = argc == 10 ? calloc(1, sizeof *task) : NULL;
  bool ok = task && (task->lock = dosna_path_arg(env, argv[0])) && dosna_views_arg(env, argv[1], &task->iov, &task->iov_count, &task->views) &&
            napi_get_value_double(env, argv[2], &task->stamp) == napi_ok && isfinite(task->stamp) && task->stamp >= 0 &&
            (task->owner = dosna_path_arg(env, argv[3])) && (task->folder = dosna_path_arg(env, argv[4])) &&
            (task->file = dosna_path_arg(env, argv[6]));
  if (ok) {
    char *ino = dosna_path_arg(env, argv[5]);
    char *end = NULL;
    errno = 0;
    task->folder_ino = ino ? strtoull(ino, &end, 10) : 0;
    ok = ino && end && *end == '\0' && errno == 0;
    free(ino);
  }
  if (ok) {
    napi_valuetype type;
    napi_typeof(env, argv[7], &type);
    if (type == napi_null) {
      task->expect_absent = true;
      task->expected = strdup("");
      ok = task->expected != NULL;
    } else if (type == napi_string) {
      task->expected = dosna_path_arg(env, argv[7]);
      ok = task->expected != NULL && strlen(task->expected) < 48;
    } else {
      ok = type == napi_undefined;
    }
  }
  bool sync = false;
  if (ok) {
    char mode[16];
    size_t length = 0;
    ok = napi_get_value_string_latin1(env, argv[8], mode, sizeof mode, &length) == napi_ok;
    if (ok && strcmp(mode, "hold") == 0) task->replace = HOLD;
    else if (ok && strcmp(mode, "rename") == 0) task->replace = RENAME;
    else if (ok && strcmp(mode, "exchange") == 0) task->replace = EXCHANGE;
    else ok = false;
  }
  ok = ok && napi_get_value_bool(env, argv[9], &sync) == napi_ok;
  if (!ok) {
    if (task) release(env, task);
    return dosna_fail(env, "commitNewFile(lock, views, stampSeconds, owner, folder, folderIno, file, expected, replace, sync): paths, typed arrays, a time, a decimal inode, a generation, null or undefined, \"hold\", \"rename\" or \"exchange\", and a boolean");
  }
  if (sync) {
    run(env, task);
    napi_value result = task->error == 0 ? result_of(env, task) : NULL;
    if (!result) napi_throw(env, error_of(env, task));
    release(env, task);
    return result;
  }
  napi_value promise, resource;
  napi_create_promise(env, &task->deferred, &promise);
  napi_create_string_utf8(env, "dosna.commitNewFile", NAPI_AUTO_LENGTH, &resource);
  napi_create_async_work(env, NULL, resource, run, done, task, &task->work);
  napi_queue_async_work(env, task->work);
  return promise;
}

napi_value dosna_file_owner(napi_env env, napi_callback_info info) {
  size_t argc = 1;
  napi_value argv[1], result;
  napi_get_cb_info(env, info, &argc, argv, NULL, NULL);
  char *path = argc == 1 ? dosna_path_arg(env, argv[0]) : NULL;
  if (!path) return dosna_fail(env, "fileOwner(path): a non-empty path");
  char owner[256];
#ifdef __linux__
  ssize_t n = lgetxattr(path, OWNER_ATTRIBUTE, owner, sizeof owner - 1);
#else
  ssize_t n = -1;
#endif
  free(path);
  if (n < 0) {
    napi_get_null(env, &result);
    return result;
  }
  napi_create_string_utf8(env, owner, (size_t)n, &result);
  return result;
}

napi_value dosna_commit_counts(napi_env env, napi_callback_info info) {
  (void)info;
  napi_value result, renamed, swapped;
  napi_create_object(env, &result);
  napi_create_double(env, (double)__atomic_load_n(&renamed_count, __ATOMIC_RELAXED), &renamed);
  napi_create_double(env, (double)__atomic_load_n(&swapped_count, __ATOMIC_RELAXED), &swapped);
  napi_set_named_property(env, result, "renamed", renamed);
  napi_set_named_property(env, result, "swapped", swapped);
  return result;
}
