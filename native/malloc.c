/*
 * glibc malloc's thresholds for this process (src/malloc-policy.ts says why and when).
 * tuneMalloc(mmapThreshold, trimThreshold) -> true when glibc took both, false elsewhere.
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
