/*
 * kv_cache.h — block-allocated KV cache for text generation (internal; issue #7).
 *
 * One tp_kv_cache is a pool of fixed-size blocks sized by a memory budget. A
 * block holds B key rows and B value rows of one layer (each row Hkv*Dh floats,
 * the layout tp_attention reads). A sequence owns a block table per layer and
 * takes blocks from the pool as it grows, so memory follows the tokens actually
 * cached; on sliding-window layers the blocks that fall wholly out of the
 * window are handed back as the sequence advances.
 *
 * Admission is by reservation: before a sequence starts, the scheduler reserves
 * the most blocks it can ever hold at once (tp_kv_blocks_needed); growth then
 * never fails, sequences never have to be evicted, and a waiting item simply
 * waits until enough blocks are unreserved. Pages of the pool are touched only
 * when a block is first used, so resident memory stays below
 * peak-used-blocks x block bytes, and never above the budget.
 */
#ifndef TP_BATCH_KV_CACHE_H
#define TP_BATCH_KV_CACHE_H

#include "models/decoder.h"

typedef struct tp_kv_cache tp_kv_cache;

/* One sequence's block tables (the layout tp_dec_seq wants). */
typedef struct tp_kv_seq {
    float **k;       /* (L * max_blocks) key blocks, NULL where not held   */
    float **v;       /* (L * max_blocks) value blocks                      */
    int max_blocks;  /* blocks per layer for the longest length allowed    */
    int len;         /* tokens cached                                      */
    size_t held;     /* blocks held now (all layers)                       */
    size_t reserved; /* blocks reserved at admission                      */
} tp_kv_seq;

/* Creates a pool of at most n_blocks blocks of block_size rows for net
 * (a decoder). The memory is reserved (virtual) up front and touched lazily. */
tp_status tp_kv_cache_create(const tp_net *net, int block_size, size_t n_blocks, tp_kv_cache **out,
                             tp_error *err);
void tp_kv_cache_free(tp_kv_cache *c);

/* Bytes of one block (K and V rows of one layer). */
size_t tp_kv_block_bytes(const tp_net *net, int block_size);
size_t tp_kv_capacity(const tp_kv_cache *c);    /* blocks in the pool      */
size_t tp_kv_available(const tp_kv_cache *c);   /* blocks not reserved     */
size_t tp_kv_peak_blocks(const tp_kv_cache *c); /* most blocks held at once */
int tp_kv_block_size(const tp_kv_cache *c);

/* The most blocks a sequence can hold at once when it caches up to max_len
 * tokens and feeds at most chunk tokens per step (sliding layers keep only
 * their window plus the step). */
size_t tp_kv_blocks_needed(const tp_net *net, int block_size, int max_len, int chunk);

/* Reserves `reserve` blocks and sets up empty tables for up to max_len tokens.
 * TP_ERR_OUT_OF_MEMORY when fewer blocks are available (the caller waits) or
 * the tables cannot be allocated. */
tp_status tp_kv_seq_init(tp_kv_cache *c, tp_kv_seq *s, int max_len, size_t reserve, tp_error *err);
/* Makes sure blocks exist for positions [s->len, new_len) on every layer. */
tp_status tp_kv_seq_grow(tp_kv_cache *c, tp_kv_seq *s, int new_len, tp_error *err);
/* Records that new_len tokens are cached and hands back sliding-layer blocks
 * that no later query can see. */
void tp_kv_seq_advance(tp_kv_cache *c, tp_kv_seq *s, int new_len);
/* Returns every block and the reservation; s is emptied. */
void tp_kv_seq_release(tp_kv_cache *c, tp_kv_seq *s);

#endif /* TP_BATCH_KV_CACHE_H */
