/*
 * quickstart.c — the README's C API example: batched fill-mask with per-item
 * results. Build: cc quickstart.c $(pkg-config --cflags --libs tpipe)
 * Run:   ./quickstart answerdotai/ModernBERT-base   (or a local model folder)
 */
#include <stdio.h>
#include <tpipe.h>

int main(int argc, char **argv) {
    const char *model_id = argc > 1 ? argv[1] : "answerdotai/ModernBERT-base";
    tp_error err;
    tp_model *model = NULL;
    if (tp_model_load(model_id, NULL, &model, &err) != TP_OK) {
        fprintf(stderr, "load failed: %s\n", err.message);
        return 2;
    }
    const char *texts[] = {
        "The capital of France is [MASK].",
        "This sentence has no mask token.", /* fails alone; the others still come back */
        "I drink a cup of [MASK] every morning.",
    };
    tp_fill_mask_result results[3];
    if (tp_fill_mask_predict_top_k_batch(model, texts, 3, 2, NULL, results, &err) != TP_OK) {
        fprintf(stderr, "batch failed: %s\n", err.message);
        tp_model_free(model);
        return 2;
    }
    for (size_t i = 0; i < 3; i++) {
        if (results[i].error.status != TP_OK) {
            printf("%zu: error: %s\n", i, results[i].error.message);
            continue;
        }
        for (size_t j = 0; j < results[i].n_masks * results[i].k; j++)
            printf("%zu: %-12s %.4g  %s\n", i, results[i].predictions[j].token_str,
                   results[i].predictions[j].score, results[i].predictions[j].sequence);
    }
    tp_fill_mask_result_free_all(results, 3);
    tp_model_free(model);
    return 0;
}
