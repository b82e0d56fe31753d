/*
 * qgemm_avx512.c — quantized-weight GEMM at the AVX-512 level: the AVX2
 * integer-dot kernels (qgemm_avx2.c), which every AVX-512 CPU runs and which
 * give the reference bits.
 */
#include "tensor/kernels.h"

void tp_qgemm_avx512(const tp_qgemm_args *a, size_t m0, size_t m1, size_t n0, size_t n1) {
    tp_qgemm_avx2(a, m0, m1, n0, n1);
}
