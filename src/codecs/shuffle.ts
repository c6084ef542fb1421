/**
 * The byte shuffle of HDF5 (filter 2) and numcodecs (`shuffle`): the first byte of every
 * element, then every second byte, and so on. Neighbouring float values share their high
 * bytes, so after a shuffle a compressor finds long runs it would not see in the interleaved
 * bytes (smooth float32 data: ratio ~0.9 with deflate alone, ~0.2 shuffled).
 *
 * Both keep a tail that is not a whole element as it is, at the end.
 */

/** `src` shuffled for elements of `itemsize` bytes, into `dst` (a new array by default). */
export function shuffle(src: Uint8Array, itemsize: number, dst = new Uint8Array(src.length)): Uint8Array {
  if (itemsize <= 1) {
    dst.set(src);
    return dst;
  }
  const n = Math.floor(src.length / itemsize);
  for (let b = 0; b < itemsize; b++) {
    const base = b * n;
    for (let i = 0, from = b; i < n; i++, from += itemsize) dst[base + i] = src[from];
  }
  const whole = n * itemsize;
  if (whole < src.length) dst.set(src.subarray(whole), whole);
  return dst;
}

/** The inverse of `shuffle`, into `dst` (a new array by default). */
export function unshuffle(src: Uint8Array, itemsize: number, dst = new Uint8Array(src.length)): Uint8Array {
  if (itemsize <= 1) {
    dst.set(src);
    return dst;
  }
  const n = Math.floor(src.length / itemsize);
  for (let b = 0; b < itemsize; b++) {
    const base = b * n;
    for (let i = 0, to = b; i < n; i++, to += itemsize) dst[to] = src[base + i];
  }
  const whole = n * itemsize;
  if (whole < src.length) dst.set(src.subarray(whole), whole);
  return dst;
}
