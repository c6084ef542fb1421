/* A pool of freed memory blocks by size (block-pool.c). */
#ifndef DOSNA_BLOCK_POOL_H
#define DOSNA_BLOCK_POOL_H
#include <pthread.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* Distinct block sizes kept (a process uses a few chunk and result sizes). */
#define DOSNA_POOL_SIZES 16

struct dosna_free_block { struct dosna_free_block *next; };
struct dosna_size_class { size_t bytes; size_t count; struct dosna_free_block *head; };

typedef struct {
  size_t max_bytes; /* free memory kept at most; blocks beyond it are freed (the newest sizes win) */
  pthread_mutex_t lock;
  struct dosna_size_class classes[DOSNA_POOL_SIZES];
  size_t pooled_bytes;
  uint64_t reused, made;
} dosna_block_pool;

#define DOSNA_BLOCK_POOL(max) { .max_bytes = (max), .lock = PTHREAD_MUTEX_INITIALIZER }

/* A pooled block of exactly `bytes`, or NULL (counted as `made`: the caller makes one). */
void *dosna_pool_take(dosna_block_pool *pool, size_t bytes);
/* A block of `bytes` back to the pool, or freed when the pool is full; on any thread. */
void dosna_pool_give_back(dosna_block_pool *pool, void *data, size_t bytes);
void dosna_pool_stats(dosna_block_pool *pool, double *pooled_bytes, double *reused, double *made);
#endif
