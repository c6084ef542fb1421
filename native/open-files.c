/*
 * Descriptors of chunk files kept open between reads (templated-files.c), as h5py keeps its one
 * HDF5 file open: a read of a part of a file already read is then a stat of its path and one
 * positioned read, where opening it again costs an open, a stat, a read of its header and a
 * close. Measured in C on this project's 2-core VM, a plane of a 256^3 float32 cube in 32^3
 * chunks (64 files, 4 KiB of each): 210-245 us opened and closed, 115-119 us through kept
 * descriptors.
 *
 * A kept descriptor is used only while stat(path) still shows the file it was opened on: the
 * same device, inode, size and modification time. The descriptor holds its inode, so that
 * number cannot go to another file meanwhile; a writer that replaces the file (dosna renames
 * a new one over it) changes the inode, and one that rewrites it in place writes the very inode
 * the descriptor reads (and changes its size or modification time, which a read checks against
 * the template again). So another process's write is never missed, as with a read that opens
 * the file.
 *
 * Bounds: at most `capacity` descriptors (OPEN_FILES_MAX, or an eighth of RLIMIT_NOFILE when that
 * is lower), the least recently used closed first. A kept descriptor of a file since replaced or
 * deleted keeps that file's space allocated until it is closed, so dosna closes those of its own
 * replacements and deletions at once (forgetOpenFiles); another process's leave theirs until the
 * file is read again or the descriptor is evicted.
 *
 * Threads (worker threads read inline): one table for the process, under a mutex held only
 * around the table's own work. A reader takes its descriptor out of the table and puts it back
 * after its read, so no thread closes a descriptor another is reading; a folder's forget in
 * between (the epoch) makes the put-back close it instead. A single file's forget (each file
 * dosna replaces) misses a descriptor out at that moment: its reader puts it back, and the next
 * read of the path, finding another file there, closes it.
 */
#define _GNU_SOURCE
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <unistd.h>
#include "dosna.h"

#define OPEN_FILES_MAX 1024
#define BUCKETS 2048 /* a power of two, at least twice the capacity */

typedef struct {
  char *path; /* NULL: a free slot */
  uint64_t hash;
  dosna_open_file file;
  int older, newer; /* the LRU list: indices, -1 at its ends */
  int chain; /* the next slot of the same bucket, -1 at the end */
} slot;

static pthread_mutex_t lock = PTHREAD_MUTEX_INITIALIZER;
static slot slots[OPEN_FILES_MAX];
static int buckets[BUCKETS];
static int capacity = -1; /* -1: not set up yet */
static int count = 0;
static int newest = -1, oldest = -1;
static uint64_t epoch = 0;

static uint64_t hash_of(const char *path) {
  uint64_t h = 1469598103934665603ULL; /* FNV-1a */
  for (const unsigned char *p = (const unsigned char *)path; *p; p++) h = (h ^ *p) * 1099511628211ULL;
  return h;
}

static void set_up(void) {
  struct rlimit limit;
  long allowed = OPEN_FILES_MAX;
  if (getrlimit(RLIMIT_NOFILE, &limit) == 0 && limit.rlim_cur != RLIM_INFINITY && (long)(limit.rlim_cur / 8) < allowed) allowed = (long)(limit.rlim_cur / 8);
  capacity = allowed < 8 ? 0 : (int)allowed;
  for (int b = 0; b < BUCKETS; b++) buckets[b] = -1;
  for (int i = 0; i < OPEN_FILES_MAX; i++) slots[i].path = NULL;
}

static int find(const char *path, uint64_t hash) {
  for (int i = buckets[hash & (BUCKETS - 1)]; i >= 0; i = slots[i].chain) {
    if (slots[i].hash == hash && strcmp(slots[i].path, path) == 0) return i;
  }
  return -1;
}

/* Takes slot i out of its bucket and the LRU list; returns its descriptor (the caller closes or uses it). */
static int drop(int i) {
  int *link = &buckets[slots[i].hash & (BUCKETS - 1)];
  while (*link != i) link = &slots[*link].chain;
  *link = slots[i].chain;
  if (slots[i].older >= 0) slots[slots[i].older].newer = slots[i].newer; else oldest = slots[i].newer;
  if (slots[i].newer >= 0) slots[slots[i].newer].older = slots[i].older; else newest = slots[i].older;
  free(slots[i].path);
  slots[i].path = NULL;
  count--;
  return slots[i].file.fd;
}

bool dosna_open_files_take(const char *path, dosna_open_file *file, uint64_t *taken_at) {
  uint64_t hash = hash_of(path);
  pthread_mutex_lock(&lock);
  if (capacity < 0) set_up();
  int i = find(path, hash);
  *taken_at = epoch;
  if (i >= 0) {
    *file = slots[i].file;
    drop(i);
  }
  pthread_mutex_unlock(&lock);
  return i >= 0;
}

void dosna_open_files_give(const char *path, const dosna_open_file *file, uint64_t taken_at) {
  uint64_t hash = hash_of(path);
  char *copy = strdup(path);
  int close_fd = -1;
  pthread_mutex_lock(&lock);
  if (capacity < 0) set_up();
  if (!copy || taken_at != epoch || capacity == 0 || find(path, hash) >= 0) {
    /* Forgotten since it was taken, no room at all, or another thread put one back first. */
    close_fd = file->fd;
  } else {
    if (count >= capacity) close_fd = drop(oldest);
    int i = 0;
    while (slots[i].path) i++;
    slots[i] = (slot){ .path = copy, .hash = hash, .file = *file, .older = newest, .newer = -1, .chain = buckets[hash & (BUCKETS - 1)] };
    copy = NULL;
    buckets[hash & (BUCKETS - 1)] = i;
    if (newest >= 0) slots[newest].newer = i; else oldest = i;
    newest = i;
    count++;
  }
  pthread_mutex_unlock(&lock);
  free(copy);
  if (close_fd >= 0) close(close_fd);
}

/* Closes the kept descriptors of `prefix` and of every path under it (prefix + '/'); how many. */
static int forget(const char *prefix) {
  size_t length = strlen(prefix);
  while (length > 1 && prefix[length - 1] == '/') length--;
  int closing[OPEN_FILES_MAX];
  int n = 0;
  pthread_mutex_lock(&lock);
  if (capacity < 0) set_up();
  epoch++;
  for (int i = 0; i < OPEN_FILES_MAX; i++) {
    const char *p = slots[i].path;
    if (p && strncmp(p, prefix, length) == 0 && (p[length] == '\0' || p[length] == '/')) closing[n++] = drop(i);
  }
  pthread_mutex_unlock(&lock);
  for (int i = 0; i < n; i++) close(closing[i]);
  return n;
}

/* Closes the kept descriptor of exactly `path`, if any (no scan: for each file dosna replaces). */
static int forget_file(const char *path) {
  uint64_t hash = hash_of(path);
  pthread_mutex_lock(&lock);
  if (capacity < 0) set_up();
  int i = count > 0 ? find(path, hash) : -1;
  int fd = i >= 0 ? drop(i) : -1;
  pthread_mutex_unlock(&lock);
  if (fd >= 0) close(fd);
  return fd >= 0;
}

/*
 * forgetOpenFiles(path, under) -> how many kept descriptors it closed: of `path`, and with
 * `under` of every path under it (a folder: a scan of the table).
 */
napi_value dosna_forget_open_files(napi_env env, napi_callback_info info) {
  size_t argc = 2;
  napi_value argv[2], result;
  bool under = false;
  napi_get_cb_info(env, info, &argc, argv, NULL, NULL);
  char *prefix = argc == 2 && napi_get_value_bool(env, argv[1], &under) == napi_ok ? dosna_path_arg(env, argv[0]) : NULL;
  if (!prefix) return dosna_fail(env, "forgetOpenFiles(path, under): a non-empty path and whether the paths under it too");
  int closed = under ? forget(prefix) : forget_file(prefix);
  free(prefix);
  napi_create_int32(env, closed, &result);
  return result;
}

/* openFilesStats() -> { open, capacity }: the descriptors kept now, and how many may be. */
napi_value dosna_open_files_stats(napi_env env, napi_callback_info info) {
  (void)info;
  pthread_mutex_lock(&lock);
  if (capacity < 0) set_up();
  int open = count, most = capacity;
  pthread_mutex_unlock(&lock);
  napi_value result, value;
  napi_create_object(env, &result);
  napi_create_int32(env, open, &value);
  napi_set_named_property(env, result, "open", value);
  napi_create_int32(env, most, &value);
  napi_set_named_property(env, result, "capacity", value);
  return result;
}
