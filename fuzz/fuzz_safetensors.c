/*
 * fuzz_safetensors.c — the safetensors header parser (src/io/safetensors.c)
 * on arbitrary bytes, through tp_st_open_buffer (the same parser tp_st_open
 * uses on a mapped file).
 *
 * Invariants checked on every accepted file: each tensor's bytes lie inside
 * the input, its byte length is its element count times its dtype size, names
 * are sorted and found by tp_st_find, and reading every float tensor with
 * tp_st_to_f32 stays inside the buffer (AddressSanitizer sees the exact-size
 * input). A rejected file must come with a message.
 */
#include "fuzz_util.h"
#include "io/safetensors.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    tp_st_model *m = NULL;
    tp_error err;
    tp_error_clear(&err);
    tp_status st = tp_st_open_buffer(data, size, "fuzz.safetensors", &m, &err);
    fuzz_note("open", st, &err);
    if (st != TP_OK) {
        FUZZ_CHECK(m == NULL, "a failed open returned a model");
        FUZZ_CHECK(err.status == st && err.message[0], "status %s without a message",
                   tp_status_name(st));
        FUZZ_CHECK(st == TP_ERR_FORMAT || st == TP_ERR_UNSUPPORTED || st == TP_ERR_OUT_OF_MEMORY,
                   "unexpected status %s: %s", tp_status_name(st), err.message);
        return 0;
    }
    size_t n = tp_st_count(m);
    FUZZ_CHECK(tp_st_file_count(m) == 1, "one buffer, %zu files", tp_st_file_count(m));
    for (size_t i = 0; i < n; i++) {
        const tp_st_tensor *t = tp_st_at(m, i);
        const uint8_t *p = t->data;
        FUZZ_CHECK(p >= data + 8 && p <= data + size && t->n_bytes <= (size_t)(data + size - p),
                   "tensor %zu bytes outside the input", i);
        FUZZ_CHECK(t->n_dims >= 0 && t->n_dims <= TP_ST_MAX_DIMS, "n_dims %d", t->n_dims);
        int64_t elems = 1;
        for (int d = 0; d < t->n_dims; d++) {
            FUZZ_CHECK(t->shape[d] >= 0, "negative dim");
            elems *= t->shape[d];
        }
        FUZZ_CHECK(elems == t->n_elems, "n_elems %lld vs shape product %lld", (long long)t->n_elems,
                   (long long)elems);
        FUZZ_CHECK((uint64_t)t->n_bytes == (uint64_t)t->n_elems * tp_dtype_size(t->dtype),
                   "byte length does not match shape x dtype");
        FUZZ_CHECK(i == 0 || strcmp(tp_st_at(m, i - 1)->name, t->name) < 0, "names not sorted");
        FUZZ_CHECK(tp_st_find(m, t->name) == t, "tp_st_find misses '%s'", t->name);
        const tp_st_tensor *got = NULL;
        tp_status gs = tp_st_get(m, t->name, -1, NULL, &got, &err);
        if (gs == TP_OK && t->n_elems <= (1 << 20)) {
            float *f = NULL;
            if (tp_st_to_f32(got, &f, &err) == TP_OK)
                tp_free(f);
        }
    }
    FUZZ_CHECK(tp_st_find(m, "\x01 not a tensor name") == NULL, "found a name not in the file");
    tp_st_close(m);
    return 0;
}
