/*
 * glibc malloc's policy for this process (src/malloc-policy.ts says why and when).
 * tuneMalloc(mmapThreshold, trimThreshold) -> true when glibc took both, false elsewhere.
 * keepLargeBlocks() -> true when glibc took M_MMAP_MAX 0: no block is mapped alone, so a freed
 *   big array stays in the heap for the next one; false elsewhere.
 * trimMalloc(keepBytes) -> the bytes malloc held free (mallinfo2's fordblks, all arenas, the top
 *   included) before the call; when more than keepBytes, every free page goes back to the
 *   kernel (malloc_trim(0): the top cut, free blocks inside the heap unmapped by
 *   MADV_DONTNEED). -1 where there is no glibc.
 */
#include <stdbool.h>
#include <stdint.h>
#include "dosna.h"
#if defined(__GLIBC__)
#include <malloc.h>
#endif

napi_value dosna_tune_malloc(napi_env env, napi_callback_info info) {
  size_t argc = 2;
  napi_value argv[2];
  napi_get_cb_info(env, info, &argc, argv, NULL, NULL);
  if (argc < 2) return dosna_fail(env, "tuneMalloc(mmapThreshold, trimThreshold)");
  int64_t mmap_threshold = 0, trim_threshold = 0;
  if (napi_get_value_int64(env, argv[0], &mmap_threshold) != napi_ok || napi_get_value_int64(env, argv[1], &trim_threshold) != napi_ok
      || mmap_threshold <= 0 || trim_threshold <= 0 || mmap_threshold > INT32_MAX || trim_threshold > INT32_MAX) {
    return dosna_fail(env, "tuneMalloc: thresholds are positive byte counts below 2 GiB");
  }
  bool taken = false;
#if defined(__GLIBC__)
  /* mallopt answers 1 when it took the value; glibc caps the mmap threshold at 32 MiB on 64-bit. */
  taken = mallopt(M_MMAP_THRESHOLD, (int)mmap_threshold) == 1 && mallopt(M_TRIM_THRESHOLD, (int)trim_threshold) == 1;
#endif
  napi_value result;
  napi_get_boolean(env, taken, &result);
  return result;
}

napi_value dosna_keep_large_blocks(napi_env env, napi_callback_info info) {
  (void)info;
  bool taken = false;
#if defined(__GLIBC__)
  taken = mallopt(M_MMAP_MAX, 0) == 1;
#endif
  napi_value result;
  napi_get_boolean(env, taken, &result);
  return result;
}

napi_value dosna_trim_malloc(napi_env env, napi_callback_info info) {
  size_t argc = 1;
  napi_value argv[1];
  napi_get_cb_info(env, info, &argc, argv, NULL, NULL);
  double keep = -1;
  if (argc < 1 || napi_get_value_double(env, argv[0], &keep) != napi_ok || !(keep >= 0)) {
    return dosna_fail(env, "trimMalloc(keepBytes): a byte count, 0 or more");
  }
  double held = -1;
#if defined(__GLIBC__) && (__GLIBC__ > 2 || (__GLIBC__ == 2 && __GLIBC_MINOR__ >= 33))
  held = (double)mallinfo2().fordblks;
  if (held > keep) malloc_trim(0);
#endif
  napi_value result;
  napi_create_double(env, held, &result);
  return result;
}
