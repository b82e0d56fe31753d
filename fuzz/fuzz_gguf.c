/*
 * fuzz_gguf.c — libFuzzer harness for the GGUF reader (src/io/gguf.c).
 *
 * Parses the input as a GGUF file from memory; when it is accepted, reads
 * every byte the reader hands out (tensor data, array strings, numbers), so a
 * reader that accepts a file whose offsets or lengths point outside it shows
 * up under ASan, then builds the Hugging Face view a model load uses
 * (tp_gguf_open_hf: metadata -> config, tensors -> HF-named table). Seeds:
 * fuzz/corpus/gguf/ (small writer-made files, incl. tiny Qwen3/Gemma3 models).
 */
#include "io/gguf.h"

#include <stddef.h>
#include <stdint.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    tp_gguf *g = NULL;
    tp_error err;
    if (tp_gguf_open_memory(data, size, "fuzz.gguf", &g, &err) != TP_OK)
        return 0;
    volatile unsigned sum = 0;
    for (size_t i = 0; i < tp_gguf_tensor_count(g); i++) {
        const tp_gguf_tensor *t = tp_gguf_tensor_at(g, i);
        const uint8_t *p = t->data;
        for (size_t k = 0; k < t->n_bytes; k++)
            sum += p[k];
    }
    for (size_t i = 0; i < tp_gguf_kv_count(g); i++) {
        const tp_gguf_kv *kv = tp_gguf_kv_at(g, i);
        if (kv->type != TP_GGUF_ARRAY)
            continue;
        for (uint64_t k = 0; k < kv->n; k++) {
            if (kv->arr_type == TP_GGUF_STRING) {
                size_t l;
                const char *s = tp_gguf_arr_str(kv, k, &l);
                for (size_t j = 0; j < l; j++)
                    sum += (unsigned char)s[j];
            } else {
                sum += (unsigned)(tp_gguf_arr_float(kv, k) != 0.0);
            }
        }
    }
    (void)sum;
    tp_json_doc cfg;
    tp_st_model *st = NULL;
    bool shifted;
    if (tp_gguf_open_hf(g, &cfg, &st, &shifted, &err) == TP_OK) {
        tp_st_close(st);
        tp_json_free(&cfg);
    }
    tp_gguf_close(g);
    return 0;
}
