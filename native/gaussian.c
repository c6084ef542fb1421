/*
 * The correlation pass of dosna's gaussian filters (src/kernels/gaussian.ts) in C, so the
 * compiler vectorizes it: V8 runs the same loop one element at a time.
 *
 * Results are bit for bit those of the JavaScript pass, which match SciPy's: every output
 * element is the same double-precision sum in the same order,
 *   w0 * x[i] + w1 * (x[i-1] + x[i+1]) + ... + wr * (x[i-r] + x[i+r]),
 * rounded once to the output type (the float32 inputs widen to double exactly, as in
 * JavaScript). The sum is built tap by tap over a tile of a row (one
 * tap's term for every element of the tile, then the next tap's), which keeps that order per
 * element and lets every tap's loop run in SIMD lanes. Build flags forbid fused multiply-adds
 * (-ffp-contract=off), which would round differently.
 *
 * correlateAxis(input, out, outer, n, inner, weights)
 *   input, out: Float32Array or Float64Array of the same type and outer * n * inner elements
 *   (out must not alias input); the pass runs along the middle axis of length n with
 *   reflected borders (SciPy mode 'reflect'); weights: Float64Array w[-r..r], symmetric.
 */
#include <node_api.h>
#include <stdint.h>
#include <stdlib.h>
#include "dosna.h"

#define TILE 256

/*
 * Compiled twice, for AVX2 and for the baseline, and picked at load by the CPU it runs on
 * (GCC's target_clones): four doubles per instruction where the CPU has them, no illegal
 * instruction where it does not (a module built on one machine may run on another).
 */
#if defined(__GNUC__) && !defined(__clang__) && defined(__x86_64__) && defined(__linux__)
#define DOSNA_VECTOR_CLONES __attribute__((target_clones("avx2", "default")))
#else
#define DOSNA_VECTOR_CLONES
#endif

/* SciPy's 'reflect' mode: d c b a | a b c d | d c b a, also past one period. */
static int64_t reflect(int64_t i, int64_t n) {
  if (n == 1) return 0;
  int64_t period = 2 * n, m = i % period;
  if (m < 0) m += period;
  return m < n ? m : period - 1 - m;
}

/*
 * Rows of a pass along a leading axis lie far apart in memory, often a multiple of 4 KiB, so
 * the 2r + 1 rows read at once would collide in the same L1 cache sets. Each row's tile is
 * instead converted to double once into a ring of 2r + 1 slots at an odd stride, and every
 * output row reads its taps from there.
 */
#define RING_STRIDE (TILE + 24)

#define DEFINE_PASS(NAME, T)                                                                         \
  DOSNA_VECTOR_CLONES static void NAME(const T *input, T *out, int64_t outer, int64_t n,              \
                                      int64_t inner, const double *w, int64_t r, double *scratch) {   \
    if (inner == 1) {                                                                                 \
      double *line = scratch, *acc = scratch + n + 2 * r;                                             \
      for (int64_t o = 0; o < outer; o++) {                                                           \
        const T *x = input + o * n;                                                                   \
        for (int64_t p = 0; p < r; p++) {                                                             \
          line[p] = (double)x[reflect(p - r, n)];                                                     \
          line[n + r + p] = (double)x[reflect(n + p, n)];                                             \
        }                                                                                             \
        for (int64_t i = 0; i < n; i++) line[r + i] = (double)x[i];                                   \
        for (int64_t i = 0; i < n; i++) acc[i] = w[0] * line[i + r];                                  \
        for (int64_t k = 1; k <= r; k++) {                                                            \
          const double wk = w[k], *lo = line + r - k, *hi = line + r + k;                             \
          for (int64_t i = 0; i < n; i++) acc[i] += wk * (lo[i] + hi[i]);                             \
        }                                                                                             \
        T *y = out + o * n;                                                                           \
        for (int64_t i = 0; i < n; i++) y[i] = (T)acc[i];                                             \
      }                                                                                               \
      return;                                                                                         \
    }                                                                                                 \
    const int64_t taps = 2 * r + 1;                                                                   \
    double *acc = scratch, *ring = scratch + TILE;                                                    \
    for (int64_t o = 0; o < outer; o++) {                                                             \
      const T *base = input + o * n * inner;                                                          \
      for (int64_t start = 0; start < inner; start += TILE) {                                         \
        const int64_t len = inner - start < TILE ? inner - start : TILE;                              \
        /* Ring slot p % taps holds padded row p, that is source row reflect(p - r). */               \
        for (int64_t p = 0; p < taps - 1; p++) {                                                      \
          const T *from = base + reflect(p - r, n) * inner + start;                                   \
          double *slot = ring + (p % taps) * RING_STRIDE;                                             \
          for (int64_t j = 0; j < len; j++) slot[j] = (double)from[j];                                \
        }                                                                                             \
        for (int64_t i = 0; i < n; i++) {                                                             \
          const int64_t next = i + taps - 1;                                                          \
          const T *from = base + reflect(next - r, n) * inner + start;                                \
          double *slot = ring + (next % taps) * RING_STRIDE;                                          \
          for (int64_t j = 0; j < len; j++) slot[j] = (double)from[j];                                \
          const double *c = ring + ((i + r) % taps) * RING_STRIDE;                                    \
          for (int64_t j = 0; j < len; j++) acc[j] = w[0] * c[j];                                     \
          for (int64_t k = 1; k <= r; k++) {                                                          \
            const double wk = w[k];                                                                   \
            const double *lo = ring + ((i + r - k) % taps) * RING_STRIDE;                             \
            const double *hi = ring + ((i + r + k) % taps) * RING_STRIDE;                             \
            for (int64_t j = 0; j < len; j++) acc[j] += wk * (lo[j] + hi[j]);                         \
          }                                                                                           \
          T *y = out + (o * n + i) * inner + start;                                                   \
          for (int64_t j = 0; j < len; j++) y[j] = (T)acc[j];                                         \
        }                                                                                             \
      }                                                                                               \
    }                                                                                                 \
  }

DEFINE_PASS(pass_float32, float)
DEFINE_PASS(pass_float64, double)

napi_value dosna_correlate_axis(napi_env env, napi_callback_info info) {
  size_t argc = 6;
  napi_value argv[6];
  if (napi_get_cb_info(env, info, &argc, argv, NULL, NULL) != napi_ok || argc != 6)
    return dosna_fail(env, "correlateAxis takes (input, out, outer, n, inner, weights)");
  napi_typedarray_type inType, outType, wType;
  size_t inLength, outLength, wLength;
  void *in, *out, *weights;
  if (napi_get_typedarray_info(env, argv[0], &inType, &inLength, &in, NULL, NULL) != napi_ok ||
      napi_get_typedarray_info(env, argv[1], &outType, &outLength, &out, NULL, NULL) != napi_ok ||
      napi_get_typedarray_info(env, argv[5], &wType, &wLength, &weights, NULL, NULL) != napi_ok)
    return dosna_fail(env, "correlateAxis takes typed arrays");
  double dims[3];
  for (int a = 0; a < 3; a++)
    if (napi_get_value_double(env, argv[2 + a], &dims[a]) != napi_ok || dims[a] < 1) return dosna_fail(env, "bad block shape");
  const int64_t outer = (int64_t)dims[0], n = (int64_t)dims[1], inner = (int64_t)dims[2];
  if (inType != outType || (inType != napi_float32_array && inType != napi_float64_array) || wType != napi_float64_array)
    return dosna_fail(env, "correlateAxis takes float32 or float64 arrays of one type and float64 weights");
  if ((int64_t)inLength != outer * n * inner || (int64_t)outLength != outer * n * inner || wLength % 2 != 1)
    return dosna_fail(env, "array lengths do not match the block");
  const int64_t r = (int64_t)(wLength - 1) / 2;
  double *scratch = malloc(sizeof(double) * (size_t)(inner == 1 ? 2 * n + 2 * r : TILE + (2 * r + 1) * RING_STRIDE));
  if (!scratch) return dosna_fail(env, "out of memory");
  const double *w = (const double *)weights + r; /* w[k], k = 0..r */
  if (inType == napi_float32_array) pass_float32(in, out, outer, n, inner, w, r, scratch);
  else pass_float64(in, out, outer, n, inner, w, r, scratch);
  free(scratch);
  return NULL;
}
