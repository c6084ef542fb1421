export const clamp = (v: number, lo: number, hi: number): number => Math.min(hi, Math.max(lo, v));
