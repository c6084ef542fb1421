/*
 * readTemplatedFiles(paths, prefix, suffix, dataBytes, starts, counts, views, outcome) -> undefined,
 * on the calling thread: for each chunk file of a byte template (src/backends/hdf5/template.ts:
 * `prefix`, the chunk's `dataBytes` bytes, `suffix`), its data bytes from starts[i] on into its
 * counts[i] views (the next ones of `views`); outcome[i] (a Float64Array) gets 1 when read, 0 when
 * there is no such file, -1 when the file is not of the template (its size, prefix or suffix differ:
 * the caller reads it through HDF5; its views may hold anything then). A failed system call throws
 * an Error with Node's code, errno and syscall, naming the path (the files before it are read).
 *
 * Why one call for many files: a read of many small chunk parts (a plane of a cube in 32^3 chunks
 * touches 64 files) spent more in JavaScript around each file's call than in the file's own system
 * calls. Inline only: the files are small (the caller sees to that), and a read from the page cache
 * costs less than a hand-off to the thread pool.
 *
 * A file is checked against the template when it is opened: its size by fstat, its prefix read with
 * the part when the part starts near it, its suffix read when there is one. Its descriptor is then
 * kept (open-files.c), and the next read of the same file, while stat shows it unchanged, is that
 * stat and one positioned read.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/uio.h>
#include <unistd.h>
#include "dosna.h"

/* A part that starts less than this past the prefix is read with it in one call, the gap into scratch memory. */
#define MERGE_GAP_BYTES (64 * 1024)

enum { READ = 1, MISSING = 0, FOREIGN = -1, FAILED = -2 };

typedef struct {
  const uint8_t *prefix, *suffix;
  size_t prefix_length, suffix_length, data_bytes;
  uint8_t *scratch; /* prefix_length + MERGE_GAP_BYTES + suffix_length bytes */
  struct iovec *merged_iov; /* room for the most views of a file, and two */
} template_args;

typedef struct {
  int error;
  const char *syscall;
} failure;

static int failed(failure *why, const char *syscall) {
  why->error = errno;
  why->syscall = syscall;
  return FAILED;
}

static bool unchanged(const dosna_open_file *file, const struct stat *st) {
  return file->dev == (uint64_t)st->st_dev && file->ino == (uint64_t)st->st_ino && file->size == (int64_t)st->st_size &&
         file->mtime_ns == (int64_t)st->st_mtim.tv_sec * 1000000000LL + (int64_t)st->st_mtim.tv_nsec;
}

static int read_one(const char *path, const template_args *t, size_t start, struct iovec *iov, size_t count, size_t wanted, failure *why) {
  dosna_open_file kept;
  uint64_t epoch;
  if (dosna_open_files_take(path, &kept, &epoch)) {
    struct stat st;
    int rc;
    do rc = stat(path, &st); while (rc != 0 && errno == EINTR);
    if (rc == 0 && unchanged(&kept, &st)) {
      ssize_t n = dosna_read_all(kept.fd, iov, count, (off_t)(t->prefix_length + start));
      if (n == (ssize_t)wanted) {
        dosna_open_files_give(path, &kept, epoch);
        return READ;
      }
      int error = errno;
      close(kept.fd);
      if (n < 0) { errno = error; return failed(why, "read"); }
      /* Shorter than its size said: read it afresh below. */
    } else {
      int error = errno;
      close(kept.fd);
      if (rc != 0) {
        if (error == ENOENT || error == ENOTDIR) return MISSING;
        errno = error;
        return failed(why, "stat");
      }
    }
  }
  int fd;
  do fd = open(path, O_RDONLY | O_CLOEXEC); while (fd < 0 && errno == EINTR);
  if (fd < 0) return errno == ENOENT || errno == ENOTDIR ? MISSING : failed(why, "open");
  struct stat st;
  if (fstat(fd, &st) != 0) {
    int status = failed(why, "fstat");
    close(fd);
    return status;
  }
  int status = READ;
  if (!S_ISREG(st.st_mode) || (uint64_t)st.st_size != t->prefix_length + t->data_bytes + t->suffix_length) {
    status = FOREIGN;
  } else {
    /* The prefix, and with it the part when the part starts near it (the gap read into scratch). */
    uint8_t *head = t->scratch;
    bool merged = start < MERGE_GAP_BYTES;
    struct iovec *first = t->merged_iov;
    size_t n_first = 0;
    first[n_first++] = (struct iovec){ head, t->prefix_length };
    if (merged && start > 0) first[n_first++] = (struct iovec){ head + t->prefix_length, start };
    if (merged) {
      memcpy(first + n_first, iov, count * sizeof *iov);
      n_first += count;
    }
    ssize_t n = dosna_read_all(fd, first, n_first, 0);
    if (n < 0) status = failed(why, "read");
    else if (n != (ssize_t)(t->prefix_length + (merged ? start + wanted : 0)) || memcmp(head, t->prefix, t->prefix_length) != 0) status = FOREIGN;
    if (status == READ && t->suffix_length > 0) {
      uint8_t *tail = t->scratch + t->prefix_length + MERGE_GAP_BYTES;
      struct iovec rest = { tail, t->suffix_length };
      ssize_t k = dosna_read_all(fd, &rest, 1, (off_t)(t->prefix_length + t->data_bytes));
      if (k < 0) status = failed(why, "read");
      else if (k != (ssize_t)t->suffix_length || memcmp(tail, t->suffix, t->suffix_length) != 0) status = FOREIGN;
    }
    if (status == READ && !merged) {
      ssize_t k = dosna_read_all(fd, iov, count, (off_t)(t->prefix_length + start));
      if (k < 0) status = failed(why, "read");
      else if (k != (ssize_t)wanted) status = FOREIGN;
    }
  }
  if (status != READ) {
    int error = errno;
    close(fd); /* a read-only descriptor: nothing to lose at close */
    errno = error;
    return status;
  }
  dosna_open_file file = {
    .fd = fd, .dev = (uint64_t)st.st_dev, .ino = (uint64_t)st.st_ino, .size = (int64_t)st.st_size,
    .mtime_ns = (int64_t)st.st_mtim.tv_sec * 1000000000LL + (int64_t)st.st_mtim.tv_nsec,
  };
  dosna_open_files_give(path, &file, epoch); /* the epoch from before the open: a forget since then closes it */
  return READ;
}

napi_value dosna_read_templated_files(napi_env env, napi_callback_info info) {
  size_t argc = 8;
  napi_value argv[8];
  napi_get_cb_info(env, info, &argc, argv, NULL, NULL);
  const char *usage = "readTemplatedFiles(paths, prefix, suffix, dataBytes, starts: Float64Array, counts: Uint32Array, views, outcome: Float64Array): "
                      "a start, a view count and an outcome per path, counts adding up to the views, each file's part inside its data bytes";
  bool is_array = false;
  uint32_t files = 0, view_count = 0;
  if (argc != 8 || napi_is_array(env, argv[0], &is_array) != napi_ok || !is_array) return dosna_fail(env, usage);
  napi_get_array_length(env, argv[0], &files);
  if (napi_is_array(env, argv[6], &is_array) != napi_ok || !is_array) return dosna_fail(env, usage);
  napi_get_array_length(env, argv[6], &view_count);
  template_args t = { 0 };
  uint8_t *prefix, *suffix;
  double data_bytes = -1;
  napi_typedarray_type type;
  size_t starts_n, counts_n, out_n, offset;
  void *starts_d, *counts_d, *out_d;
  napi_value buffer;
  if (!dosna_bytes_of(env, argv[1], &prefix, &t.prefix_length) || !dosna_bytes_of(env, argv[2], &suffix, &t.suffix_length) ||
      napi_get_value_double(env, argv[3], &data_bytes) != napi_ok || !(data_bytes >= 0 && data_bytes <= 9007199254740991.0 && data_bytes == floor(data_bytes)) ||
      napi_get_typedarray_info(env, argv[4], &type, &starts_n, &starts_d, &buffer, &offset) != napi_ok || type != napi_float64_array || starts_n != files ||
      napi_get_typedarray_info(env, argv[5], &type, &counts_n, &counts_d, &buffer, &offset) != napi_ok || type != napi_uint32_array || counts_n != files ||
      napi_get_typedarray_info(env, argv[7], &type, &out_n, &out_d, &buffer, &offset) != napi_ok || type != napi_float64_array || out_n != files) {
    return dosna_fail(env, usage);
  }
  t.prefix = prefix;
  t.suffix = suffix;
  t.data_bytes = (size_t)data_bytes;
  const double *starts = starts_d;
  const uint32_t *counts = counts_d;
  double *outcome = out_d;
  size_t total_views = 0, most_views = 0;
  for (uint32_t f = 0; f < files; f++) {
    if (!(starts[f] >= 0 && starts[f] <= data_bytes && starts[f] == floor(starts[f]))) return dosna_fail(env, usage);
    total_views += counts[f];
    if (counts[f] > most_views) most_views = counts[f];
  }
  if (total_views != view_count) return dosna_fail(env, usage);
  struct iovec *iov = malloc(sizeof(struct iovec) * (view_count + most_views + 2));
  t.scratch = malloc(t.prefix_length + MERGE_GAP_BYTES + t.suffix_length);
  if (!iov || !t.scratch) {
    free(iov);
    free(t.scratch);
    return dosna_fail(env, "readTemplatedFiles: out of memory");
  }
  t.merged_iov = iov + view_count;
  for (uint32_t i = 0; i < view_count; i++) {
    napi_value view;
    uint8_t *data;
    size_t length;
    if (napi_get_element(env, argv[6], i, &view) != napi_ok || !dosna_bytes_of(env, view, &data, &length)) {
      free(iov);
      free(t.scratch);
      return dosna_fail(env, usage);
    }
    iov[i].iov_base = data;
    iov[i].iov_len = length;
  }
  /* Every file's part inside its data bytes before any file is opened. */
  size_t at = 0;
  for (uint32_t f = 0; f < files; f++) {
    size_t wanted = 0;
    for (uint32_t v = 0; v < counts[f]; v++) wanted += iov[at + v].iov_len;
    if ((size_t)starts[f] + wanted > t.data_bytes) {
      free(iov);
      free(t.scratch);
      return dosna_fail(env, usage);
    }
    at += counts[f];
  }
  char path[PATH_MAX];
  at = 0;
  for (uint32_t f = 0; f < files; f++) {
    napi_value item;
    size_t n = 0;
    if (napi_get_element(env, argv[0], f, &item) != napi_ok ||
        napi_get_value_string_utf8(env, item, path, sizeof path, &n) != napi_ok || n == 0 || n >= sizeof path - 1 || strlen(path) != n) {
      free(iov);
      free(t.scratch);
      return dosna_fail(env, "readTemplatedFiles(paths, ...): each path a non-empty string shorter than PATH_MAX, without NUL");
    }
    size_t wanted = 0;
    for (uint32_t v = 0; v < counts[f]; v++) wanted += iov[at + v].iov_len;
    failure why = { 0, NULL };
    int status = read_one(path, &t, (size_t)starts[f], iov + at, counts[f], wanted, &why);
    if (status == FAILED) {
      napi_value error = dosna_errno_error(env, why.error, why.syscall, path);
      free(iov);
      free(t.scratch);
      napi_throw(env, error);
      return NULL;
    }
    outcome[f] = status;
    at += counts[f];
  }
  free(iov);
  free(t.scratch);
  return NULL;
}
