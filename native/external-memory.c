/*
 * Tells V8 about memory that JavaScript objects keep alive outside its heap
 * (src/shared-memory.ts says why: V8 does not count SharedArrayBuffers towards the memory that
 * makes it collect garbage). adjustExternalMemory(deltaBytes) -> V8's new total, in bytes.
 */
#include <stdint.h>
#include "dosna.h"

napi_value dosna_adjust_external_memory(napi_env env, napi_callback_info info) {
  size_t argc = 1;
  napi_value argv[1];
  napi_get_cb_info(env, info, &argc, argv, NULL, NULL);
  int64_t delta = 0;
  if (argc < 1 || napi_get_value_int64(env, argv[0], &delta) != napi_ok) {
    return dosna_fail(env, "adjustExternalMemory(deltaBytes): a whole number of bytes");
  }
  int64_t total = 0;
  if (napi_adjust_external_memory(env, delta, &total) != napi_ok) return dosna_fail(env, "adjustExternalMemory: V8 refused the change");
  napi_value result;
  napi_create_double(env, (double)total, &result);
  return result;
}
