/* dosna's native module: shared declarations of its functions (module.c registers them). */
#ifndef DOSNA_NATIVE_H
#define DOSNA_NATIVE_H
#include <node_api.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>
#include <sys/uio.h>

/* Throws a RangeError (code DOSNA_NATIVE_PLAN) and returns NULL for the caller to return. */
napi_value dosna_fail(napi_env env, const char *message);

/* A path argument as a new C string (the caller frees it), or NULL when it is empty, not a string or holds a NUL (module.c). */
char *dosna_path_arg(napi_env env, napi_value value);

/* The bytes of a typed array (any element type): 1 and its memory, or 0 when `value` is not one (strided.c). */
int dosna_bytes_of(napi_env env, napi_value value, uint8_t **data, size_t *length);

/*
 * A row-copy plan (strided.c's layout) checked against the arrays' byte lengths: NULL when every
 * row lies inside both (*empty when there is nothing to copy) and its flags are known (*flags),
 * else why not. dosna_plan_run then copies on any thread.
 */
#define PLAN_COLD_DESTINATION 1
const char *dosna_plan_check(const double *plan, size_t planLength, size_t dstLength, size_t srcLength, bool *empty, int *flags);
void dosna_plan_run(uint8_t *dst, size_t dstLength, const uint8_t *src, size_t srcLength, const double *plan, int flags);

/* A copy to make after a read if it went as expected (copy-after.c). */
typedef struct dosna_copy_after dosna_copy_after;
/* readFileRanges's `then` object taken and checked: NULL, with *why, when it is malformed. */
dosna_copy_after *dosna_copy_after_arg(napi_env env, napi_value object, const char **why);
/* After a read that moved `bytes_read` bytes (on any thread): copies when the read went as expected. */
void dosna_copy_after_read(dosna_copy_after *then, uint64_t bytes_read);
/* Whether the copy was made. */
bool dosna_copy_after_made(const dosna_copy_after *then);
void dosna_copy_after_release(napi_env env, dosna_copy_after *then);

/* An Error like Node's for a failed system call: code (e.g. "ENOENT"), errno and syscall, naming the path (file-io.c). */
napi_value dosna_errno_error(napi_env env, int error, const char *syscall, const char *path);
/* Swaps the names of two files in one step (renameat2 RENAME_EXCHANGE): 0 when swapped, -1 where
 * that cannot be done (not Linux, a file system or kernel without it, `b` missing), else errno. */
int dosna_swap_files(const char *a, const char *b);

/* Writes a file's generation, "inode:mtimeNs" as src/backends/hdf5/files.ts makes it, at `at` (at most 41 characters); returns the end (file-io.c). */
char *dosna_put_generation(char *at, uint64_t ino, int64_t mtime_ns);

/* The views (an array of typed arrays) as iovecs (*iov, the caller frees it) and a reference keeping them alive; false when malformed (file-io.c). */
bool dosna_views_arg(napi_env env, napi_value array, struct iovec **iov, size_t *count, napi_ref *ref);
/* Writes every iovec from offset 0 of `fd` (pwritev in calls of at most IOV_MAX): 0, or -1 (errno) (file-io.c). */
int dosna_write_all(int fd, struct iovec *iov, size_t count);
/* Sets the access and modification times of `fd` to `seconds` as libuv would: 0, or -1 (errno) (file-io.c). */
int dosna_stamp(int fd, double seconds);

/* Fills `count` iovecs from `position` of `fd` (preadv in calls of at most IOV_MAX): the bytes read, fewer only at the file's end, or -1 (errno) (file-io.c). */
ssize_t dosna_read_all(int fd, struct iovec *iov, size_t count, off_t position);

/* A chunk file's descriptor kept open between reads, and the file it was opened on (open-files.c). */
typedef struct {
  int fd;
  uint64_t dev, ino;
  int64_t size, mtime_ns;
} dosna_open_file;
/* Takes the kept descriptor of `path` out of the table (true), noting the table's epoch either way (for the give). */
bool dosna_open_files_take(const char *path, dosna_open_file *file, uint64_t *taken_at);
/* Puts a descriptor back (or in) for the next read, unless a forget came since `taken_at`: then closes it. */
void dosna_open_files_give(const char *path, const dosna_open_file *file, uint64_t taken_at);

napi_value dosna_copy_rows(napi_env env, napi_callback_info info);
napi_value dosna_copy_rows_joined(napi_env env, napi_callback_info info);
napi_value dosna_correlate_axis(napi_env env, napi_callback_info info);
napi_value dosna_tune_malloc(napi_env env, napi_callback_info info);
napi_value dosna_keep_large_blocks(napi_env env, napi_callback_info info);
napi_value dosna_trim_malloc(napi_env env, napi_callback_info info);
napi_value dosna_adjust_external_memory(napi_env env, napi_callback_info info);
napi_value dosna_exchange_files(napi_env env, napi_callback_info info);
napi_value dosna_commit_counts(napi_env env, napi_callback_info info);
napi_value dosna_recycled_shared_buffer(napi_env env, napi_callback_info info);
napi_value dosna_shared_pool_stats(napi_env env, napi_callback_info info);
napi_value dosna_read_file_ranges(napi_env env, napi_callback_info info);
napi_value dosna_write_new_file(napi_env env, napi_callback_info info);
napi_value dosna_commit_new_file(napi_env env, napi_callback_info info);
napi_value dosna_file_owner(napi_env env, napi_callback_info info);
napi_value dosna_spread_subfolders(napi_env env, napi_callback_info info);
napi_value dosna_stat_generations(napi_env env, napi_callback_info info);
napi_value dosna_read_templated_files(napi_env env, napi_callback_info info);
napi_value dosna_forget_open_files(napi_env env, napi_callback_info info);
napi_value dosna_open_files_stats(napi_env env, napi_callback_info info);
#endif
