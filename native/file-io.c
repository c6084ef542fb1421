/*
 * Chunk files read and written in one step each: open, the vectored reads or writes, the stat
 * (and the stamp) and the close of one file in one call, on libuv's thread pool as Node's own
 * file calls run, or inline when asked (worker threads, tiny reads).
 *
 * Why native: through Node's fs every one of those system calls is a round trip of its own
 * through the thread pool, and on the main thread each round trip's hand-off (waking a pool
 * thread, the completion's wake-up, a promise) costs more than the call itself for the small
 * chunk files of 32^3 chunks: profiled, reading a plane of 64 such files spent half its time
 * handing off open, readv and close. One hand-off per file instead of three or four.
 *
 * readFileRanges(path, positions, counts, views, withGeneration, sync, then?)
 *   positions: Float64Array, the file offset of each run of views;
 *   counts: Uint32Array, how many of `views` (in order) each run fills;
 *   views: typed arrays (their bytes are filled);
 *   then: optionally { bytes, checks, dst, src, plan } (copy-after.c): when the read moved exactly `bytes` and
 *   each view of `checks` ([view, expected, view, expected, ...]) begins with its expected
 *   bytes, copy the rows of `plan` (strided.c's layout) from `src` to `dst` on the same thread,
 *   right after the read: the bytes just read are still in that core's cache, and the caller's
 *   thread is spared the copy (profiled on the main thread: a block of 8 chunk files of 1 MiB,
 *   staged and copied out there, spent half its time in that copy);
 *   -> null when there is no such file; else { bytes, generation, copied }: bytes is how many
 *   bytes were read, the runs in order up to and including the first that the file's end cut
 *   short (its views may then hold anything after those bytes); generation is "inode:mtimeNs"
 *   of the very file read (withGeneration); copied whether `then`'s copy was made.
 * writeNewFile(path, views, stampSeconds, sync)
 *   creates or truncates `path`, writes the views' bytes in order from offset 0, sets its
 *   access and modification times to stampSeconds and returns its generation, "inode:mtimeNs".
 * statGenerations(paths)
 *   the generation of each file, empty where there is none; paths and generations each one
 *   string, separated by NUL (below).
 * The first two return a Promise of that result unless `sync`; a failed system call rejects (or throws)
 * an Error with Node's `code` (e.g. "EACCES"), `errno` and `syscall`.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <limits.h>
#include <math.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/uio.h>
#include <unistd.h>
#include <uv.h>
#include "dosna.h"

#ifndef IOV_MAX
#define IOV_MAX 1024
#endif

typedef struct {
  napi_async_work work;
  napi_deferred deferred;
  napi_ref views; /* keeps the views (and their memory) alive while the pool thread uses them */
  char *path;
  bool writing;
  /* reading: runs of views */
  size_t runs;
  double *positions;
  uint32_t *counts;
  bool with_generation;
  dosna_copy_after *then; /* NULL when the caller copies itself */
  /* writing */
  double stamp;
  struct iovec *iov;
  size_t iov_count;
  /* outcome */
  bool missing;
  uint64_t bytes; /* read */
  int error; /* errno of the failed call, 0 when none */
  const char *syscall;
  uint64_t ino;
  int64_t mtime_ns;
} file_task;

static void fail(file_task *task, const char *syscall) {
  task->error = errno;
  task->syscall = syscall;
}

static void take_stat(file_task *task, int fd) {
  struct stat st;
  if (fstat(fd, &st) != 0) { fail(task, "fstat"); return; }
  task->ino = (uint64_t)st.st_ino;
  task->mtime_ns = (int64_t)st.st_mtim.tv_sec * 1000000000LL + (int64_t)st.st_mtim.tv_nsec;
}

/*
 * Fills `count` iovecs from `position`, in calls of at most IOV_MAX: the bytes read, or -1 on an
 * error (errno). Less than the iovecs hold only when a call returned less than asked, which for
 * a regular file on a local file system is its end (they read regular files whole), as
 * src/backends/hdf5/files.ts's fallback assumes too.
 */
ssize_t dosna_read_all(int fd, struct iovec *iov, size_t count, off_t position) {
  ssize_t total = 0;
  while (count > 0) {
    int batch = count > IOV_MAX ? IOV_MAX : (int)count;
    size_t asked = 0;
    for (int i = 0; i < batch; i++) asked += iov[i].iov_len;
    ssize_t n = preadv(fd, iov, batch, position);
    if (n < 0) {
      if (errno == EINTR) continue;
      return -1;
    }
    total += n;
    if ((size_t)n < asked) return total;
    position += n;
    iov += batch;
    count -= (size_t)batch;
  }
  return total;
}

/* One run of a read: false when the file ended before it was whole, or on an error (task->error). */
static bool read_run(file_task *task, int fd, struct iovec *iov, size_t count, off_t position) {
  size_t asked = 0;
  for (size_t i = 0; i < count; i++) asked += iov[i].iov_len;
  ssize_t n = dosna_read_all(fd, iov, count, position);
  if (n < 0) {
    fail(task, "read");
    return false;
  }
  task->bytes += (uint64_t)n;
  return (size_t)n == asked;
}

static void run_read(file_task *task) {
  int fd;
  do fd = open(task->path, O_RDONLY | O_CLOEXEC); while (fd < 0 && errno == EINTR);
  if (fd < 0) {
    if (errno == ENOENT || errno == ENOTDIR) task->missing = true;
    else fail(task, "open");
    return;
  }
  if (task->with_generation) take_stat(task, fd);
  struct iovec *iov = task->iov;
  bool whole = task->error == 0;
  for (size_t r = 0; r < task->runs && whole; r++) {
    whole = read_run(task, fd, iov, task->counts[r], (off_t)task->positions[r]);
    iov += task->counts[r];
  }
  close(fd); /* a read-only descriptor: nothing to lose at close */
  if (task->then && task->error == 0) dosna_copy_after_read(task->then, task->bytes);
}

/* Writes every iovec from offset 0, in calls of at most IOV_MAX: 0, or -1 on an error (errno). */
int dosna_write_all(int fd, struct iovec *iov, size_t count) {
  off_t position = 0;
  while (count > 0) {
    int batch = count > IOV_MAX ? IOV_MAX : (int)count;
    ssize_t n = pwritev(fd, iov, batch, position);
    if (n < 0) {
      if (errno == EINTR) continue;
      return -1;
    }
    position += n;
    /* Past the views written whole; a view written in part keeps its rest for the next call. */
    while (count > 0 && (size_t)n >= iov->iov_len) { n -= (ssize_t)iov->iov_len; iov++; count--; }
    if (count > 0 && n > 0) { iov->iov_base = (char *)iov->iov_base + n; iov->iov_len -= (size_t)n; }
  }
  return 0;
}

/* Sets a file's access and modification times to `seconds`, as libuv converts a time in seconds: whole seconds, and the fraction truncated to ns. */
int dosna_stamp(int fd, double seconds) {
  struct timespec times[2];
  times[0].tv_sec = (time_t)floor(seconds);
  times[0].tv_nsec = (long)((seconds - (double)times[0].tv_sec) * 1e9);
  times[1] = times[0];
  return futimens(fd, times);
}

static void run_write(file_task *task) {
  int fd;
  do fd = open(task->path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0666); while (fd < 0 && errno == EINTR);
  if (fd < 0) { fail(task, "open"); return; }
  if (dosna_write_all(fd, task->iov, task->iov_count) != 0) fail(task, "write");
  else if (dosna_stamp(fd, task->stamp) != 0) fail(task, "futime");
  else take_stat(task, fd);
  if (close(fd) != 0 && task->error == 0) fail(task, "close"); /* a delayed write error shows here */
}

static void run(napi_env env, void *data) {
  (void)env;
  file_task *task = data;
  if (task->writing) run_write(task);
  else run_read(task);
}

static void release(napi_env env, file_task *task) {
  if (task->views) napi_delete_reference(env, task->views);
  if (task->then) dosna_copy_after_release(env, task->then);
  free(task->path);
  free(task->positions);
  free(task->counts);
  free(task->iov);
  free(task);
}

napi_value dosna_errno_error(napi_env env, int error, const char *syscall, const char *path) {
  char message[PATH_MAX + 128];
  snprintf(message, sizeof message, "%s: %s, %s '%s'", uv_err_name(-error), strerror(error), syscall, path);
  napi_value text, code, number, name, result;
  napi_create_string_utf8(env, message, NAPI_AUTO_LENGTH, &text);
  napi_create_string_utf8(env, uv_err_name(-error), NAPI_AUTO_LENGTH, &code);
  napi_create_error(env, code, text, &result);
  napi_create_int32(env, -error, &number);
  napi_set_named_property(env, result, "errno", number);
  napi_create_string_utf8(env, syscall, NAPI_AUTO_LENGTH, &name);
  napi_set_named_property(env, result, "syscall", name);
  return result;
}

static napi_value error_of(napi_env env, file_task *task) {
  return dosna_errno_error(env, task->error, task->syscall, task->path);
}

/* Writes `value` in decimal at `at`; returns the end. */
static char *put_decimal(char *at, uint64_t value) {
  char digits[20];
  int n = 0;
  do digits[n++] = (char)('0' + value % 10); while ((value /= 10) != 0);
  while (n > 0) *at++ = digits[--n];
  return at;
}

/*
 * Writes "inode:mtimeNs" at `at`, as `generationOf` makes it, and returns the end (at most 41
 * characters). By hand, not with snprintf: a line's check formats one per chunk, and snprintf
 * took a fifth of statGenerations' time outside the system calls (perf).
 */
char *dosna_put_generation(char *at, uint64_t ino, int64_t mtime_ns) {
  at = put_decimal(at, ino);
  *at++ = ':';
  if (mtime_ns < 0) *at++ = '-';
  return put_decimal(at, mtime_ns < 0 ? 0 - (uint64_t)mtime_ns : (uint64_t)mtime_ns);
}

static napi_value generation_of(napi_env env, file_task *task) {
  char text[48];
  char *end = dosna_put_generation(text, task->ino, task->mtime_ns);
  napi_value value;
  napi_create_string_latin1(env, text, (size_t)(end - text), &value);
  return value;
}

static napi_value result_of(napi_env env, file_task *task) {
  napi_value result;
  if (task->writing) return generation_of(env, task);
  if (task->missing) {
    napi_get_null(env, &result);
    return result;
  }
  napi_value bytes;
  napi_create_object(env, &result);
  napi_create_double(env, (double)task->bytes, &bytes);
  napi_set_named_property(env, result, "bytes", bytes);
  if (task->with_generation) napi_set_named_property(env, result, "generation", generation_of(env, task));
  napi_value copied;
  napi_get_boolean(env, task->then && dosna_copy_after_made(task->then), &copied);
  napi_set_named_property(env, result, "copied", copied);
  return result;
}

static void done(napi_env env, napi_status status, void *data) {
  file_task *task = data;
  if (status != napi_ok && task->error == 0) { task->error = ECANCELED; task->syscall = "queue"; }
  if (task->error == 0) napi_resolve_deferred(env, task->deferred, result_of(env, task));
  else napi_reject_deferred(env, task->deferred, error_of(env, task));
  napi_delete_async_work(env, task->work);
  release(env, task);
}

/*
 * The views' memory as iovecs (*iov, freed by the caller) and a reference keeping them alive
 * while a pool thread uses them; false when `array` is not an array of typed arrays.
 */
bool dosna_views_arg(napi_env env, napi_value array, struct iovec **iov, size_t *count, napi_ref *ref) {
  bool is_array = false;
  uint32_t length = 0;
  if (napi_is_array(env, array, &is_array) != napi_ok || !is_array) return false;
  napi_get_array_length(env, array, &length);
  *iov = malloc(sizeof(struct iovec) * (length ? length : 1));
  if (!*iov) return false;
  *count = length;
  for (uint32_t i = 0; i < length; i++) {
    napi_value view;
    uint8_t *data;
    size_t size;
    if (napi_get_element(env, array, i, &view) != napi_ok || !dosna_bytes_of(env, view, &data, &size)) return false;
    (*iov)[i].iov_base = data;
    (*iov)[i].iov_len = size;
  }
  return napi_create_reference(env, array, 1, ref) == napi_ok;
}

static napi_value start(napi_env env, file_task *task, bool sync, const char *name) {
  if (sync) {
    run(env, task);
    napi_value result = task->error == 0 ? result_of(env, task) : NULL;
    if (!result) napi_throw(env, error_of(env, task));
    release(env, task);
    return result;
  }
  napi_value promise, resource;
  napi_create_promise(env, &task->deferred, &promise);
  napi_create_string_utf8(env, name, NAPI_AUTO_LENGTH, &resource);
  napi_create_async_work(env, NULL, resource, run, done, task, &task->work);
  napi_queue_async_work(env, task->work);
  return promise;
}

napi_value dosna_read_file_ranges(napi_env env, napi_callback_info info) {
  size_t argc = 7;
  napi_value argv[7];
  napi_get_cb_info(env, info, &argc, argv, NULL, NULL);
  file_task *task = argc == 6 || argc == 7 ? calloc(1, sizeof *task) : NULL;
  bool ok = task && (task->path = dosna_path_arg(env, argv[0])) && dosna_views_arg(env, argv[3], &task->iov, &task->iov_count, &task->views);
  if (ok) {
    napi_typedarray_type pt, ct;
    size_t pn, cn, offset;
    void *pd, *cd;
    napi_value buffer;
    ok = napi_get_typedarray_info(env, argv[1], &pt, &pn, &pd, &buffer, &offset) == napi_ok && pt == napi_float64_array &&
         napi_get_typedarray_info(env, argv[2], &ct, &cn, &cd, &buffer, &offset) == napi_ok && ct == napi_uint32_array && pn == cn;
    if (ok) {
      task->runs = pn;
      task->positions = malloc(sizeof(double) * (pn ? pn : 1));
      task->counts = malloc(sizeof(uint32_t) * (pn ? pn : 1));
      ok = task->positions && task->counts;
      if (ok) {
        memcpy(task->positions, pd, sizeof(double) * pn);
        memcpy(task->counts, cd, sizeof(uint32_t) * pn);
        size_t total = 0;
        for (size_t r = 0; r < pn; r++) {
          ok = ok && task->positions[r] >= 0 && task->positions[r] <= 9007199254740991.0 && task->positions[r] == floor(task->positions[r]);
          total += task->counts[r];
        }
        ok = ok && total == task->iov_count;
      }
    }
    napi_get_value_bool(env, argv[4], &task->with_generation);
  }
  bool sync = false;
  if (ok) napi_get_value_bool(env, argv[5], &sync);
  if (!ok) {
    if (task) release(env, task);
    return dosna_fail(env, "readFileRanges(path, positions: Float64Array, counts: Uint32Array, views, withGeneration, sync, then?): counts must add up to the views");
  }
  napi_valuetype then_type = napi_undefined;
  if (argc == 7) napi_typeof(env, argv[6], &then_type);
  if (then_type != napi_undefined && then_type != napi_null) {
    const char *why = NULL;
    if (then_type != napi_object || !(task->then = dosna_copy_after_arg(env, argv[6], &why))) {
      release(env, task);
      return dosna_fail(env, why ? why : "readFileRanges: then must be an object");
    }
  }
  return start(env, task, sync, "dosna.readFileRanges");
}

napi_value dosna_write_new_file(napi_env env, napi_callback_info info) {
  size_t argc = 4;
  napi_value argv[4];
  napi_get_cb_info(env, info, &argc, argv, NULL, NULL);
  file_task *task = argc == 4 ? calloc(1, sizeof *task) : NULL;
  bool ok = task && (task->path = dosna_path_arg(env, argv[0])) && dosna_views_arg(env, argv[1], &task->iov, &task->iov_count, &task->views) &&
            napi_get_value_double(env, argv[2], &task->stamp) == napi_ok && isfinite(task->stamp) && task->stamp >= 0;
  bool sync = false;
  if (ok) napi_get_value_bool(env, argv[3], &sync);
  if (!ok) {
    if (task) release(env, task);
    return dosna_fail(env, "writeNewFile(path, views, stampSeconds, sync): a path, typed arrays and a time");
  }
  task->writing = true;
  return start(env, task, sync, "dosna.writeNewFile");
}

/*
 * statGenerations(paths) -> the generation of each file ("inode:mtimeNs", as `generationOf`
 * makes from a bigint stat), empty where there is no such file; on the calling thread. For the
 * chunk cache's check of many cached chunks at once: through Node a stat costs twice the system
 * call (the bigint Stats object and its strings), measured 2.3 against 1.1-1.6 us. `paths` is
 * one string of the paths separated by NUL (which no path holds), and the result one string of
 * the generations separated by NUL: an array in and out took a lookup, a string and a store per
 * file, 0.45 us of the 1.4 a file cost (perf: 8 paths in 11.1 us, the system calls 5.8).
 * Any other failure throws an Error with Node's code, errno and syscall, naming the path.
 */
napi_value dosna_stat_generations(napi_env env, napi_callback_info info) {
  size_t argc = 1;
  napi_value argv[1], result;
  napi_valuetype type = napi_undefined;
  napi_get_cb_info(env, info, &argc, argv, NULL, NULL);
  size_t length = 0;
  if (argc != 1 || napi_typeof(env, argv[0], &type) != napi_ok || type != napi_string ||
      napi_get_value_string_utf8(env, argv[0], NULL, 0, &length) != napi_ok || length == 0) {
    return dosna_fail(env, "statGenerations(paths): the paths in one string, separated by NUL");
  }
  char small_paths[8192], small_out[4096];
  char *paths = length < sizeof small_paths ? small_paths : malloc(length + 1);
  size_t files = 1;
  if (paths) {
    napi_get_value_string_utf8(env, argv[0], paths, length + 1, &length);
    for (size_t i = 0; i < length; i++) files += paths[i] == '\0';
  }
  /* A generation takes at most 20 digits, a colon, a sign and 20 digits; then a separator. */
  size_t capacity = files * 44;
  char *out = !paths ? NULL : capacity <= sizeof small_out ? small_out : malloc(capacity);
  char *at = out;
  result = NULL;
  if (!out) dosna_fail(env, "statGenerations(paths): out of memory");
  for (char *path = paths, *stop = paths + length; out; path++) {
    char *end = memchr(path, '\0', (size_t)(stop - path));
    if (!end) end = stop;
    if (end == path || end - path >= PATH_MAX) {
      dosna_fail(env, "statGenerations(paths): each path non-empty and shorter than PATH_MAX");
      break;
    }
    *end = '\0'; /* already, or the string's end: this path ends there for stat */
    struct stat st;
    int rc;
    do rc = stat(path, &st); while (rc != 0 && errno == EINTR);
    if (rc == 0) {
      at = dosna_put_generation(at, (uint64_t)st.st_ino, (int64_t)st.st_mtim.tv_sec * 1000000000LL + (int64_t)st.st_mtim.tv_nsec);
    } else if (errno != ENOENT && errno != ENOTDIR) {
      file_task failed = { .error = errno, .syscall = "stat", .path = path };
      napi_throw(env, error_of(env, &failed));
      break;
    }
    if (end == stop) {
      napi_create_string_latin1(env, out, (size_t)(at - out), &result);
      break;
    }
    *at++ = '\0';
    path = end;
  }
  if (out != small_out) free(out);
  if (paths != small_paths) free(paths);
  return result;
}
