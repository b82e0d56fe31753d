/*
 * test_attention.c — tp_attention over packed batches on every ISA level.
 *   accuracy: a float64 oracle written here (plain softmax over the visible
 *     keys), within TOL_ATTN, for causal / bidirectional / sliding (left and
 *     symmetric) windows, GQA and MQA, softcap, prefill / decode / chunked
 *     queries, block sizes that do and do not divide the lengths, NULL blocks
 *     outside every window, head_dim 1, 24, 32, 64, 128 and odd ones;
 *   batch invariance: a sequence's output is bit-identical alone or packed with
 *     others, and a prefill row equals the decode call for that position;
 *   thread-count invariance: no pool, 1, 2 and 7 threads give the same bits.
 */
#include "kt_util.h"

#define TOL_ATTN 2e-5 /* abs, values in [-1, 1) */

typedef struct kvcache {
    int len, block_size, n_blocks;
    size_t ld;
    float **k, **v; /* n_blocks pointers, NULL where never visible */
} kvcache;

static kvcache make_cache(int len, int block_size, size_t ld, int null_below) {
    kvcache c = {len, block_size, (len + block_size - 1) / block_size, ld, NULL, NULL};
    int nb = c.n_blocks ? c.n_blocks : 1;
    c.k = calloc((size_t)nb, sizeof(float *));
    c.v = calloc((size_t)nb, sizeof(float *));
    for (int b = 0; b < c.n_blocks; b++) {
        if ((b + 1) * block_size <= null_below)
            continue; /* block entirely before every window: left NULL */
        c.k[b] = kt_random((size_t)block_size * ld, -1.0f, 1.0f);
        c.v[b] = kt_random((size_t)block_size * ld, -1.0f, 1.0f);
    }
    return c;
}

static void free_cache(kvcache *c) {
    for (int b = 0; b < c->n_blocks; b++) {
        tp_aligned_free(c->k[b]);
        tp_aligned_free(c->v[b]);
    }
    free(c->k);
    free(c->v);
}

static void oracle(const tp_attn_seq *s, const tp_attn_params *p, double *out) {
    int d = p->head_dim, group = p->n_heads / p->n_kv_heads;
    for (int i = 0; i < s->n_q; i++) {
        int pos = s->q_pos0 + i;
        for (int h = 0; h < p->n_heads; h++) {
            const float *q = s->q + (size_t)i * s->q_ld + (size_t)h * d;
            double *o = out + ((size_t)i * p->n_heads + h) * d;
            for (int t = 0; t < d; t++)
                o[t] = 0;
            double mx = -INFINITY, sum = 0;
            double *sc = malloc(((size_t)s->kv_len + 1) * sizeof(double));
            for (int j = 0; j < s->kv_len; j++) {
                bool vis = (!p->causal || j <= pos) &&
                           (p->window_left < 0 || j >= pos - p->window_left) &&
                           (p->window_right < 0 || j <= pos + p->window_right);
                sc[j] = -INFINITY;
                if (!vis)
                    continue;
                const float *k = s->k_blocks[j / s->block_size] +
                                 (size_t)(j % s->block_size) * s->kv_ld + (size_t)(h / group) * d;
                double a = 0;
                for (int t = 0; t < d; t++)
                    a += (double)q[t] * k[t];
                a *= p->scale;
                if (p->softcap > 0)
                    a = p->softcap * tanh(a / p->softcap);
                sc[j] = a;
                mx = a > mx ? a : mx;
            }
            for (int j = 0; j < s->kv_len; j++)
                if (sc[j] > -INFINITY)
                    sum += exp(sc[j] - mx);
            for (int j = 0; j < s->kv_len; j++) {
                if (sc[j] == -INFINITY)
                    continue;
                double wgt = exp(sc[j] - mx) / sum;
                const float *v = s->v_blocks[j / s->block_size] +
                                 (size_t)(j % s->block_size) * s->kv_ld + (size_t)(h / group) * d;
                for (int t = 0; t < d; t++)
                    o[t] += wgt * v[t];
            }
            free(sc);
        }
    }
}

typedef struct seqspec {
    int n_q, kv_len, block_size;
} seqspec;

static void run_case(tp_isa isa, tp_attn_params p, const seqspec *specs, int n_seqs,
                     tp_pool **pools) {
    int hd = p.n_heads * p.head_dim;
    size_t q_ld = (size_t)hd + 1, out_ld = (size_t)hd + 2;
    size_t kv_ld = (size_t)p.n_kv_heads * p.head_dim + 3;
    tp_attn_seq *seqs = calloc((size_t)n_seqs, sizeof *seqs);
    kvcache *caches = calloc((size_t)n_seqs, sizeof *caches);
    kt_set_isa(isa);
    for (int s = 0; s < n_seqs; s++) {
        int q_pos0 = specs[s].kv_len - specs[s].n_q;
        /* first position any query can see: NULL the blocks below it */
        int min_vis = 0;
        if (p.window_left >= 0 && q_pos0 - p.window_left > 0)
            min_vis = q_pos0 - p.window_left;
        caches[s] = make_cache(specs[s].kv_len, specs[s].block_size, kv_ld, min_vis);
        tp_attn_seq *q = &seqs[s];
        q->q = kt_random((size_t)specs[s].n_q * q_ld, -1.0f, 1.0f);
        q->q_ld = q_ld;
        q->out = kt_alloc((size_t)specs[s].n_q * out_ld);
        q->out_ld = out_ld;
        q->n_q = specs[s].n_q;
        q->q_pos0 = q_pos0;
        q->kv_len = specs[s].kv_len;
        q->k_blocks = (const float *const *)caches[s].k;
        q->v_blocks = (const float *const *)caches[s].v;
        q->block_size = specs[s].block_size;
        q->kv_ld = kv_ld;
    }
    tp_attention(NULL, seqs, (size_t)n_seqs, &p);

    for (int s = 0; s < n_seqs; s++) {
        const tp_attn_seq *q = &seqs[s];
        double *want = malloc(((size_t)q->n_q * hd + 1) * sizeof(double));
        oracle(q, &p, want);
        double worst = 0;
        for (int i = 0; i < q->n_q; i++)
            for (int t = 0; t < hd; t++) {
                double e = fabs(q->out[(size_t)i * out_ld + t] - want[(size_t)i * hd + t]);
                worst = e > worst ? e : worst;
            }
        CHECK_MSG(worst <= TOL_ATTN,
                  "%s seq %d (n_q=%d kv=%d bs=%d) heads %d/%d d=%d causal=%d win=%d/%d cap=%g: "
                  "err %.3g",
                  tp_isa_name(isa), s, q->n_q, q->kv_len, q->block_size, p.n_heads, p.n_kv_heads,
                  p.head_dim, p.causal, p.window_left, p.window_right, p.softcap, worst);
        free(want);
    }

    /* thread-count invariance and each sequence alone */
    for (int pi = 0; pi < 3; pi++) {
        tp_attn_seq *copy = calloc((size_t)n_seqs, sizeof *copy);
        for (int s = 0; s < n_seqs; s++) {
            copy[s] = seqs[s];
            copy[s].out = kt_alloc((size_t)seqs[s].n_q * out_ld);
        }
        tp_attention(pools[pi], copy, (size_t)n_seqs, &p);
        for (int s = 0; s < n_seqs; s++) {
            bool same = true;
            for (int i = 0; i < seqs[s].n_q; i++)
                same = same && kt_same_bits(copy[s].out + (size_t)i * out_ld,
                                            seqs[s].out + (size_t)i * out_ld, (size_t)hd);
            CHECK_MSG(same, "%s threads=%d seq %d differs", tp_isa_name(isa),
                      tp_pool_size(pools[pi]), s);
            /* alone (pools[pi] again) */
            tp_attention(pools[pi], &copy[s], 1, &p);
            same = true;
            for (int i = 0; i < seqs[s].n_q; i++)
                same = same && kt_same_bits(copy[s].out + (size_t)i * out_ld,
                                            seqs[s].out + (size_t)i * out_ld, (size_t)hd);
            CHECK_MSG(same, "%s seq %d alone differs", tp_isa_name(isa), s);
        }
        for (int s = 0; s < n_seqs; s++)
            tp_aligned_free(copy[s].out);
        free(copy);
    }

    /* a prefill row equals the decode-shaped call for that position (n_q = 1) */
    for (int s = 0; s < n_seqs; s++) {
        if (seqs[s].n_q < 2)
            continue;
        int i = seqs[s].n_q / 2;
        tp_attn_seq one = seqs[s];
        one.q = seqs[s].q + (size_t)i * q_ld;
        one.n_q = 1;
        one.q_pos0 = seqs[s].q_pos0 + i;
        one.out = kt_alloc(out_ld);
        tp_attention(pools[1], &one, 1, &p);
        CHECK_MSG(kt_same_bits(one.out, seqs[s].out + (size_t)i * out_ld, (size_t)hd),
                  "%s seq %d row %d as decode differs", tp_isa_name(isa), s, i);
        tp_aligned_free(one.out);
    }

    for (int s = 0; s < n_seqs; s++) {
        tp_aligned_free((void *)seqs[s].q);
        tp_aligned_free(seqs[s].out);
        free_cache(&caches[s]);
    }
    free(caches);
    free(seqs);
}

int main(void) {
    tp_isa isas[3];
    int n_isa = kt_isas(isas);
    tp_pool *pools[3] = {kt_pool(1), kt_pool(2), kt_pool(7)};
    /* packed batches: prefill (n_q == kv_len), decode (n_q == 1), chunked, and long */
    seqspec mixed[] = {{37, 37, 16}, {1, 2, 16}, {14, 14, 5}, {1, 1, 1}, {3, 28, 7}, {1, 63, 64}};
    seqspec big[] = {{300, 300, 32}, {1, 257, 16}};
    struct {
        int heads, kv, d;
        bool causal;
        int wl, wr;
        float cap;
    } cfg[] = {
        {4, 2, 32, true, -1, -1, 0.0f},  /* qwen3-like GQA */
        {4, 1, 32, true, 7, -1, 0.0f},   /* gemma sliding (window 8), MQA */
        {3, 1, 24, true, 11, -1, 10.0f}, /* gemma 270m-like + softcap */
        {4, 4, 16, false, -1, -1, 0.0f}, /* modernbert global */
        {3, 3, 16, false, 4, 4, 0.0f},   /* modernbert local |i-j| <= 4 */
        {2, 2, 128, true, -1, -1, 0.0f},
        {2, 1, 64, false, 8, 8, 0.0f},
        {1, 1, 1, true, -1, -1, 0.0f},
        {2, 1, 256, true, 5, -1, 0.0f},   /* gemma head_dim */
        {1, 1, 300, false, -1, -1, 0.0f}, /* beyond the vector kernels */
        {5, 5, 17, true, 3, 2, 30.0f},
        /* head_dim 64 / 128: the register-tiled kernels, with GQA, windows, softcap */
        {4, 2, 64, true, 6, -1, 20.0f},
        {2, 1, 128, true, -1, -1, 30.0f},
        {6, 6, 64, false, -1, -1, 0.0f},
    };
    for (int ii = 0; ii < n_isa; ii++) {
        for (size_t c = 0; c < sizeof cfg / sizeof cfg[0]; c++) {
            tp_attn_params p = {cfg[c].heads,  cfg[c].kv, cfg[c].d,  1.0f / sqrtf((float)cfg[c].d),
                                cfg[c].causal, cfg[c].wl, cfg[c].wr, cfg[c].cap};
            if (!p.causal) {
                /* bidirectional: every query sees the whole sequence */
                seqspec enc[] = {{37, 37, 16}, {2, 2, 4}, {14, 14, 5}, {5, 5, 64}, {28, 28, 7}};
                run_case(isas[ii], p, enc, 5, pools);
            } else {
                run_case(isas[ii], p, mixed, 6, pools);
            }
            if (c < 3)
                run_case(isas[ii], p, big, 2, pools);
        }
        printf("%s: attention checked\n", tp_isa_name(isas[ii]));
    }
    for (int p = 0; p < 3; p++)
        tp_pool_destroy(pools[p]);
    return tp_test_exit();
}
