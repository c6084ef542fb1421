/*
 * SharedArrayBuffers over recycled memory (src/shared-memory.ts says why).
 *
 * recycledSharedBuffer(byteLength, zeroed) -> a SharedArrayBuffer whose memory comes from a pool
 * of freed blocks of the same size when it has one (malloc otherwise), or undefined where
 * Node-API cannot make a SharedArrayBuffer over memory of ours (a Node without
 * node_api_create_external_sharedarraybuffer).
 * When V8 frees the buffer (its last holder, in any thread, is gone), the block goes back to
 * the pool (block-pool.c), up to 256 MiB in all; beyond that it is freed.
 * sharedPoolStats() -> { pooledBytes, reused, made } for tests and the benchmarks.
 */
#define _GNU_SOURCE
#include <dlfcn.h>
#include <pthread.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include "block-pool.h"
#include "dosna.h"

/* Looked up at run time: the headers this module is built against may predate it. */
typedef void (*noenv_finalize)(void *data, void *hint);
typedef napi_status (*create_external_sab)(napi_env env, void *data, size_t byte_length, noenv_finalize finalize_cb,
                                           void *finalize_hint, napi_value *result);

/* Free memory the pool keeps at most (as malloc's trim threshold, src/malloc-policy.ts). */
static dosna_block_pool pool = DOSNA_BLOCK_POOL((size_t)256 << 20);

static create_external_sab create_fn;
static pthread_once_t create_once = PTHREAD_ONCE_INIT;

static void find_create(void) {
  create_fn = (create_external_sab)dlsym(RTLD_DEFAULT, "node_api_create_external_sharedarraybuffer");
}

static create_external_sab lookup(void) {
  pthread_once(&create_once, find_create);
  return create_fn;
}

/* V8's deleter for a buffer's memory: runs on whichever thread drops the last reference. */
static void give_back(void *data, void *hint) {
  dosna_pool_give_back(&pool, data, (size_t)(uintptr_t)hint);
}

napi_value dosna_recycled_shared_buffer(napi_env env, napi_callback_info info) {
  size_t argc = 2;
  napi_value argv[2];
  napi_get_cb_info(env, info, &argc, argv, NULL, NULL);
  int64_t length = 0;
  bool zeroed = true;
  if (argc < 2 || napi_get_value_int64(env, argv[0], &length) != napi_ok || napi_get_value_bool(env, argv[1], &zeroed) != napi_ok
      || length < (int64_t)sizeof(struct dosna_free_block) || (uint64_t)length > SIZE_MAX / 2) {
    return dosna_fail(env, "recycledSharedBuffer(byteLength, zeroed): a byte count of at least 8, and a boolean");
  }
  napi_value result;
  create_external_sab create = lookup();
  if (!create) {
    napi_get_undefined(env, &result);
    return result;
  }
  size_t bytes = (size_t)length;
  void *block = dosna_pool_take(&pool, bytes);
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
  double pooled, reused, made;
  dosna_pool_stats(&pool, &pooled, &reused, &made);
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
