/*
 * exchangeFiles(a, b) -> Promise<boolean>: swaps the names of two files in one step
 * (renameat2 with RENAME_EXCHANGE), on libuv's thread pool as Node's own file calls run.
 * Resolves true when swapped, false where the system or file system cannot swap (not Linux,
 * ENOSYS, EINVAL, EOPNOTSUPP: the caller then renames), or when `b` does not exist (ENOENT:
 * nothing to swap with); rejects with the errno's name otherwise. src/backends/hdf5/locks.ts
 * says why. The swap itself, dosna_swap_files, is also commit-file.c's.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "dosna.h"
#if defined(__linux__)
#include <sys/syscall.h>
#include <unistd.h>
#ifndef RENAME_EXCHANGE
#define RENAME_EXCHANGE (1 << 1)
#endif
#endif

typedef struct {
  napi_async_work work;
  napi_deferred deferred;
  char *a;
  char *b;
  int error; /* 0: swapped; -1: cannot swap here; else errno */
} exchange_task;

int dosna_swap_files(const char *a, const char *b) {
#if defined(__linux__) && defined(SYS_renameat2)
  if (syscall(SYS_renameat2, AT_FDCWD, a, AT_FDCWD, b, RENAME_EXCHANGE) == 0) return 0;
  int e = errno;
  return (e == ENOSYS || e == EINVAL || e == ENOENT || e == EOPNOTSUPP || e == ENOTSUP) ? -1 : e;
#else
  (void)a;
  (void)b;
  return -1;
#endif
}

static void run(napi_env env, void *data) {
  (void)env;
  exchange_task *task = data;
  task->error = dosna_swap_files(task->a, task->b);
}

static void done(napi_env env, napi_status status, void *data) {
  exchange_task *task = data;
  if (status == napi_ok && task->error <= 0) {
    napi_value result;
    napi_get_boolean(env, task->error == 0, &result);
    napi_resolve_deferred(env, task->deferred, result);
  } else {
    char message[512];
    int e = status == napi_ok ? task->error : ECANCELED;
    snprintf(message, sizeof message, "%s: cannot exchange %s and %s", strerror(e), task->a, task->b);
    napi_value text, code, error;
    napi_create_string_utf8(env, message, NAPI_AUTO_LENGTH, &text);
    napi_create_int32(env, e, &code);
    napi_create_error(env, NULL, text, &error);
    napi_set_named_property(env, error, "errno", code);
    napi_reject_deferred(env, task->deferred, error);
  }
  napi_delete_async_work(env, task->work);
  free(task->a);
  free(task->b);
  free(task);
}

napi_value dosna_exchange_files(napi_env env, napi_callback_info info) {
  size_t argc = 2;
  napi_value argv[2];
  napi_get_cb_info(env, info, &argc, argv, NULL, NULL);
  exchange_task *task = argc == 2 ? calloc(1, sizeof *task) : NULL;
  if (task) {
    task->a = dosna_path_arg(env, argv[0]);
    task->b = dosna_path_arg(env, argv[1]);
  }
  if (!task || !task->a || !task->b) {
    if (task) { free(task->a); free(task->b); free(task); }
    return dosna_fail(env, "exchangeFiles(a, b): two non-empty paths");
  }
  napi_value promise, name;
  napi_create_promise(env, &task->deferred, &promise);
  napi_create_string_utf8(env, "dosna.exchangeFiles", NAPI_AUTO_LENGTH, &name);
  napi_create_async_work(env, NULL, name, run, done, task, &task->work);
  napi_queue_async_work(env, task->work);
  return promise;
}
