/*
 * SharedArrayBuffers over recycled memory (src/shared-memory.ts says why).
 *
 * recycledSharedBuffer(byteLength, zeroed) -> a SharedArrayBuffer whose memory comes from a pool
 * of freed blocks of the same size when it has one (malloc otherwise), or undefined where
 * Node-API cannot make a SharedArrayBuffer over memory of ours (a Node without
 * node_api_create_external_sharedarraybuffer).
 * When V8 frees the buffer (its last holder, in any thread, is gone), the block goes back to
 * the pool, up to POOL_MAX_BYTES in all; beyond that it is freed.
 * sharedPoolStats() -> { pooledBytes, reused, made } for tests and the benchmarks.
 */
#define _GNU_SOURCE
#include <dlfcn.h>
#include <pthread.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include "dosna.h"

/* Looked up at run time: the headers this module is built against may predate it. */
typedef void (*noenv_finalize)(void *data, void *hint);
typedef napi_status (*create_external_sab)(napi_env env, void *data, size_t byte_length, noenv_finalize finalize_cb,
                                           void *finalize_hint, napi_value *result);

/* Free memory the pool keeps at most (as malloc's trim threshold, src/malloc-policy.ts). */
#define POOL_MAX_BYTES ((size_t)256 << 20)
/* Distinct block sizes kept (a process uses a few chunk sizes). */
#define POOL_SIZES 16

struct free_block { struct free_block *next; };
struct size_class { size_t bytes; size_t count; struct free_block *head; };

static struct size_class classes[POOL_SIZES];
static size_t pooled_bytes;
static uint64_t reused_count, made_count;
static pthread_mutex_t pool_lock = PTHREAD_MUTEX_INITIALIZER;

static create_external_sab create_fn;
static pthread_once_t create_once = PTHREAD_ONCE_INIT;

static void find_create(void) {
  create_fn = (create_external_sab)dlsym(RTLD_DEFAULT, "node_api_create_external_sharedarraybuffer");
}

static create_external_sab lookup(void) {
  pthread_once(&create_once, find_create);
  return create_fn;
}

/* A pooled block of exactly `bytes`, or NULL. */
static void *take(size_t bytes) {
  void *block = NULL;
  pthread_mutex_lock(&pool_lock);
  for (int i = 0; i < POOL_SIZES; i++) {
    if (classes[i].bytes == bytes && classes[i].head) {
      struct free_block *b = classes[i].head;
      classes[i].head = b->next;
      classes[i].count--;
      pooled_bytes -= bytes;
      reused_count++;
      block = b;
      break;
    }
  }
  if (!block) made_count++;
  pthread_mutex_unlock(&pool_lock);
  return block;
}

/* Frees one block of the class holding the most free bytes other than `keep`; false if none. */
static bool evict_other(int keep) {
  int victim = -1;
  for (int i = 0; i < POOL_SIZES; i++) {
    if (i != keep && classes[i].head && (victim < 0 || classes[i].count * classes[i].bytes > classes[victim].count * classes[victim].bytes)) victim = i;
  }
  if (victim < 0) return false;
  struct free_block *b = classes[victim].head;
  classes[victim].head = b->next;
  classes[victim].count--;
  pooled_bytes -= classes[victim].bytes;
  free(b);
  return true;
}

/*
 * V8's deleter for a buffer's memory: runs on whichever thread drops the last reference. The
 * newest sizes win: blocks of sizes a process no longer uses are freed to make room.
 */
static void give_back(void *data, void *hint) {
  size_t bytes = (size_t)(uintptr_t)hint;
  bool kept = false;
  pthread_mutex_lock(&pool_lock);
  if (bytes <= POOL_MAX_BYTES) {
    int slot = -1;
    for (int i = 0; i < POOL_SIZES && slot < 0; i++) if (classes[i].bytes == bytes) slot = i;
    for (int i = 0; i < POOL_SIZES && slot < 0; i++) if (classes[i].head == NULL) slot = i;
    if (slot < 0) {
      /* Every class holds blocks of another size: empty the fullest for this one. */
      int fullest = 0;
      for (int i = 1; i < POOL_SIZES; i++) if (classes[i].count * classes[i].bytes > classes[fullest].count * classes[fullest].bytes) fullest = i;
      for (struct free_block *b = classes[fullest].head, *next; b; b = next) {
        next = b->next;
        free(b);
      }
      pooled_bytes -= classes[fullest].count * classes[fullest].bytes;
      classes[fullest].head = NULL;
      classes[fullest].count = 0;
      slot = fullest;
    }
    while (pooled_bytes + bytes > POOL_MAX_BYTES && evict_other(slot)) {}
    if (pooled_bytes + bytes <= POOL_MAX_BYTES) {
      struct free_block *b = data;
      if (classes[slot].bytes != bytes) { classes[slot].bytes = bytes; classes[slot].count = 0; }
      b->next = classes[slot].head;
      classes[slot].head = b;
      classes[slot].count++;
      pooled_bytes += bytes;
      kept = true;
    }
  }
  pthread_mutex_unlock(&pool_lock);
  if (!kept) free(data);
}

napi_value dosna_recycled_shared_buffer(napi_env env, napi_callback_info info) {
  size_t argc = 2;
  napi_value argv[2];
  napi_get_cb_info(env, info, &argc, argv, NULL, NULL);
  int64_t length = 0;
  bool zeroed = true;
  if (argc < 2 || napi_get_value_int64(env, argv[0], &length) != napi_ok || napi_get_value_bool(env, argv[1], &zeroed) != napi_ok
      || length < (int64_t)sizeof(struct free_block) || (uint64_t)length > SIZE_MAX / 2) {
    return dosna_fail(env, "recycledSharedBuffer(byteLength, zeroed): a byte count of at least 8, and a boolean");
  }
  napi_value result;
  create_external_sab create = lookup();
  if (!create) {
    napi_get_undefined(env, &result);
    return result;
  }
  size_t bytes = (size_t)length;
  void *block = take(bytes);
  if (block) {
    if (zeroed) memset(block, 0, bytes);
  } else {
    block = zeroed ? calloc(1, bytes) : malloc(bytes);
    if (!block) return dosna_fail(env, "recycledSharedBuffer: out of memory");
  }
  if (create(env, block, bytes, give_back, (void *)(uintptr_t)bytes, &result) != napi_ok) {
    /* Not allowed here (a runtime without external buffers): the caller makes a plain one. */
    give_back(block, (void *)(uintptr_t)bytes);
    napi_get_undefined(env, &result);
  }
  return result;
}

napi_value dosna_shared_pool_stats(napi_env env, napi_callback_info info) {
  (void)info;
  pthread_mutex_lock(&pool_lock);
  double pooled = (double)pooled_bytes, reused = (double)reused_count, made = (double)made_count;
  pthread_mutex_unlock(&pool_lock);
  napi_value result, value;
  napi_create_object(env, &result);
  napi_create_double(env, pooled, &value);
  napi_set_named_property(env, result, "pooledBytes", value);
  napi_create_double(env, reused, &value);
  napi_set_named_property(env, result, "reused", value);
  napi_create_double(env, made, &value);
  napi_set_named_property(env, result, "made", value);
  return result;
}
