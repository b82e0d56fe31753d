/*
 * kv_cache.c — the block pool behind tp_kv_seq (see kv_cache.h).
 *
 * The pool is one aligned allocation of n_blocks blocks plus a LIFO stack of
 * free block indices: the most recently freed (hot, already resident) block is
 * reused first, so resident memory tracks the peak number of blocks in use.
 * Reservations are plain counters; holding never exceeds reserving.
 */
#include "batch/kv_cache.h"

#include <stdlib.h>
#include <string.h>

struct tp_kv_cache {
    int block_size;      /* B rows */
    size_t row_floats;   /* Hkv * Dh */
    size_t block_floats; /* 2 * B * row_floats (K rows, then V rows) */
    int64_t n_layers;
    const tp_dec_hparams *hp;
    float *mem; /* (n_blocks, block_floats) */
    size_t n_blocks;
    uint32_t *free_stack; /* (n_blocks) */
    size_t n_free;
    size_t n_reserved;
    size_t n_held;
    size_t peak_held;
};

size_t tp_kv_block_bytes(const tp_net *net, int block_size) {
    const tp_dec_hparams *hp = tp_decoder_hparams(net);
    size_t r, b;
    if (!hp || block_size <= 0 || !tp_mul_size((size_t)(hp->n_kv_heads * hp->head_dim), 2, &r) ||
        !tp_mul_size(r, (size_t)block_size * sizeof(float), &b))
        return 0;
    return b;
}

tp_status tp_kv_cache_create(const tp_net *net, int block_size, size_t n_blocks, tp_kv_cache **out,
                             tp_error *err) {
    *out = NULL;
    const tp_dec_hparams *hp = tp_decoder_hparams(net);
    if (!hp || block_size <= 0 || n_blocks == 0 || n_blocks > UINT32_MAX)
        return tp_fail(err, TP_ERR_INVALID_ARGUMENT,
                       "KV cache: needs a decoder, a block size > 0 and 1..2^32 blocks");
    tp_kv_cache *c = tp_calloc(1, sizeof *c);
    if (!c)
        return tp_fail(err, TP_ERR_OUT_OF_MEMORY, "KV cache: out of memory");
    c->block_size = block_size;
    c->row_floats = (size_t)(hp->n_kv_heads * hp->head_dim);
    c->block_floats = 2 * (size_t)block_size * c->row_floats;
    c->n_layers = hp->n_layers;
    c->hp = hp;
    c->n_blocks = n_blocks;
    size_t bytes;
    if (!tp_mul_size(n_blocks, c->block_floats * sizeof(float), &bytes)) {
        tp_free(c);
        return tp_fail(err, TP_ERR_OUT_OF_MEMORY, "KV cache: %zu blocks overflow the address space",
                       n_blocks);
    }
    c->mem = tp_aligned_alloc(n_blocks, c->block_floats * sizeof(float));
    c->free_stack = tp_malloc_array(n_blocks, sizeof(uint32_t));
    if (!c->mem || !c->free_stack) {
        tp_kv_cache_free(c);
        return tp_fail(err, TP_ERR_OUT_OF_MEMORY, "KV cache: cannot allocate %zu MiB", bytes >> 20);
    }
    /* Block 0 on top of the stack: low addresses are used first. */
    for (size_t i = 0; i < n_blocks; i++)
        c->free_stack[i] = (uint32_t)(n_blocks - 1 - i);
    c->n_free = n_blocks;
    *out = c;
    return TP_OK;
}

void tp_kv_cache_free(tp_kv_cache *c) {
    if (!c)
        return;
    tp_aligned_free(c->mem);
    tp_free(c->free_stack);
    tp_free(c);
}

size_t tp_kv_capacity(const tp_kv_cache *c) {
    return c->n_blocks;
}
size_t tp_kv_available(const tp_kv_cache *c) {
    return c->n_blocks - c->n_reserved;
}
size_t tp_kv_peak_blocks(const tp_kv_cache *c) {
    return c->peak_held;
}
int tp_kv_block_size(const tp_kv_cache *c) {
    return c->block_size;
}

static size_t ceil_div(size_t a, size_t b) {
    return (a + b - 1) / b;
}

size_t tp_kv_blocks_needed(const tp_net *net, int block_size, int max_len, int chunk) {
    const tp_dec_hparams *hp = tp_decoder_hparams(net);
    if (!hp || block_size <= 0 || max_len <= 0)
        return 0;
    if (chunk < 1)
        chunk = 1;
    size_t full = ceil_div((size_t)max_len, (size_t)block_size), total = 0;
    for (int64_t l = 0; l < hp->n_layers; l++) {
        int w = tp_dec_layer_window(hp, l);
        size_t n = full;
        if (w > 0) {
            /* A step's queries at positions [p, p+chunk) see keys from p-w+1: a
             * span of w+chunk-1 positions, touching at most one more block
             * than it fills. */
            size_t span = ceil_div((size_t)w + (size_t)chunk - 1, (size_t)block_size) + 1;
            if (span < n)
                n = span;
        }
        total += n;
    }
    return total;
}

tp_status tp_kv_seq_init(tp_kv_cache *c, tp_kv_seq *s, int max_len, size_t reserve, tp_error *err) {
    memset(s, 0, sizeof *s);
    if (max_len <= 0)
        return tp_fail(err, TP_ERR_INVALID_ARGUMENT, "KV cache: sequence length must be > 0");
    if (reserve > tp_kv_available(c))
        return tp_fail(err, TP_ERR_OUT_OF_MEMORY, "KV cache: %zu blocks wanted, %zu available",
                       reserve, tp_kv_available(c));
    s->max_blocks = (int)ceil_div((size_t)max_len, (size_t)c->block_size);
    size_t n = (size_t)c->n_layers * (size_t)s->max_blocks;
    s->k = tp_calloc(n, sizeof *s->k);
    s->v = tp_calloc(n, sizeof *s->v);
    if (!s->k || !s->v) {
        tp_free(s->k);
        tp_free(s->v);
        memset(s, 0, sizeof *s);
        return tp_fail(err, TP_ERR_OUT_OF_MEMORY, "KV cache: out of memory for block tables");
    }
    s->reserved = reserve;
    c->n_reserved += reserve;
    return TP_OK;
}

tp_status tp_kv_seq_grow(tp_kv_cache *c, tp_kv_seq *s, int new_len, tp_error *err) {
    if (new_len <= s->len)
        return TP_OK;
    if ((new_len - 1) / c->block_size >= s->max_blocks)
        return tp_fail(err, TP_ERR_INVALID_ARGUMENT,
                       "KV cache: length %d is past the sequence's table (%d blocks)", new_len,
                       s->max_blocks);
    int b0 = s->len / c->block_size, b1 = (new_len - 1) / c->block_size;
    for (int64_t l = 0; l < c->n_layers; l++) {
        for (int b = b0; b <= b1; b++) {
            size_t at = (size_t)l * (size_t)s->max_blocks + (size_t)b;
            if (s->k[at])
                continue;
            if (s->held >= s->reserved || c->n_free == 0)
                return tp_fail(err, TP_ERR_INTERNAL,
                               "KV cache: sequence outgrew its reservation (%zu blocks)",
                               s->reserved);
            uint32_t id = c->free_stack[--c->n_free];
            float *blk = c->mem + (size_t)id * c->block_floats;
            s->k[at] = blk;
            s->v[at] = blk + (size_t)c->block_size * c->row_floats;
            s->held++;
            c->n_held++;
        }
    }
    if (c->n_held > c->peak_held)
        c->peak_held = c->n_held;
    return TP_OK;
}

static void put_block(tp_kv_cache *c, tp_kv_seq *s, size_t at) {
    float *blk = s->k[at];
    size_t id = (size_t)(blk - c->mem) / c->block_floats;
    TP_ASSERT(id < c->n_blocks && c->n_free < c->n_blocks);
    c->free_stack[c->n_free++] = (uint32_t)id;
    s->k[at] = NULL;
    s->v[at] = NULL;
    s->held--;
    c->n_held--;
}

void tp_kv_seq_advance(tp_kv_cache *c, tp_kv_seq *s, int new_len) {
    s->len = new_len;
    for (int64_t l = 0; l < c->n_layers; l++) {
        int w = tp_dec_layer_window(c->hp, l);
        if (w <= 0)
            continue;
        /* The next query sits at position new_len and sees keys >= new_len-w+1:
         * blocks ending before that are dead for good. */
        int64_t first_live = (int64_t)new_len - w + 1;
        if (first_live <= 0)
            continue;
        int64_t dead = first_live / c->block_size; /* blocks [0, dead) are dead */
        for (int64_t b = dead - 1; b >= 0; b--) {
            size_t at = (size_t)l * (size_t)s->max_blocks + (size_t)b;
            if (!s->k[at])
                break; /* everything before was freed earlier */
            put_block(c, s, at);
        }
    }
}

void tp_kv_seq_release(tp_kv_cache *c, tp_kv_seq *s) {
    if (s->k) {
        size_t n = (size_t)c->n_layers * (size_t)s->max_blocks;
        for (size_t at = 0; at < n; at++)
            if (s->k[at])
                put_block(c, s, at);
    }
    TP_ASSERT(c->n_reserved >= s->reserved);
    c->n_reserved -= s->reserved;
    tp_free(s->k);
    tp_free(s->v);
    memset(s, 0, sizeof *s);
}
