/**
 * Transparent huge pages for the Node processes dosna starts. Node allocates large arrays with
 * glibc's malloc, which (unlike numpy, which asks with madvise) leaves them in 4 KiB pages: a
 * fresh 64 MiB array then costs 16,384 page faults when first written. With
 * `GLIBC_TUNABLES=glibc.malloc.hugetlb=1` (glibc 2.35 and later) malloc asks for huge pages
 * itself; measured here, allocating and filling a 64 MiB array fell from 55 to 28 ms (numpy's
 * copy: 23 ms). A running process cannot change it, so it is set for the processes dosna
 * starts (the ranks of `dosna launch`, the benchmark's workloads, the npm scripts), and
 * docs/guide.md tells users how to set it for theirs. Elsewhere it is ignored.
 */

/** `env` with huge pages asked of glibc's malloc, unless `env` already says what it wants. */
export function withHugePages(env: NodeJS.ProcessEnv): NodeJS.ProcessEnv {
  const current = env.GLIBC_TUNABLES ?? '';
  if (/(^|:)glibc\.malloc\.hugetlb=/.test(current)) return env; // the user's choice stands
  return { ...env, GLIBC_TUNABLES: current ? `${current}:glibc.malloc.hugetlb=1` : 'glibc.malloc.hugetlb=1' };
}
