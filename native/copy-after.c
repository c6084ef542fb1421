/*
 * A copy made right after a read, on the thread that read, when the read went as expected
 * (readFileRanges's `then`, file-io.c says why): the read moved exactly `bytes`, and each view
 * of `checks` begins with its expected bytes (a chunk file's template around its data). Only
 * then are the rows of `plan` (strided.c's layout) copied from `src` to `dst`; otherwise
 * nothing is copied and the caller reads the file another way.
 *
 * The arguments are taken and checked on the JavaScript thread (the plan against both arrays,
 * before any file is touched); the copy runs on whichever thread made the read.
 */
#include <stdlib.h>
#include <string.h>
#include "dosna.h"

/* A view of `checks` and the bytes it must begin with (copied, so the caller may reuse its buffer). */
typedef struct {
  const uint8_t *view;
  uint8_t *expected;
  size_t length;
} byte_check;

struct dosna_copy_after {
  napi_ref keep; /* keeps `then` (its dst and src) alive while another thread uses them */
  uint64_t bytes;
  byte_check *checks;
  size_t check_count;
  uint8_t *dst;
  size_t dst_length;
  const uint8_t *src;
  size_t src_length;
  double *plan;
  bool empty; /* the plan copies nothing */
  int flags;  /* the plan's flags */
  bool copied;
};

void dosna_copy_after_release(napi_env env, dosna_copy_after *then) {
  if (!then) return;
  if (then->keep) napi_delete_reference(env, then->keep);
  for (size_t c = 0; c < then->check_count; c++) free(then->checks[c].expected);
  free(then->checks);
  free(then->plan);
  free(then);
}

/* A typed array property of `object`; false when it is missing or not one. */
static bool bytes_property(napi_env env, napi_value object, const char *name, uint8_t **data, size_t *length) {
  napi_value value;
  return napi_get_named_property(env, object, name, &value) == napi_ok && dosna_bytes_of(env, value, data, length);
}

dosna_copy_after *dosna_copy_after_arg(napi_env env, napi_value object, const char **why) {
  dosna_copy_after *then = calloc(1, sizeof *then);
  napi_value value, checks;
  double bytes = -1;
  uint8_t *plan_bytes;
  size_t plan_length;
  bool is_array = false;
  uint32_t length = 0;
  *why = "then: { bytes, checks: [view, expected, ...], dst, src, plan } of typed arrays";
  if (!then || napi_create_reference(env, object, 1, &then->keep) != napi_ok
      || napi_get_named_property(env, object, "bytes", &value) != napi_ok || napi_get_value_double(env, value, &bytes) != napi_ok
      || !(bytes >= 0 && bytes <= 9007199254740991.0)
      || !bytes_property(env, object, "dst", &then->dst, &then->dst_length)
      || !bytes_property(env, object, "src", (uint8_t **)&then->src, &then->src_length)
      || !bytes_property(env, object, "plan", &plan_bytes, &plan_length)
      || napi_get_named_property(env, object, "checks", &checks) != napi_ok || napi_is_array(env, checks, &is_array) != napi_ok || !is_array
      || napi_get_array_length(env, checks, &length) != napi_ok || length % 2 != 0) {
    dosna_copy_after_release(env, then);
    return NULL;
  }
  then->bytes = (uint64_t)bytes;
  const char *plan_fault = dosna_plan_check((const double *)plan_bytes, plan_length, then->dst_length, then->src_length, &then->empty, &then->flags);
  then->plan = malloc(plan_length ? plan_length : 1);
  then->checks = calloc(length / 2 + 1, sizeof(byte_check));
  if (plan_fault || !then->plan || !then->checks) {
    if (plan_fault) *why = plan_fault;
    dosna_copy_after_release(env, then);
    return NULL;
  }
  memcpy(then->plan, plan_bytes, plan_length);
  for (uint32_t i = 0; i < length; i += 2) {
    napi_value view, expected;
    uint8_t *view_data, *expected_data;
    size_t view_length, expected_length;
    byte_check *check = &then->checks[then->check_count];
    if (napi_get_element(env, checks, i, &view) != napi_ok || napi_get_element(env, checks, i + 1, &expected) != napi_ok
        || !dosna_bytes_of(env, view, &view_data, &view_length) || !dosna_bytes_of(env, expected, &expected_data, &expected_length)
        || expected_length > view_length || !(check->expected = malloc(expected_length ? expected_length : 1))) {
      dosna_copy_after_release(env, then);
      return NULL;
    }
    check->view = view_data;
    check->length = expected_length;
    memcpy(check->expected, expected_data, expected_length);
    then->check_count++;
  }
  return then;
}

void dosna_copy_after_read(dosna_copy_after *then, uint64_t bytes_read) {
  if (bytes_read != then->bytes) return;
  for (size_t c = 0; c < then->check_count; c++) {
    if (memcmp(then->checks[c].view, then->checks[c].expected, then->checks[c].length) != 0) return;
  }
  if (!then->empty) dosna_plan_run(then->dst, then->dst_length, then->src, then->src_length, then->plan, then->flags);
  then->copied = true;
}

bool dosna_copy_after_made(const dosna_copy_after *then) {
  return then->copied;
}
