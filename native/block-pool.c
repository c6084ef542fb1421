/*
 * A pool of freed memory blocks by size, for buffers whose memory V8 hands back late (after a
 * garbage collection): a new buffer takes a block of its size that is already mapped, instead
 * of pages the kernel must fault in. shared-pool.c keeps one for SharedArrayBuffers,
 * aligned-buffer.c one for line-aligned results. Safe on any thread: V8 may free a buffer on
 * any thread that held it.
 */
#include <stdlib.h>
#include "block-pool.h"

void *dosna_pool_take(dosna_block_pool *pool, size_t bytes) {
  void *block = NULL;
  pthread_mutex_lock(&pool->lock);
  for (int i = 0; i < DOSNA_POOL_SIZES; i++) {
    if (pool->classes[i].bytes == bytes && pool->classes[i].head) {
      struct dosna_free_block *b = pool->classes[i].head;
      pool->classes[i].head = b->next;
      pool->classes[i].count--;
      pool->pooled_bytes -= bytes;
      pool->reused++;
      block = b;
      break;
    }
  }
  if (!block) pool->made++;
  pthread_mutex_unlock(&pool->lock);
  return block;
}

/* Frees one block of the class holding the most free bytes other than `keep`; false if none. */
static bool evict_other(dosna_block_pool *pool, int keep) {
  struct dosna_size_class *classes = pool->classes;
  int victim = -1;
  for (int i = 0; i < DOSNA_POOL_SIZES; i++) {
    if (i != keep && classes[i].head && (victim < 0 || classes[i].count * classes[i].bytes > classes[victim].count * classes[victim].bytes)) victim = i;
  }
  if (victim < 0) return false;
  struct dosna_free_block *b = classes[victim].head;
  classes[victim].head = b->next;
  classes[victim].count--;
  pool->pooled_bytes -= classes[victim].bytes;
  free(b);
  return true;
}

void dosna_pool_give_back(dosna_block_pool *pool, void *data, size_t bytes) {
  struct dosna_size_class *classes = pool->classes;
  bool kept = false;
  pthread_mutex_lock(&pool->lock);
  if (bytes <= pool->max_bytes && bytes >= sizeof(struct dosna_free_block)) {
    int slot = -1;
    for (int i = 0; i < DOSNA_POOL_SIZES && slot < 0; i++) if (classes[i].bytes == bytes) slot = i;
    for (int i = 0; i < DOSNA_POOL_SIZES && slot < 0; i++) if (classes[i].head == NULL) slot = i;
    if (slot < 0) {
      /* Every class holds blocks of another size: empty the fullest for this one. */
      int fullest = 0;
      for (int i = 1; i < DOSNA_POOL_SIZES; i++) if (classes[i].count * classes[i].bytes > classes[fullest].count * classes[fullest].bytes) fullest = i;
      for (struct dosna_free_block *b = classes[fullest].head, *next; b; b = next) {
        next = b->next;
        free(b);
      }
      pool->pooled_bytes -= classes[fullest].count * classes[fullest].bytes;
      classes[fullest].head = NULL;
      classes[fullest].count = 0;
      slot = fullest;
    }
    while (pool->pooled_bytes + bytes > pool->max_bytes && evict_other(pool, slot)) {}
    if (pool->pooled_bytes + bytes <= pool->max_bytes) {
      struct dosna_free_block *b = data;
      if (classes[slot].bytes != bytes) { classes[slot].bytes = bytes; classes[slot].count = 0; }
      b->next = classes[slot].head;
      classes[slot].head = b;
      classes[slot].count++;
      pool->pooled_bytes += bytes;
      kept = true;
    }
  }
  pthread_mutex_unlock(&pool->lock);
  if (!kept) free(data);
}

void dosna_pool_stats(dosna_block_pool *pool, double *pooled_bytes, double *reused, double *made) {
  pthread_mutex_lock(&pool->lock);
  *pooled_bytes = (double)pool->pooled_bytes;
  *reused = (double)pool->reused;
  *made = (double)pool->made;
  pthread_mutex_unlock(&pool->lock);
}
