/*
 * sample.c — the sampler of sample.h. Candidates are kept sorted by logit
 * (descending, lower id first on ties) so every filter is a cut of a prefix
 * and the draw walks a fixed order: the same logits, parameters and RNG state
 * always give the same token.
 */
#include "batch/sample.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

static uint64_t splitmix64(uint64_t *x) {
    uint64_t z = (*x += 0x9e3779b97f4a7c15ull);
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
    return z ^ (z >> 31);
}

void tp_rng_seed(tp_rng *r, uint64_t seed) {
    uint64_t x = seed;
    for (int i = 0; i < 4; i++)
        r->s[i] = splitmix64(&x);
}

static uint64_t rotl(uint64_t x, int k) {
    return (x << k) | (x >> (64 - k));
}

/* xoshiro256** */
static uint64_t rng_next(tp_rng *r) {
    uint64_t *s = r->s;
    uint64_t result = rotl(s[1] * 5, 7) * 9;
    uint64_t t = s[1] << 17;
    s[2] ^= s[0];
    s[3] ^= s[1];
    s[1] ^= s[2];
    s[0] ^= s[3];
    s[2] ^= t;
    s[3] = rotl(s[3], 45);
    return result;
}

double tp_rng_uniform(tp_rng *r) {
    return (double)(rng_next(r) >> 11) * (1.0 / 9007199254740992.0);
}

tp_status tp_sampler_scratch_init(tp_sampler_scratch *s, size_t vocab, tp_error *err) {
    memset(s, 0, sizeof *s);
    s->vocab = vocab;
    s->idx = tp_malloc_array(vocab, sizeof *s->idx);
    s->prob = tp_malloc_array(vocab, sizeof *s->prob);
    s->seen = tp_calloc(vocab ? vocab : 1, 1);
    if (!s->idx || !s->prob || !s->seen) {
        tp_sampler_scratch_free(s);
        return tp_fail(err, TP_ERR_OUT_OF_MEMORY, "sampler: out of memory for %zu entries", vocab);
    }
    return TP_OK;
}

void tp_sampler_scratch_free(tp_sampler_scratch *s) {
    tp_free(s->idx);
    tp_free(s->prob);
    tp_free(s->seen);
    memset(s, 0, sizeof *s);
}

static size_t argmax(const float *x, size_t n) {
    size_t best = 0;
    for (size_t i = 1; i < n; i++)
        if (x[i] > x[best])
            best = i;
    return best;
}

/* Order: larger logit first, then smaller id (qsort_r: no shared state). */
static int cmp_desc(const void *a, const void *b, void *ctx) {
    const float *lg = ctx;
    int32_t i = *(const int32_t *)a, j = *(const int32_t *)b;
    float x = lg[i], y = lg[j];
    if (x > y)
        return -1;
    if (x < y)
        return 1;
    return (i > j) - (i < j);
}

/* The k-th largest value of x (k <= n) with a min-heap of size k. */
static float kth_largest(const float *x, size_t n, size_t k, float *heap) {
    size_t h = 0;
    for (size_t i = 0; i < n; i++) {
        float v = x[i];
        if (h < k) {
            size_t c = h++;
            heap[c] = v;
            while (c > 0 && heap[(c - 1) / 2] > heap[c]) {
                float t = heap[c];
                heap[c] = heap[(c - 1) / 2];
                heap[(c - 1) / 2] = t;
                c = (c - 1) / 2;
            }
        } else if (v > heap[0]) {
            heap[0] = v;
            size_t c = 0;
            for (;;) {
                size_t l = 2 * c + 1, r = l + 1, m = c;
                if (l < h && heap[l] < heap[m])
                    m = l;
                if (r < h && heap[r] < heap[m])
                    m = r;
                if (m == c)
                    break;
                float t = heap[c];
                heap[c] = heap[m];
                heap[m] = t;
                c = m;
            }
        }
    }
    return heap[0];
}

int32_t tp_sample(float *logits, size_t vocab, const tp_sampling *p, const int32_t *history,
                  size_t n_history, tp_rng *rng, tp_sampler_scratch *s) {
    if (p->repetition_penalty > 0.0f && p->repetition_penalty != 1.0f && n_history > 0) {
        size_t from = 0;
        if (p->repetition_window > 0 && n_history > (size_t)p->repetition_window)
            from = n_history - (size_t)p->repetition_window;
        float rp = p->repetition_penalty;
        for (size_t i = from; i < n_history; i++) {
            int32_t t = history[i];
            if (t < 0 || (size_t)t >= vocab || s->seen[t])
                continue;
            s->seen[t] = 1;
            logits[t] = logits[t] > 0 ? logits[t] / rp : logits[t] * rp;
        }
        for (size_t i = from; i < n_history; i++)
            if (history[i] >= 0 && (size_t)history[i] < vocab)
                s->seen[history[i]] = 0;
    }
    if (!(p->temperature > 0.0f))
        return (int32_t)argmax(logits, vocab);

    for (size_t i = 0; i < vocab; i++)
        logits[i] /= p->temperature;

    /* Candidates and their unnormalised probabilities e_i = exp(l_i - max):
     *  - top-k: the ids >= the k-th largest logit, sorted (Z over them, as the
     *    others are masked to -inf);
     *  - else top-p: only the ids that can be in the nucleus are sorted: those
     *    above a threshold whose mass already reaches top_p (Z over all ids);
     *  - else: every id in index order, nothing sorted (any fixed order gives
     *    a deterministic draw). */
    size_t n = 0;
    double Z = 0.0;
    float mx = logits[argmax(logits, vocab)];
    bool nucleus = p->top_p > 0.0f && p->top_p < 1.0f;
    if (p->top_k > 0 && (size_t)p->top_k < vocab) {
        float thr = kth_largest(logits, vocab, (size_t)p->top_k, s->prob);
        for (size_t i = 0; i < vocab; i++)
            if (logits[i] >= thr)
                s->idx[n++] = (int32_t)i;
        qsort_r(s->idx, n, sizeof *s->idx, cmp_desc, logits);
        for (size_t i = 0; i < n; i++) {
            s->prob[i] = expf(logits[s->idx[i]] - mx);
            Z += s->prob[i];
        }
    } else if (nucleus) {
        for (size_t i = 0; i < vocab; i++)
            Z += expf(logits[i] - mx);
        /* Lower a threshold on e (max is 1) until the mass above it reaches top_p. */
        double target = (double)p->top_p * Z;
        float t = 0.5f;
        for (;;) {
            double mass = 0.0;
            n = 0;
            for (size_t i = 0; i < vocab; i++) {
                float e = expf(logits[i] - mx);
                if (e >= t) {
                    mass += e;
                    s->idx[n++] = (int32_t)i;
                }
            }
            if (mass >= target || t == 0.0f)
                break;
            t = t < 1e-30f ? 0.0f : t * (1.0f / 64.0f);
        }
        qsort_r(s->idx, n, sizeof *s->idx, cmp_desc, logits);
        for (size_t i = 0; i < n; i++)
            s->prob[i] = expf(logits[s->idx[i]] - mx);
    } else {
        for (size_t i = 0; i < vocab; i++) {
            s->idx[i] = (int32_t)i;
            s->prob[i] = expf(logits[i] - mx);
            Z += s->prob[i];
        }
        n = vocab;
    }

    if (nucleus) {
        /* HF: with probabilities sorted ascending, drop those whose cumulative
         * mass is <= 1 - top_p (the ids outside our candidates come first in
         * that order: their mass starts the sum). At least one id stays. */
        double in = 0.0;
        for (size_t i = 0; i < n; i++)
            in += s->prob[i];
        double tail = (Z - in) / Z, lim = 1.0 - (double)p->top_p;
        size_t keep = n;
        for (size_t i = n; i-- > 1;) {
            tail += s->prob[i] / Z;
            if (tail <= lim)
                keep = i;
            else
                break;
        }
        n = keep;
    }
    if (p->min_p > 0.0f) {
        /* p_i < min_p * p_max, a ratio: the same for any normalisation. The
         * max is e = 1 (it is always a candidate). */
        size_t k = 0;
        for (size_t i = 0; i < n; i++) {
            if (s->prob[i] >= p->min_p) {
                s->idx[k] = s->idx[i];
                s->prob[k] = s->prob[i];
                k++;
            }
        }
        n = k;
    }
    if (n == 0) /* only with NaN logits: fall back to a fixed choice */
        return (int32_t)argmax(logits, vocab);
    double tot = 0.0;
    for (size_t i = 0; i < n; i++)
        tot += s->prob[i];
    double u = tp_rng_uniform(rng) * tot, acc = 0.0;
    for (size_t i = 0; i < n; i++) {
        acc += s->prob[i];
        if (u < acc)
            return s->idx[i];
    }
    return s->idx[n - 1];
}
