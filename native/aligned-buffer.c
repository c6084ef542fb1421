/*
 * ArrayBuffers whose memory starts on a 64-byte cache line, for the new results of large reads
 * (src/result-memory.ts says why).
 *
 * lineAlignedBuffer(byteLength) -> an ArrayBuffer of byteLength bytes (not zeroed) starting on a
 * 64-byte line, or undefined where this runtime takes no external buffers, or while the buffers
 * made here and not yet freed hold OUTSTANDING_MAX_BYTES (the caller then makes a plain one).
 * Node frees the memory (runs `release`) on the JavaScript thread, from its event loop, after V8
 * has collected the buffer; the cap bounds what a program that never lets the loop turn, or
 * keeps its results, can hold here.
 * lineAlignedStats() -> { outstandingBytes, made } for tests and the benchmarks.
 *
 * The memory comes from a pool of freed blocks (block-pool.c, up to 256 MiB) and goes back to it:
 * Node frees a buffer a turn of its event loop after V8 collected it, by when malloc may have
 * handed the next result fresh pages (with malloc and free alone a 64 MiB result took 33 ms
 * instead of 5-7, faulting its pages in).
 *
 * V8 counts these buffers' bytes towards the memory that makes it collect garbage as it counts
 * its own ArrayBuffers' (every backing store attached to an ArrayBuffer), so the collector's
 * pace is the same as for Buffer.allocUnsafeSlow.
 */
#define _GNU_SOURCE
#include <stdatomic.h>
#include <stdint.h>
#include <stdlib.h>
#include "block-pool.h"
#include "dosna.h"

#define LINE_BYTES 64
/* The most memory held by buffers made here at once (every one not yet freed). */
#define OUTSTANDING_MAX_BYTES ((size_t)512 << 20)

static dosna_block_pool pool = DOSNA_BLOCK_POOL((size_t)256 << 20);
static atomic_size_t outstanding_bytes;
static atomic_uint_fast64_t made_count;

static void release(napi_env env, void *data, void *hint) {
  (void)env;
  size_t bytes = (size_t)(uintptr_t)hint;
  dosna_pool_give_back(&pool, data, bytes);
  atomic_fetch_sub(&outstanding_bytes, bytes);
}

/* A block of `bytes` on a line: a pooled one, else a new one. */
static void *line_aligned_block(size_t bytes) {
  void *block = dosna_pool_take(&pool, bytes);
  if (block) return block;
  return posix_memalign(&block, LINE_BYTES, bytes) == 0 ? block : NULL;
}

napi_value dosna_line_aligned_buffer(napi_env env, napi_callback_info info) {
  size_t argc = 1;
  napi_value argv[1], result;
  napi_get_cb_info(env, info, &argc, argv, NULL, NULL);
  int64_t length = 0;
  if (argc < 1 || napi_get_value_int64(env, argv[0], &length) != napi_ok || length < 1 || (uint64_t)length > SIZE_MAX / 2) {
    return dosna_fail(env, "lineAlignedBuffer(byteLength): a byte count of at least 1");
  }
  size_t bytes = (size_t)length;
  napi_get_undefined(env, &result);
  if (atomic_fetch_add(&outstanding_bytes, bytes) + bytes > OUTSTANDING_MAX_BYTES) {
    atomic_fetch_sub(&outstanding_bytes, bytes);
    return result;
  }
  void *block = line_aligned_block(bytes);
  napi_value buffer;
  if (!block || napi_create_external_arraybuffer(env, block, bytes, release, (void *)(uintptr_t)bytes, &buffer) != napi_ok) {
    /* Out of memory, or not allowed here (a runtime without external buffers): the caller makes a plain one. */
    free(block);
    atomic_fetch_sub(&outstanding_bytes, bytes);
    bool pending = false;
    napi_value ignored;
    if (napi_is_exception_pending(env, &pending) == napi_ok && pending) napi_get_and_clear_last_exception(env, &ignored);
    return result;
  }
  atomic_fetch_add(&made_count, 1);
  return buffer;
}

napi_value dosna_line_aligned_stats(napi_env env, napi_callback_info info) {
  (void)info;
  napi_value result, value;
  napi_create_object(env, &result);
  napi_create_double(env, (double)atomic_load(&outstanding_bytes), &value);
  napi_set_named_property(env, result, "outstandingBytes", value);
  napi_create_double(env, (double)atomic_load(&made_count), &value);
  napi_set_named_property(env, result, "made", value);
  return result;
}
