/*
 * cpu.c — run-time CPU feature detection (cpuid + xgetbv, so that an OS that
 * does not save the AVX-512 state is treated as lacking AVX-512) and the global
 * kernel ISA level, which TPIPE_ISA or tp_set_isa can force lower.
 */
#include "core/core.h"

#include <stdlib.h>
#include <string.h>

#if defined(__x86_64__) || defined(__i386__)
#include <cpuid.h>

static uint64_t xgetbv0(void) {
    uint32_t lo, hi;
    __asm__ volatile("xgetbv" : "=a"(lo), "=d"(hi) : "c"(0));
    return ((uint64_t)hi << 32) | lo;
}
#endif

tp_cpu_features tp_cpu_detect(void) {
    tp_cpu_features f;
    memset(&f, 0, sizeof f);
#if defined(__x86_64__) || defined(__i386__)
    unsigned a, b, c, d;
    if (!__get_cpuid(1, &a, &b, &c, &d))
        return f;
    bool osxsave = (c >> 27) & 1;
    bool avx = (c >> 28) & 1;
    f.fma = (c >> 12) & 1;
    f.f16c = (c >> 29) & 1;
    if (!osxsave || !avx)
        return f;
    uint64_t xcr0 = xgetbv0();
    bool ymm_ok = (xcr0 & 0x6) == 0x6;
    bool zmm_ok = (xcr0 & 0xe6) == 0xe6;
    if (!ymm_ok) {
        f.fma = f.f16c = false;
        return f;
    }
    if (__get_cpuid_count(7, 0, &a, &b, &c, &d)) {
        f.avx2 = (b >> 5) & 1;
        if (zmm_ok) {
            f.avx512f = (b >> 16) & 1;
            f.avx512dq = (b >> 17) & 1;
            f.avx512bw = (b >> 30) & 1;
            f.avx512vl = (b >> 31) & 1;
            f.avx512_vnni = (c >> 11) & 1;
        }
    }
    if (zmm_ok && __get_cpuid_count(7, 1, &a, &b, &c, &d))
        f.avx512_bf16 = (a >> 5) & 1;
#endif
    return f;
}

static bool isa_supported(tp_isa isa, const tp_cpu_features *f) {
    switch (isa) {
    case TP_ISA_SCALAR:
        return true;
    case TP_ISA_AVX2:
        return f->avx2 && f->fma && f->f16c;
    case TP_ISA_AVX512:
        return f->avx512f && f->avx512bw && f->avx512vl && f->avx512dq && f->avx2 && f->fma &&
               f->f16c;
    }
    return false;
}

static int current_isa = -1;

static tp_isa best_isa(void) {
    tp_cpu_features f = tp_cpu_detect();
    tp_isa best = isa_supported(TP_ISA_AVX512, &f) ? TP_ISA_AVX512
                  : isa_supported(TP_ISA_AVX2, &f) ? TP_ISA_AVX2
                                                   : TP_ISA_SCALAR;
    const char *env = getenv("TPIPE_ISA");
    if (env && *env) {
        tp_isa want = best;
        if (strcmp(env, "scalar") == 0 || strcmp(env, "reference") == 0)
            want = TP_ISA_SCALAR;
        else if (strcmp(env, "avx2") == 0)
            want = TP_ISA_AVX2;
        else if (strcmp(env, "avx512") == 0)
            want = TP_ISA_AVX512;
        else
            tp_log(TP_LOG_WARN, "TPIPE_ISA=%s not understood (scalar|avx2|avx512); using %s", env,
                   tp_isa_name(best));
        if (want <= best)
            best = want;
        else
            tp_log(TP_LOG_WARN, "TPIPE_ISA=%s: CPU lacks it; using %s", env, tp_isa_name(best));
    }
    return best;
}

tp_isa tp_get_isa(void) {
    int v = __atomic_load_n(&current_isa, __ATOMIC_ACQUIRE);
    if (v < 0) {
        v = (int)best_isa();
        __atomic_store_n(&current_isa, v, __ATOMIC_RELEASE);
    }
    return (tp_isa)v;
}

tp_status tp_set_isa(tp_isa isa, tp_error *err) {
    tp_cpu_features f = tp_cpu_detect();
    if ((unsigned)isa > TP_ISA_AVX512)
        return tp_fail(err, TP_ERR_INVALID_ARGUMENT, "tp_set_isa: unknown ISA %d", (int)isa);
    if (!isa_supported(isa, &f))
        return tp_fail(err, TP_ERR_UNSUPPORTED, "tp_set_isa: this CPU does not support %s",
                       tp_isa_name(isa));
    __atomic_store_n(&current_isa, (int)isa, __ATOMIC_RELEASE);
    return TP_OK;
}

const char *tp_isa_name(tp_isa isa) {
    switch (isa) {
    case TP_ISA_SCALAR:
        return "scalar";
    case TP_ISA_AVX2:
        return "avx2";
    case TP_ISA_AVX512:
        return "avx512";
    }
    return "unknown";
}
