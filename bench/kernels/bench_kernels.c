/*
 * bench_kernels — GEMM throughput of tp_matmul at decode-like (M = 1..32) and
 * prefill-like (M = 512..4096) shapes with K x N of real models, for f32 and
 * bf16 weights and both compute modes, next to the machine's measured limits:
 *   - f32 FMA peak and bf16 dot-product peak (probe loops on every thread),
 *   - read bandwidth (a STREAM-like sum over 512 MiB),
 * and OpenBLAS cblas_sgemm on the same shapes as a baseline.
 *
 * Decode shapes rotate over enough copies of the weights (>= 384 MiB) that
 * they stream from DRAM as in a real decode step, not from the L3.
 * Prints a table and `BENCH <key> <value> <unit>` lines (../shared/CLI.md).
 * Quantized weights (Q8_0/Q4_K/Q6_K) at Qwen3-0.6B shapes: M=1 GB/s and % of
 * bandwidth, M=16/64 GFLOP/s next to bf16 weights (--quant runs only these).
 * Usage: bench_kernels [--threads N] [--quick] [--quant]   (--threads 1 times with the thread CPU
 * clock)
 */
#include "probe.h"
#include "tensor/kernels.h"
#include "tensor/quant.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#ifdef TP_HAVE_OPENBLAS
#include <cblas.h>
#endif

static int n_threads;
static tp_pool *pool;
static bool cpu_clock; /* --threads 1: time with the thread's CPU clock */

/* Wall clock, or with one thread the thread's CPU time: on a shared box the
 * CPU time of a single-threaded run does not count the time slices other
 * processes take, so its ratios to the (equally measured) limits stay fair. */
static double now(void) {
    if (cpu_clock) {
        struct timespec ts;
        clock_gettime(CLOCK_THREAD_CPUTIME_ID, &ts);
        return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
    }
    return tp_now();
}

/* Median of the repetitions: other work on the machine (a shared 2-core box)
 * shows up as outliers on both sides of a best-of figure. */
static int cmp_double(const void *a, const void *b) {
    double x = *(const double *)a, y = *(const double *)b;
    return x < y ? -1 : x > y;
}

#define MAX_REPS 400

static double median_of(double *t, size_t n) {
    qsort(t, n, sizeof *t, cmp_double);
    return n % 2 ? t[n / 2] : 0.5 * (t[n / 2 - 1] + t[n / 2]);
}

/* ---- probes, run on every thread at once ---- */

typedef struct probe_ctx {
    int kind; /* 0 fma f32, 1 dp bf16, 2 read */
    long iters;
    const float *buf;
    size_t chunk;
    double sink;
} probe_ctx;

static void probe_task(void *vctx, size_t task, int thread) {
    (void)thread;
    probe_ctx *c = vctx;
    double r;
    if (c->kind == 0)
        r = probe_fma_f32(c->iters);
    else if (c->kind == 1)
        r = probe_dp_bf16(c->iters);
    else
        r = probe_read(c->buf + task * c->chunk, c->chunk);
    if (r == 12345.678)
        c->sink += r; /* practically never: keeps the result observable */
}

static double peak_probe(int kind) {
    probe_ctx c = {kind, 2000000, NULL, 0, 0};
    size_t tasks = (size_t)n_threads * 8;
    tp_pool_run(pool, tasks, probe_task, &c); /* warm up, clocks up */
    double best = 0;
    for (int rep = 0; rep < 3; rep++) {
        double t0 = now();
        tp_pool_run(pool, tasks, probe_task, &c);
        double t = now() - t0;
        double flops = (double)tasks * (double)c.iters * 12.0 * (kind == 0 ? 32.0 : 64.0);
        double g = flops / t / 1e9;
        best = g > best ? g : best;
    }
    return best;
}

/* Read bandwidth over `mib` MiB (far above the L3), median of `reps`. */
static double bandwidth_probe(size_t mib, int reps) {
    size_t n = mib << 20 >> 2;
    float *buf = tp_aligned_alloc(n, sizeof(float));
    if (!buf)
        return 0;
    for (size_t i = 0; i < n; i++)
        buf[i] = 1.0f;
    probe_ctx c = {2, 0, buf, (size_t)1 << 20, 0}; /* 4 MiB per task */
    size_t tasks = n / c.chunk;
    double times[16];
    if (reps > 16)
        reps = 16;
    tp_pool_run(pool, tasks, probe_task, &c);
    for (int rep = 0; rep < reps; rep++) {
        double t0 = now();
        tp_pool_run(pool, tasks, probe_task, &c);
        times[rep] = now() - t0;
    }
    double t = median_of(times, (size_t)reps);
    tp_aligned_free(buf);
    return (double)n * 4.0 / t / 1e9;
}

/* ---- GEMM timing ---- */

typedef struct wset {
    tp_dtype dtype;
    size_t K, N, copies;
    void *w; /* copies x (N, K) */
} wset;

/* Quantized weights: one copy quantized from the same pseudo-random values,
 * replicated (quantizing hundreds of MiB would dominate the run). */
static bool make_qwset(wset *s, tp_dtype dt, size_t K, size_t N, size_t min_bytes) {
    size_t one;
    if (!tp_tensor_bytes(dt, N, K, &one))
        return false;
    s->dtype = dt;
    s->K = K;
    s->N = N;
    s->copies = min_bytes > one ? (min_bytes + one - 1) / one : 1;
    s->w = tp_aligned_alloc(s->copies, one);
    float *f = tp_aligned_alloc(K * N, sizeof(float));
    if (!s->w || !f) {
        tp_aligned_free(f);
        return false;
    }
    uint32_t st = 12345;
    for (size_t i = 0; i < K * N; i++) {
        st = st * 1664525u + 1013904223u;
        f[i] = ((float)(st >> 8) / 16777216.0f - 0.5f) * 0.1f;
    }
    tp_status rc = tp_quantize_tensor(pool, dt, f, N, K, s->w, NULL);
    tp_aligned_free(f);
    for (size_t c = 1; c < s->copies; c++)
        memcpy((char *)s->w + c * one, s->w, one);
    return rc == TP_OK;
}

static size_t wset_bytes(const wset *s) {
    size_t b = 0;
    tp_tensor_bytes(s->dtype, s->N, s->K, &b);
    return b;
}

static bool make_wset(wset *s, tp_dtype dt, size_t K, size_t N, size_t min_bytes) {
    if (tp_dtype_is_quant(dt))
        return make_qwset(s, dt, K, N, min_bytes);
    size_t es = tp_dtype_size(dt), one = K * N * es;
    s->dtype = dt;
    s->K = K;
    s->N = N;
    s->copies = min_bytes > one ? (min_bytes + one - 1) / one : 1;
    s->w = tp_aligned_alloc(s->copies * K * N, es);
    if (!s->w)
        return false;
    /* random-ish values; bf16 as the rounded f32 pattern */
    uint32_t st = 12345;
    for (size_t i = 0; i < s->copies * K * N; i++) {
        st = st * 1664525u + 1013904223u;
        float v = ((float)(st >> 8) / 16777216.0f - 0.5f) * 0.1f;
        if (dt == TP_DTYPE_F32)
            ((float *)s->w)[i] = v;
        else
            ((uint16_t *)s->w)[i] = tp_f32_to_bf16(v);
    }
    return true;
}

static double time_matmul(const wset *s, const float *x, float *y, size_t M, tp_compute cm,
                          double min_time) {
    size_t one = wset_bytes(s);
    tp_linear l = {s->w, s->dtype, (int64_t)s->N, (int64_t)s->K, NULL, NULL};
    tp_matmul(pool, &l, x, s->K, y, s->N, M, cm); /* warm up */
    double times[MAX_REPS], total = 0;
    size_t rep = 0;
    while ((total < min_time || rep < 3) && rep < MAX_REPS) {
        l.w = (const char *)s->w + ((rep + 1) % s->copies) * one;
        double t0 = now();
        tp_matmul(pool, &l, x, s->K, y, s->N, M, cm);
        times[rep] = now() - t0;
        total += times[rep++];
    }
    return median_of(times, rep);
}

#ifdef TP_HAVE_OPENBLAS
static double time_sgemm(const float *w, const float *x, float *y, size_t M, size_t K, size_t N,
                         double min_time) {
    double times[MAX_REPS], total = 0;
    size_t rep = 0;
    cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, (int)M, (int)N, (int)K, 1.0f, x, (int)K, w,
                (int)K, 0.0f, y, (int)N);
    while ((total < min_time || rep < 3) && rep < MAX_REPS) {
        double t0 = now();
        cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, (int)M, (int)N, (int)K, 1.0f, x,
                    (int)K, w, (int)K, 0.0f, y, (int)N);
        times[rep] = now() - t0;
        total += times[rep++];
    }
    return median_of(times, rep);
}
#endif

typedef struct kn {
    size_t K, N;
    const char *name;
} kn;

/* Quantized weights (Qwen3-0.6B projection shapes, n_out x n_in): M = 1 GEMV as
 * GB/s of weights streamed from DRAM and % of the read bandwidth measured next
 * to it; M = 16 and 64 as GFLOP/s next to bf16 weights in the same run. */
static void quant_section(bool has512, bool has_bf16, double bw) {
    kn qs[] = {{1024, 2048, "2048x1024"},
               {2048, 1024, "1024x2048"},
               {1024, 3072, "3072x1024"},
               {3072, 1024, "1024x3072"}};
    tp_dtype qt[3] = {TP_DTYPE_Q8_0, TP_DTYPE_Q4_K, TP_DTYPE_Q6_K};
    const char *qn[3] = {"q8_0", "q4_k", "q6_k"};
    size_t stream_bytes = (size_t)384 << 20;
    printf("\nquantized weights (n_out x n_in; M=1: GB/s of weights from DRAM, %% of read "
           "bandwidth; M=16/64: GFLOP/s)\n");
    printf("  %-10s %-5s | %8s %5s | %9s %9s\n", "shape", "type", "M=1 GB/s", "%bw", "M=16 GF/s",
           "M=64 GF/s");
    for (size_t s = 0; s < sizeof qs / sizeof qs[0]; s++) {
        size_t K = qs[s].K, N = qs[s].N;
        double bw_here = has512 ? bandwidth_probe(256, 5) : 0;
        if (bw_here > 0)
            bw = bw_here;
        printf("  (read bandwidth measured now: %.1f GB/s)\n", bw);
        float *x = tp_aligned_alloc(64 * K, 4), *y = tp_aligned_alloc(64 * N, 4);
        for (size_t i = 0; i < 64 * K; i++)
            x[i] = (float)((i * 7919) % 1000) / 1000.0f - 0.5f;
        for (int t = -1; t < 3; t++) {
            tp_dtype dt = t < 0 ? TP_DTYPE_BF16 : qt[t];
            const char *name = t < 0 ? "bf16" : qn[t];
            wset w;
            if (!make_wset(&w, dt, K, N, stream_bytes)) {
                fprintf(stderr, "out of memory for %s\n", qs[s].name);
                exit(1);
            }
            double bytes = (double)wset_bytes(&w);
            tp_compute cm = t < 0 && has_bf16 ? TP_COMPUTE_BF16 : TP_COMPUTE_F32;
            double t1 = time_matmul(&w, x, y, 1, cm, 0.12);
            double g16 = 2.0 * 16 * K * N / time_matmul(&w, x, y, 16, cm, 0.12) / 1e9;
            double g64 = 2.0 * 64 * K * N / time_matmul(&w, x, y, 64, cm, 0.12) / 1e9;
            double gbs = bytes / t1 / 1e9;
            printf("  %-10s %-5s | %8.1f %4.0f%% | %9.1f %9.1f\n", qs[s].name, name, gbs,
                   bw > 0 ? 100 * gbs / bw : 0, g16, g64);
            printf("BENCH gemm.quant.%s.%s.m1 %.1f GB/s\n", qs[s].name, name, gbs);
            if (bw > 0)
                printf("BENCH gemm.quant.%s.%s.m1.pct_bw %.1f %%\n", qs[s].name, name,
                       100 * gbs / bw);
            printf("BENCH gemm.quant.%s.%s.m16 %.1f GFLOP/s\n", qs[s].name, name, g16);
            printf("BENCH gemm.quant.%s.%s.m64 %.1f GFLOP/s\n", qs[s].name, name, g64);
            tp_aligned_free(w.w);
        }
        tp_aligned_free(x);
        tp_aligned_free(y);
    }
}

int main(int argc, char **argv) {
    n_threads = tp_num_cores();
    bool quick = false, only_quant = false;
    for (int i = 1; i < argc; i++) {
        if (!strcmp(argv[i], "--threads") && i + 1 < argc)
            n_threads = atoi(argv[++i]);
        else if (!strcmp(argv[i], "--quick"))
            quick = true;
        else if (!strcmp(argv[i], "--quant"))
            only_quant = true;
        else {
            fprintf(stderr, "usage: %s [--threads N] [--quick] [--quant]\n", argv[0]);
            return 2;
        }
    }
    if (n_threads < 1)
        n_threads = 1;
    cpu_clock = n_threads == 1;
    tp_error err = {0};
    pool = tp_pool_create(n_threads, &err);
    if (!pool) {
        fprintf(stderr, "bench_kernels: %s\n", err.message);
        return 1;
    }
    tp_cpu_features f = tp_cpu_detect();
    bool has512 = f.avx512f, has_bf16 = f.avx512_bf16;
    printf("bench_kernels: isa %s, %d threads, bf16 dot products: %s\n", tp_isa_name(tp_get_isa()),
           n_threads, has_bf16 ? "yes" : "no");
#ifdef TP_HAVE_OPENBLAS
    openblas_set_num_threads(n_threads);
#endif

    if (only_quant) {
        quant_section(has512, has_bf16, 0);
        tp_pool_destroy(pool);
        return 0;
    }
    double peak_f32 = has512 ? peak_probe(0) : 0, peak_bf16 = has_bf16 ? peak_probe(1) : 0;
    double bw = has512 ? bandwidth_probe(512, 5) : 0;
    printf("\nmachine limits (%d threads)\n", n_threads);
    printf("  f32 FMA peak           %8.1f GFLOP/s\n", peak_f32);
    printf("  bf16 dot-product peak  %8.1f GFLOP/s\n", peak_bf16);
    printf("  read bandwidth         %8.1f GB/s\n", bw);
    printf("BENCH probe.fma_peak_f32 %.1f GFLOP/s\n", peak_f32);
    printf("BENCH probe.dp_peak_bf16 %.1f GFLOP/s\n", peak_bf16);
    printf("BENCH probe.read_bw %.1f GB/s\n", bw);

    /* ---- prefill-like ---- */
    kn pre[] = {{768, 1152, "768x1152"},   {768, 2304, "768x2304"},
                {1024, 3072, "1024x3072"}, {1152, 6912, "1152x6912"},
                {3072, 1024, "3072x1024"}, {1024, 151936, "1024x151936"}};
    size_t pre_m[] = {512, 2048, 4096};
    size_t n_pre = quick ? 3 : sizeof pre / sizeof pre[0];
    size_t n_pre_m = quick ? 1 : 3;
    printf("\nprefill GEMM (GFLOP/s; %% of the peak of its precision; OpenBLAS sgemm f32)\n");
    printf("  %-12s %5s | %9s %5s | %9s %5s | %9s %5s | %9s | %s\n", "KxN", "M", "f32w/f32", "%pk",
           "bf16w/f32", "%pk", "bf16w/bf16", "%pk", "openblas", "f32w vs blas");
    for (size_t s = 0; s < n_pre; s++) {
        size_t K = pre[s].K, N = pre[s].N;
        wset w32, w16;
        if (!make_wset(&w32, TP_DTYPE_F32, K, N, 0) || !make_wset(&w16, TP_DTYPE_BF16, K, N, 0)) {
            fprintf(stderr, "out of memory for %s\n", pre[s].name);
            return 1;
        }
        for (size_t mi = 0; mi < n_pre_m; mi++) {
            size_t M = pre_m[mi];
            if (N > 100000 && M > 512)
                continue; /* the LM-head shape once, at M=512 */
            float *x = tp_aligned_alloc(M * K, 4), *y = tp_aligned_alloc(M * N, 4);
            if (!x || !y) {
                fprintf(stderr, "out of memory\n");
                return 1;
            }
            for (size_t i = 0; i < M * K; i++)
                x[i] = (float)((i * 7919) % 1000) / 1000.0f - 0.5f;
            double flops = 2.0 * (double)M * (double)K * (double)N;
            double mt = N > 100000 ? 0.0 : 0.15;
            double g1 = flops / time_matmul(&w32, x, y, M, TP_COMPUTE_F32, mt) / 1e9;
            double g2 = flops / time_matmul(&w16, x, y, M, TP_COMPUTE_F32, mt) / 1e9;
            double g3 =
                has_bf16 ? flops / time_matmul(&w16, x, y, M, TP_COMPUTE_BF16, mt) / 1e9 : 0;
            double gb = 0;
#ifdef TP_HAVE_OPENBLAS
            gb = flops / time_sgemm(w32.w, x, y, M, K, N, mt) / 1e9;
#endif
            printf("  %-12s %5zu | %9.1f %4.0f%% | %9.1f %4.0f%% | %9.1f %4.0f%% | %9.1f | %.2fx\n",
                   pre[s].name, M, g1, 100 * g1 / peak_f32, g2, 100 * g2 / peak_f32, g3,
                   peak_bf16 > 0 ? 100 * g3 / peak_bf16 : 0, gb, gb > 0 ? g1 / gb : 0);
            printf("BENCH gemm.prefill.%s.m%zu.f32w_f32 %.1f GFLOP/s\n", pre[s].name, M, g1);
            printf("BENCH gemm.prefill.%s.m%zu.f32w_f32.pct_peak %.1f %%\n", pre[s].name, M,
                   100 * g1 / peak_f32);
            printf("BENCH gemm.prefill.%s.m%zu.bf16w_f32 %.1f GFLOP/s\n", pre[s].name, M, g2);
            printf("BENCH gemm.prefill.%s.m%zu.bf16w_f32.pct_peak %.1f %%\n", pre[s].name, M,
                   100 * g2 / peak_f32);
            if (has_bf16) {
                printf("BENCH gemm.prefill.%s.m%zu.bf16w_bf16 %.1f GFLOP/s\n", pre[s].name, M, g3);
                printf("BENCH gemm.prefill.%s.m%zu.bf16w_bf16.pct_peak %.1f %%\n", pre[s].name, M,
                       100 * g3 / peak_bf16);
            }
            if (gb > 0)
                printf("BENCH gemm.prefill.%s.m%zu.openblas_sgemm %.1f GFLOP/s\n", pre[s].name, M,
                       gb);
            tp_aligned_free(x);
            tp_aligned_free(y);
        }
        tp_aligned_free(w32.w);
        tp_aligned_free(w16.w);
    }

    /* ---- decode-like: weights stream from DRAM ---- */
    kn dec[] = {{1024, 3072, "1024x3072"},
                {3072, 1024, "3072x1024"},
                {1152, 6912, "1152x6912"},
                {768, 1152, "768x1152"}};
    size_t dec_m[] = {1, 4, 16, 32};
    size_t n_dec = quick ? 2 : sizeof dec / sizeof dec[0];
    size_t stream_bytes = (size_t)384 << 20;
    printf("\ndecode GEMM, weights streamed from DRAM (GB/s of weights; %% of read bandwidth; "
           "GFLOP/s)\n");
    printf("  %-10s %3s | %8s %5s %8s | %8s %5s %8s | %8s %5s %8s | %8s\n", "KxN", "M", "f32w GB/s",
           "%bw", "GFLOP/s", "bf16w", "%bw", "GFLOP/s", "bf16w/bf16", "%bw", "GFLOP/s",
           "blas GF/s");
    for (size_t s = 0; s < n_dec; s++) {
        size_t K = dec[s].K, N = dec[s].N;
        wset w32, w16;
        if (!make_wset(&w32, TP_DTYPE_F32, K, N, stream_bytes) ||
            !make_wset(&w16, TP_DTYPE_BF16, K, N, stream_bytes)) {
            fprintf(stderr, "out of memory for %s\n", dec[s].name);
            return 1;
        }
        /* the limit measured next to this shape's runs (the box is shared) */
        double bw_here = has512 ? bandwidth_probe(256, 5) : 0;
        if (bw_here > 0)
            bw = bw_here;
        printf("  (read bandwidth measured now: %.1f GB/s)\n", bw);
        for (size_t mi = 0; mi < 4; mi++) {
            size_t M = dec_m[mi];
            float *x = tp_aligned_alloc(M * K, 4), *y = tp_aligned_alloc(M * N, 4);
            for (size_t i = 0; i < M * K; i++)
                x[i] = (float)((i * 7919) % 1000) / 1000.0f - 0.5f;
            double flops = 2.0 * (double)M * (double)K * (double)N;
            double b32 = (double)K * N * 4, b16 = (double)K * N * 2;
            double t1 = time_matmul(&w32, x, y, M, TP_COMPUTE_F32, 0.12);
            double t2 = time_matmul(&w16, x, y, M, TP_COMPUTE_F32, 0.12);
            double t3 = has_bf16 ? time_matmul(&w16, x, y, M, TP_COMPUTE_BF16, 0.12) : 1e30;
            double gb = 0;
#ifdef TP_HAVE_OPENBLAS
            gb = flops / time_sgemm(w32.w, x, y, M, K, N, 0.1) / 1e9; /* L3-resident: one copy */
#endif
            printf("  %-10s %3zu | %8.1f %4.0f%% %8.1f | %8.1f %4.0f%% %8.1f | %8.1f %4.0f%% %8.1f "
                   "| %8.1f\n",
                   dec[s].name, M, b32 / t1 / 1e9, 100 * b32 / t1 / 1e9 / bw, flops / t1 / 1e9,
                   b16 / t2 / 1e9, 100 * b16 / t2 / 1e9 / bw, flops / t2 / 1e9, b16 / t3 / 1e9,
                   100 * b16 / t3 / 1e9 / bw, flops / t3 / 1e9, gb);
            printf("BENCH gemm.decode.%s.m%zu.f32w_f32 %.1f GFLOP/s\n", dec[s].name, M,
                   flops / t1 / 1e9);
            printf("BENCH gemm.decode.%s.m%zu.read_bw %.1f GB/s\n", dec[s].name, M, bw);
            printf("BENCH gemm.decode.%s.m%zu.bf16w_f32 %.1f GFLOP/s\n", dec[s].name, M,
                   flops / t2 / 1e9);
            printf("BENCH gemm.decode.%s.m%zu.bf16w_f32.bw %.1f GB/s\n", dec[s].name, M,
                   b16 / t2 / 1e9);
            printf("BENCH gemm.decode.%s.m%zu.bf16w_f32.pct_bw %.1f %%\n", dec[s].name, M,
                   100 * b16 / t2 / 1e9 / bw);
            if (has_bf16) {
                printf("BENCH gemm.decode.%s.m%zu.bf16w_bf16 %.1f GFLOP/s\n", dec[s].name, M,
                       flops / t3 / 1e9);
                printf("BENCH gemm.decode.%s.m%zu.bf16w_bf16.pct_bw %.1f %%\n", dec[s].name, M,
                       100 * b16 / t3 / 1e9 / bw);
            }
            tp_aligned_free(x);
            tp_aligned_free(y);
        }
        tp_aligned_free(w32.w);
        tp_aligned_free(w16.w);
    }
    quant_section(has512, has_bf16, bw);
    /* ---- attention (one sequence; keys in blocks of 16 rows) ---- */
    struct {
        const char *name;
        int T, n_q, H, Hkv, d;
        bool causal;
    } at[] = {{"qwen3-like.prefill512", 512, 512, 16, 8, 128, true},
              {"modernbert-like.enc512", 512, 512, 12, 12, 64, false},
              {"qwen3-like.decode2048", 2048, 1, 16, 8, 128, true}};
    printf("\nattention (online softmax; GFLOP/s counts 4 d flops per visible query-key pair)\n");
    for (size_t a = 0; a < sizeof at / sizeof at[0]; a++) {
        int T = at[a].T, nq = at[a].n_q, H = at[a].H, Hkv = at[a].Hkv, d = at[a].d, bs = 16;
        size_t kvd = (size_t)Hkv * d, qd = (size_t)H * d;
        float *q = tp_aligned_alloc((size_t)nq * qd, 4), *o = tp_aligned_alloc((size_t)nq * qd, 4);
        float *kv = tp_aligned_alloc((size_t)T * kvd * 2, 4);
        const float **kb = malloc(sizeof(float *) * (size_t)(T / bs)),
                    **vb = malloc(sizeof(float *) * (size_t)(T / bs));
        if (!q || !o || !kv || !kb || !vb) {
            fprintf(stderr, "out of memory\n");
            return 1;
        }
        for (size_t i = 0; i < (size_t)nq * qd; i++)
            q[i] = (float)((i * 31) % 97) / 97.0f - 0.5f;
        for (size_t i = 0; i < (size_t)T * kvd * 2; i++)
            kv[i] = (float)((i * 17) % 89) / 89.0f - 0.5f;
        for (int b = 0; b < T / bs; b++) {
            kb[b] = kv + (size_t)b * bs * kvd;
            vb[b] = kv + (size_t)T * kvd + (size_t)b * bs * kvd;
        }
        tp_attn_seq sq = {q, qd, o, qd, nq, T - nq, T, kb, vb, bs, kvd};
        tp_attn_params ap = {H, Hkv, d, 1.0f / sqrtf((float)d), at[a].causal, -1, -1, 0.0f};
        tp_attention(pool, &sq, 1, &ap);
        double times[MAX_REPS], total = 0;
        size_t rep = 0;
        while ((total < 0.3 || rep < 3) && rep < MAX_REPS) {
            double t0 = now();
            tp_attention(pool, &sq, 1, &ap);
            times[rep] = now() - t0;
            total += times[rep++];
        }
        double t = median_of(times, rep);
        double pairs =
            at[a].causal ? (nq == T ? (double)T * (T + 1) / 2 : (double)nq * T) : (double)nq * T;
        double gf = 4.0 * d * pairs * H / t / 1e9;
        printf("  %-26s %8.3f ms  %7.1f GFLOP/s\n", at[a].name, t * 1e3, gf);
        printf("BENCH attention.%s %.1f GFLOP/s\n", at[a].name, gf);
        tp_aligned_free(q);
        tp_aligned_free(o);
        tp_aligned_free(kv);
        free(kb);
        free(vb);
    }
    tp_pool_destroy(pool);
    return 0;
}
