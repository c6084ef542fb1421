/*
 * dosna's native copy: the strided row copy under every read and write of a chunk's region.
 *
 * Why native: V8 does not vectorize a typed-array loop, and `TypedArray.set` costs a view
 * object per row, so JavaScript copies the short rows of chunked arrays (128-512 bytes) at
 * about 1 GB/s; one C loop over the rows with memmove runs at memory speed, as numpy's does.
 * One call copies a whole block (every row of a chunk's region), so the call's fixed cost is
 * paid once per chunk, not per row. The JavaScript word loop in src/strided.ts remains the
 * fallback where this module is not built.
 *
 * copyRows(dst, src, plan) -> true, or throws on a plan outside either array.
 *   dst, src: typed arrays (any element type; only their bytes are used).
 *   plan: Float64Array [outerAxes, rowBytes, dstByte0, srcByte0,
 *                       shape[outerAxes], dstStepBytes[outerAxes], srcStepBytes[outerAxes], (flags)]
 *   Steps may be negative (reversed axes). Every row is checked to lie inside both arrays
 *   before any byte moves (from the extreme offsets, O(axes)). The optional last element holds
 *   flags: PLAN_COLD_DESTINATION (1) says the destination is memory just allocated (a new `get`
 *   result), which the caches do not hold; any other value is refused.
 *
 * Rows of STREAM_MIN_ROW_BYTES or more are written with streaming (non-temporal) stores on
 * x86-64, when the two arrays do not overlap, into a destination of STREAM_MIN_DST_BYTES or more
 * (larger than the last-level cache: a reused array that size is not in it either) or into a
 * cold one of STREAM_MIN_COLD_BYTES or more. An ordinary store first reads each destination line
 * into the cache (read for ownership), only to overwrite it whole, and pushes the source out of
 * the cache; a streaming store writes the line straight to memory. Only whole 64-byte lines are
 * streamed: a partly streamed line is merged in memory, which made misaligned rows slower than
 * memmove. Measured in C on this machine (x86-64, 32 MiB L3), 64^3 float32 chunks gathered into
 * a 128^3 destination not in the caches: 0.86-0.94 ms with memmove, 0.50 streamed (0.68 when the
 * destination starts 16 bytes past a line, as malloc's blocks may); with a pass over the result
 * afterwards 1.20 against 0.73 ms (1.03 against 0.89), so the copy's gain is not lost later; the
 * 256^3 cube: 8.6 against 5.9 ms. Into a destination the caches hold, streaming is ~20% slower
 * (0.39 ms against memmove's 0.32), hence the two thresholds. numpy's copy uses ordinary stores, as glibc's
 * memmove does below its large-size threshold, which a chunk's rows never reach.
 */
#include <node_api.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include "dosna.h"
#if defined(__x86_64__) && defined(__SSE2__)
#include <emmintrin.h>
#define DOSNA_STREAMING 1
#endif

#define MAX_AXES 64
/* Any destination from this size up takes streaming stores (see above): larger than a last-level cache. */
#define STREAM_MIN_DST_BYTES ((size_t)32 << 20)
/*
 * A cold destination (PLAN_COLD_DESTINATION) from this size up takes them: smaller new arrays often
 * reuse memory just freed and still cached (measured, new results of a get on ram in 64^3 chunks,
 * with a pass over each: 4 MiB 420 -> 300 us streamed, but 1 and 2 MiB up to 30% slower).
 */
#define STREAM_MIN_COLD_BYTES ((size_t)4 << 20)
/* Rows shorter than this keep ordinary stores: they hold at most one whole line. */
#define STREAM_MIN_ROW_BYTES 128
/* Rows placed at varying offsets within a line are streamed only from this length (see row_stores). */
#define STREAM_MIN_VARIED_ROW_BYTES 256

int dosna_bytes_of(napi_env env, napi_value value, uint8_t **data, size_t *length) {
  napi_typedarray_type type;
  size_t elements, offset;
  napi_value buffer;
  void *pointer;
  if (napi_get_typedarray_info(env, value, &type, &elements, &pointer, &buffer, &offset) != napi_ok) return 0;
  size_t width = 1;
  switch (type) {
    case napi_int16_array: case napi_uint16_array: width = 2; break;
    case napi_int32_array: case napi_uint32_array: case napi_float32_array: width = 4; break;
    case napi_float64_array: case napi_bigint64_array: case napi_biguint64_array: width = 8; break;
    default: width = 1;
  }
  *data = (uint8_t *)pointer;
  *length = elements * width;
  return 1;
}

#ifdef DOSNA_STREAMING
/* The bytes of a row of `n` bytes at `d` before its first whole 64-byte line. */
static inline size_t line_head(const uint8_t *d, size_t n) {
  size_t head = (64 - ((uintptr_t)d & 63)) & 63;
  return head > n ? n : head;
}

/*
 * Whether a row so placed gains from streaming: three quarters of it or more in whole lines
 * (measured: 128-byte rows 16 bytes past a line, one whole line of three, went slower streamed;
 * 256-byte rows so placed, three of five, faster; aligned 128-byte rows 45% faster).
 */
static inline bool worth_streaming(const uint8_t *d, size_t n) {
  return ((n - line_head(d, n)) & ~(size_t)63) * 4 >= n * 3;
}

/* One row with streaming stores for its whole 64-byte lines, ordinary ones for a partial first and last line. */
static inline void stream_row(uint8_t *d, const uint8_t *s, size_t n) {
  size_t head = line_head(d, n);
  memcpy(d, s, head);
  d += head;
  s += head;
  n -= head;
  for (; n >= 64; n -= 64, d += 64, s += 64) {
    __m128i a = _mm_loadu_si128((const __m128i *)s), b = _mm_loadu_si128((const __m128i *)(s + 16));
    __m128i c = _mm_loadu_si128((const __m128i *)(s + 32)), e = _mm_loadu_si128((const __m128i *)(s + 48));
    _mm_stream_si128((__m128i *)d, a);
    _mm_stream_si128((__m128i *)(d + 16), b);
    _mm_stream_si128((__m128i *)(d + 32), c);
    _mm_stream_si128((__m128i *)(d + 48), e);
  }
  memcpy(d, s, n);
}

/* How a plan's rows are written: with memmove, streamed, or each as worth_streaming finds it. */
enum row_stores { ORDINARY, STREAMED, ROW_BY_ROW };

/*
 * Rows placed alike (every destination step a multiple of a line) are judged once, by the
 * first; rows placed differently are judged one by one when long enough to gain (a check per
 * short row cost more than it saved: 3% on a misaligned block in 32^3 chunks).
 */
static enum row_stores row_stores(const uint8_t *d, int64_t row, int axes, const double *dstSteps) {
  bool alike = true;
  for (int k = 0; k < axes; k++) alike = alike && ((int64_t)dstSteps[k] & 63) == 0;
  if (alike) return worth_streaming(d, (size_t)row) ? STREAMED : ORDINARY;
  return row >= STREAM_MIN_VARIED_ROW_BYTES ? ROW_BY_ROW : ORDINARY;
}
#endif

/* Lowest and highest byte touched by the copy on one side, for the bounds check. */
static void extent(int axes, const double *shape, const double *steps, int64_t start, int64_t row, int64_t *low, int64_t *high) {
  int64_t lo = start, hi = start;
  for (int k = 0; k < axes; k++) {
    int64_t span = (int64_t)steps[k] * ((int64_t)shape[k] - 1);
    if (span < 0) lo += span; else hi += span;
  }
  *low = lo;
  *high = hi + row;
}

const char *dosna_plan_check(const double *plan, size_t planLength, size_t dstLength, size_t srcLength, bool *empty, int *flags) {
  *empty = false;
  *flags = 0;
  if (planLength < 4 * sizeof(double)) return "plan too short";
  int axes = (int)plan[0];
  if (axes < 0 || axes > MAX_AXES || planLength < (size_t)(4 + 3 * axes) * sizeof(double)) return "plan has the wrong length";
  if (planLength >= (size_t)(5 + 3 * axes) * sizeof(double)) {
    double given = plan[4 + 3 * axes];
    if (given != 0 && given != PLAN_COLD_DESTINATION) return "plan has unknown flags";
    *flags = (int)given;
  }
  int64_t row = (int64_t)plan[1], dst0 = (int64_t)plan[2], src0 = (int64_t)plan[3];
  const double *shape = plan + 4, *dstSteps = shape + axes, *srcSteps = dstSteps + axes;
  for (int k = 0; k < axes; k++) {
    if (shape[k] < 1) {
      *empty = true; /* nothing to copy */
      return NULL;
    }
  }
  int64_t low, high;
  extent(axes, shape, dstSteps, dst0, row, &low, &high);
  if (row < 0 || low < 0 || high > (int64_t)dstLength) return "rows outside the destination";
  extent(axes, shape, srcSteps, src0, row, &low, &high);
  if (low < 0 || high > (int64_t)srcLength) return "rows outside the source";
  return NULL;
}

napi_value dosna_copy_rows(napi_env env, napi_callback_info info) {
  size_t argc = 3;
  napi_value argv[3];
  if (napi_get_cb_info(env, info, &argc, argv, NULL, NULL) != napi_ok || argc != 3) return dosna_fail(env, "copyRows takes (dst, src, plan)");
  uint8_t *dst, *src, *planBytes;
  size_t dstLength, srcLength, planLength;
  if (!dosna_bytes_of(env, argv[0], &dst, &dstLength) || !dosna_bytes_of(env, argv[1], &src, &srcLength) || !dosna_bytes_of(env, argv[2], &planBytes, &planLength))
    return dosna_fail(env, "copyRows takes typed arrays");
  const double *plan = (const double *)planBytes;
  bool empty;
  int flags;
  const char *why = dosna_plan_check(plan, planLength, dstLength, srcLength, &empty, &flags);
  if (why) return dosna_fail(env, why);
  if (empty) return NULL;
  dosna_plan_run(dst, dstLength, src, srcLength, plan, flags);
  napi_value yes;
  napi_get_boolean(env, 1, &yes);
  return yes;
}

void dosna_plan_run(uint8_t *dst, size_t dstLength, const uint8_t *src, size_t srcLength, const double *plan, int flags) {
  int axes = (int)plan[0];
  int64_t row = (int64_t)plan[1], dst0 = (int64_t)plan[2], src0 = (int64_t)plan[3];
  const double *shape = plan + 4, *dstSteps = shape + axes, *srcSteps = dstSteps + axes;
  uint8_t *d = dst + dst0;
  const uint8_t *s = src + src0;
#ifdef DOSNA_STREAMING
  bool cold = dstLength >= STREAM_MIN_DST_BYTES || ((flags & PLAN_COLD_DESTINATION) && dstLength >= STREAM_MIN_COLD_BYTES);
  enum row_stores stores = ORDINARY;
  /* Distinct memory only: streamed rows are copied front to back, which memmove's overlap rule does not allow in general. */
  if (cold && axes > 0 && row >= STREAM_MIN_ROW_BYTES && (dst + dstLength <= src || src + srcLength <= dst)) stores = row_stores(d, row, axes, dstSteps);
#else
  (void)dstLength, (void)srcLength, (void)flags; /* only the streaming decision needs them */
#endif
  if (axes == 0) {
    memmove(d, s, (size_t)row);
  } else {
    int64_t counter[MAX_AXES] = {0};
    const int inner = axes - 1;
    const int64_t rows = (int64_t)shape[inner], dStep = (int64_t)dstSteps[inner], sStep = (int64_t)srcSteps[inner];
    for (;;) {
      uint8_t *dp = d;
      const uint8_t *sp = s;
#ifdef DOSNA_STREAMING
      if (stores == STREAMED) {
        for (int64_t r = 0; r < rows; r++) {
          stream_row(dp, sp, (size_t)row);
          dp += dStep;
          sp += sStep;
        }
      } else if (stores == ROW_BY_ROW) {
        for (int64_t r = 0; r < rows; r++) {
          if (worth_streaming(dp, (size_t)row)) stream_row(dp, sp, (size_t)row);
          else memmove(dp, sp, (size_t)row);
          dp += dStep;
          sp += sStep;
        }
      } else
#endif
      for (int64_t r = 0; r < rows; r++) {
        memmove(dp, sp, (size_t)row);
        dp += dStep;
        sp += sStep;
      }
      int k = inner - 1;
      for (; k >= 0; k--) {
        d += (int64_t)dstSteps[k];
        s += (int64_t)srcSteps[k];
        if (++counter[k] < (int64_t)shape[k]) break;
        d -= (int64_t)dstSteps[k] * (int64_t)shape[k];
        s -= (int64_t)srcSteps[k] * (int64_t)shape[k];
        counter[k] = 0;
      }
      if (k < 0) break;
    }
  }
#ifdef DOSNA_STREAMING
  /* Streamed lines are visible to other threads (a worker reading the result) once fenced. */
  if (stores != ORDINARY) _mm_sfence();
#endif
}

/*
 * copyRowsJoined(dst, sources, plan) -> true, false when copyRows should make this copy instead
 *   (see below), or throws on a plan outside any array.
 *   Rows of several sources that lie end to end in dst: the chunks of a read side by side along
 *   its last axis, each giving one piece of every row of the result. For each outer position the
 *   pieces make one run of dst, copied piece after piece with memmove, so the line where one
 *   piece ends and the next begins is finished while in the cache. Copied chunk by chunk, that
 *   line is written in part by each chunk's copy, each time read into the cache first (read for
 *   ownership), where a block's rows start at varying offsets within a line. Measured by hand,
 *   the block [36:180, 89:250, 7:200] of a 256^3 float32 cube on ram (a new 17.9 MB result,
 *   rows of 772 bytes), chunk by chunk / joined: 3.1 / 2.0 ms in 32^3 chunks, 2.5 / 1.6 in 64^3,
 *   1.9 / 1.5 in 128^3.
 *   false (nothing copied) for a destination copyRows streams into (32 MiB or more, or a new
 *   result of 4 MiB or more) whose runs all start at the same offset within a line: there
 *   copyRows streams every chunk's whole lines, as before this copy existed. Measured by hand,
 *   the cube's 64^3 chunks gathered into a 256^3 float32 array at eight offsets: chunk by chunk,
 *   streamed, 3.7-7.8 ms; joined with memmove 4.9-6.0, no clear gain, so not taken. Streaming
 *   the runs joined took 2.6-3.6 ms at three offsets of four, but at the fourth (a destination 32
 *   bytes past a line) its streaming stores stalled, 10-11 ms, in Node, and not in the same code
 *   built alone: not kept.
 *   sources: typed arrays, one per piece, in the order of the pieces along the run.
 *   plan: Float64Array [outerAxes, pieces, dstByte0, flags, shape[outerAxes], dstStepBytes[outerAxes],
 *                       then per piece: rowBytes, srcByte0, srcStepBytes[outerAxes]]
 */
#define MAX_JOINED_PIECES 4096

typedef struct {
  int64_t row, start;   /* the piece's bytes, and where it starts in the run */
  const double *steps;  /* its outer step bytes */
  const uint8_t *at;    /* its row at the current outer position */
} joined_piece;

napi_value dosna_copy_rows_joined(napi_env env, napi_callback_info info) {
  size_t argc = 3;
  napi_value argv[3];
  if (napi_get_cb_info(env, info, &argc, argv, NULL, NULL) != napi_ok || argc != 3) return dosna_fail(env, "copyRowsJoined takes (dst, sources, plan)");
  uint8_t *dst, *planBytes;
  size_t dstLength, planLength;
  bool isArray = false;
  uint32_t given = 0;
  if (!dosna_bytes_of(env, argv[0], &dst, &dstLength) || !dosna_bytes_of(env, argv[2], &planBytes, &planLength) ||
      napi_is_array(env, argv[1], &isArray) != napi_ok || !isArray || napi_get_array_length(env, argv[1], &given) != napi_ok)
    return dosna_fail(env, "copyRowsJoined takes a typed array, an array of typed arrays and a plan");
  const double *plan = (const double *)planBytes;
  if (planLength < 4 * sizeof(double)) return dosna_fail(env, "plan too short");
  int axes = (int)plan[0], pieces = (int)plan[1];
  if (axes < 0 || axes > MAX_AXES || pieces < 1 || pieces > MAX_JOINED_PIECES || (uint32_t)pieces != given ||
      planLength < (size_t)(4 + 2 * axes + pieces * (2 + axes)) * sizeof(double))
    return dosna_fail(env, "plan has the wrong length");
  int flags = (int)plan[3];
  if (flags != 0 && flags != PLAN_COLD_DESTINATION) return dosna_fail(env, "plan has unknown flags");
  const double *shape = plan + 4, *dstSteps = shape + axes;
  for (int k = 0; k < axes; k++) if (shape[k] < 1) return NULL; /* nothing to copy */
  joined_piece *p = malloc((size_t)pieces * sizeof *p);
  if (!p) return dosna_fail(env, "out of memory");
  const char *why = NULL;
  int64_t run = 0, low, high;
  for (int j = 0; j < pieces && !why; j++) {
    napi_value source;
    uint8_t *base;
    size_t length;
    const double *piece = dstSteps + axes + (size_t)j * (2 + axes);
    if (napi_get_element(env, argv[1], (uint32_t)j, &source) != napi_ok || !dosna_bytes_of(env, source, &base, &length)) {
      why = "copyRowsJoined's sources must be typed arrays";
      break;
    }
    p[j] = (joined_piece){ .row = (int64_t)piece[0], .start = run, .steps = piece + 2, .at = base + (int64_t)piece[1] };
    extent(axes, shape, p[j].steps, (int64_t)piece[1], p[j].row, &low, &high);
    if (p[j].row < 0 || low < 0 || high > (int64_t)length) why = "rows outside a source";
    run += p[j].row;
  }
  int64_t dst0 = (int64_t)plan[2];
  if (!why) {
    extent(axes, shape, dstSteps, dst0, run, &low, &high);
    if (low < 0 || high > (int64_t)dstLength) why = "rows outside the destination";
  }
  if (why) {
    free(p);
    return dosna_fail(env, why);
  }
  napi_value result;
#ifdef DOSNA_STREAMING
  bool cold = dstLength >= STREAM_MIN_DST_BYTES || ((flags & PLAN_COLD_DESTINATION) && dstLength >= STREAM_MIN_COLD_BYTES);
  bool alike = true;
  for (int k = 0; k < axes; k++) alike = alike && ((int64_t)dstSteps[k] & 63) == 0;
  if (cold && alike) {
    free(p);
    napi_get_boolean(env, 0, &result);
    return result;
  }
#endif
  uint8_t *d = dst + dst0;
  int64_t counter[MAX_AXES] = {0};
  for (;;) {
    for (int j = 0; j < pieces; j++) memmove(d + p[j].start, p[j].at, (size_t)p[j].row);
    int k = axes - 1;
    for (; k >= 0; k--) {
      d += (int64_t)dstSteps[k];
      for (int j = 0; j < pieces; j++) p[j].at += (int64_t)p[j].steps[k];
      if (++counter[k] < (int64_t)shape[k]) break;
      d -= (int64_t)dstSteps[k] * (int64_t)shape[k];
      for (int j = 0; j < pieces; j++) p[j].at -= (int64_t)p[j].steps[k] * (int64_t)shape[k];
      counter[k] = 0;
    }
    if (k < 0) break;
  }
  free(p);
  napi_get_boolean(env, 1, &result);
  return result;
}
