/* dosna's native module (src/native.ts loads it): registers the functions of strided.c, gaussian.c, malloc.c, external-memory.c, exchange.c, shared-pool.c, file-io.c (with copy-after.c), commit-file.c, folder-flags.c and templated-files.c (with open-files.c). */
#include <stdlib.h>
#include <string.h>
#include "dosna.h"

napi_value dosna_fail(napi_env env, const char *message) {
  napi_throw_range_error(env, "DOSNA_NATIVE_PLAN", message);
  return NULL;
}

char *dosna_path_arg(napi_env env, napi_value value) {
  size_t length = 0;
  if (napi_get_value_string_utf8(env, value, NULL, 0, &length) != napi_ok || length == 0) return NULL;
  char *text = malloc(length + 1);
  if (text) napi_get_value_string_utf8(env, value, text, length + 1, &length);
  if (text && strlen(text) != length) { /* a NUL inside the path */
    free(text);
    return NULL;
  }
  return text;
}

static void define(napi_env env, napi_value exports, const char *name, napi_callback callback) {
  napi_value fn;
  napi_create_function(env, name, NAPI_AUTO_LENGTH, callback, NULL, &fn);
  napi_set_named_property(env, exports, name, fn);
}

NAPI_MODULE_INIT() {
  define(env, exports, "copyRows", dosna_copy_rows);
  define(env, exports, "copyRowsJoined", dosna_copy_rows_joined);
  define(env, exports, "correlateAxis", dosna_correlate_axis);
  define(env, exports, "tuneMalloc", dosna_tune_malloc);
  define(env, exports, "keepLargeBlocks", dosna_keep_large_blocks);
  define(env, exports, "trimMalloc", dosna_trim_malloc);
  define(env, exports, "adjustExternalMemory", dosna_adjust_external_memory);
  define(env, exports, "exchangeFiles", dosna_exchange_files);
  define(env, exports, "recycledSharedBuffer", dosna_recycled_shared_buffer);
  define(env, exports, "sharedPoolStats", dosna_shared_pool_stats);
  define(env, exports, "readFileRanges", dosna_read_file_ranges);
  define(env, exports, "writeNewFile", dosna_write_new_file);
  define(env, exports, "commitNewFile", dosna_commit_new_file);
  define(env, exports, "commitCounts", dosna_commit_counts);
  define(env, exports, "fileOwner", dosna_file_owner);
  define(env, exports, "spreadSubfolders", dosna_spread_subfolders);
  define(env, exports, "statGenerations", dosna_stat_generations);
  define(env, exports, "readTemplatedFiles", dosna_read_templated_files);
  define(env, exports, "forgetOpenFiles", dosna_forget_open_files);
  define(env, exports, "openFilesStats", dosna_open_files_stats);
  return exports;
}
