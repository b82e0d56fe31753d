/* probe.h — machine-limit probes of bench_kernels (probe_avx512.c). */
#ifndef TP_BENCH_PROBE_H
#define TP_BENCH_PROBE_H

#include <stddef.h>

/* iters x 12 FMAs (16 lanes) / VDPBF16PS (32 pairs); the return value only
 * keeps the compiler from dropping the loop. */
double probe_fma_f32(long iters);
double probe_dp_bf16(long iters);
/* Sums n floats (64-byte aligned, n a multiple of 64). */
double probe_read(const float *p, size_t n);

#endif
