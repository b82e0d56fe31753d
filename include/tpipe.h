/*
 * tpipe.h — the public API of tpipe, and nothing else public.
 *
 * tpipe runs Hugging Face transformer checkpoints on the CPU through four
 * pipelines (fill-mask, sentiment, zero-shot classification, text generation),
 * single and batched.
 *
 * Conventions (see ../shared/STYLE.md):
 *   - Opaque handles; functions are named tp_<object>_<verb>.
 *   - Every params struct has tp_X_default_params(); passing NULL means defaults.
 *   - Every fallible call returns tp_status and fills an optional tp_error *err
 *     (may be NULL) with the status, the failing item index and a message.
 *   - Batch calls return one result per input item, in order, each with its own
 *     status; the call's own status is only for batch-level failures. An empty
 *     batch is TP_OK with zero results.
 *   - Results are owned by the caller and freed with the documented tp_*_free.
 *   - The library never prints, exits or aborts; logging goes to a callback
 *     (silent by default).
 *   - A loaded model is read-only and may be shared across threads; each call
 *     uses its own scratch state. The log callback setter is not thread-safe
 *     with respect to concurrent logging and should be called at start-up.
 */
#ifndef TPIPE_H
#define TPIPE_H

#include <stddef.h>
#include <stdint.h>
#include <stdbool.h>

#ifdef __cplusplus
extern "C" {
#endif

#define TPIPE_VERSION_MAJOR 0
#define TPIPE_VERSION_MINOR 1
#define TPIPE_VERSION_PATCH 0

/* ======================================================================== */
/* Core: status, errors, logging, CPU features                              */
/* ======================================================================== */

typedef enum tp_status {
    TP_OK = 0,
    TP_ERR_INVALID_ARGUMENT, /* a NULL or out-of-range argument                    */
    TP_ERR_OUT_OF_MEMORY,    /* an allocation failed or a size overflowed          */
    TP_ERR_IO,               /* a file could not be opened, read, mapped or written */
    TP_ERR_FORMAT,           /* a file is malformed (names the file and the field) */
    TP_ERR_UNSUPPORTED,      /* well-formed, but not supported by tpipe            */
    TP_ERR_NOT_FOUND,        /* a model, file, tensor or key does not exist        */
    TP_ERR_INPUT,            /* an input item is invalid (bad UTF-8, no mask, ...)  */
    TP_ERR_TOO_LONG,         /* an input is longer than the model's context        */
    TP_ERR_TEMPLATE,         /* a chat template failed to parse or raised          */
    TP_ERR_NETWORK,          /* a download failed                                  */
    TP_ERR_CANCELLED,        /* cancelled by a callback                            */
    TP_ERR_INTERNAL,         /* a bug in tpipe: please report it                   */
    TP_STATUS_COUNT
} tp_status;

#define TP_ERROR_MESSAGE_MAX 512

typedef struct tp_error {
    tp_status status;
    long item;                          /* failing item index in a batch, or -1 */
    char message[TP_ERROR_MESSAGE_MAX]; /* NUL-terminated, human-readable       */
} tp_error;

/* The name of a status, e.g. "TP_ERR_FORMAT". Never NULL. */
const char *tp_status_name(tp_status status);
/* Resets err to TP_OK, item -1, empty message. err may be NULL. */
void tp_error_clear(tp_error *err);

typedef enum tp_log_level {
    TP_LOG_DEBUG = 0,
    TP_LOG_INFO = 1,
    TP_LOG_WARN = 2,
    TP_LOG_ERROR = 3
} tp_log_level;

typedef void (*tp_log_fn)(tp_log_level level, const char *message, void *user);
/* Installs a log callback (NULL = silent, the default). Messages below min_level
 * are not formatted. Call once at start-up, before other threads use tpipe. */
void tp_set_log_callback(tp_log_fn fn, void *user, tp_log_level min_level);

/* CPU features detected at run time (cpuid + xgetbv). */
typedef struct tp_cpu_features {
    bool avx2;
    bool fma;
    bool f16c;
    bool avx512f;
    bool avx512bw;
    bool avx512vl;
    bool avx512dq;
    bool avx512_bf16;
    bool avx512_vnni;
} tp_cpu_features;

tp_cpu_features tp_cpu_detect(void);

typedef enum tp_isa {
    TP_ISA_SCALAR = 0, /* portable C reference kernels */
    TP_ISA_AVX2 = 1,   /* AVX2 + FMA + F16C            */
    TP_ISA_AVX512 = 2, /* AVX-512 F/BW/VL/DQ (+ BF16)  */
} tp_isa;

/* The kernel ISA level in use: the best the CPU supports, unless forced lower by
 * the environment variable TPIPE_ISA=scalar|avx2|avx512 (read once) or by
 * tp_set_isa(). tp_set_isa returns TP_ERR_UNSUPPORTED when the CPU lacks it.
 * Not thread-safe against concurrent inference: call it between calls. */
tp_isa tp_get_isa(void);
tp_status tp_set_isa(tp_isa isa, tp_error *err);
const char *tp_isa_name(tp_isa isa);

/* Number of online CPU cores (the default thread count). */
int tp_num_cores(void);

/* ==== MODULE SECTIONS BELOW: each module owns its marked section. ==== */

/* ---- io: model files, model resolution, model info (section: io) ---- */
/* ---- end io ---- */

/* ---- tokenizer (section: tokenizer) ---- */

/* A Hugging Face tokenizer (tokenizer.json + tokenizer_config.json). Immutable
 * once loaded: one handle may be used by many threads at once. */
typedef struct tp_tokenizer tp_tokenizer;

/* Loads the tokenizer of a model folder, or of a Hugging Face id ("org/name")
 * found in the local Hugging Face cache (HF_HUB_CACHE, else HF_HOME/hub, else
 * ~/.cache/huggingface/hub). Errors: TP_ERR_INVALID_ARGUMENT (NULL arguments),
 * TP_ERR_NOT_FOUND (no such folder / no tokenizer.json), TP_ERR_FORMAT
 * (malformed file; the message names file and field), TP_ERR_UNSUPPORTED (a
 * component type tpipe does not implement; named), TP_ERR_OUT_OF_MEMORY.
 * On success *out owns the tokenizer: free it with tp_tokenizer_free. */
tp_status tp_tokenizer_load(const char *model, tp_tokenizer **out, tp_error *err);
void tp_tokenizer_free(tp_tokenizer *tok); /* NULL is a no-op */

/* One encoded text. All arrays have n entries and belong to the result. */
typedef struct tp_tokenization {
    size_t n;
    int32_t *ids;
    char **tokens;     /* vocabulary strings of ids (NUL-terminated) */
    uint32_t *offsets; /* (n, 2): byte [start, end) into the text; (0, 0) for added specials */
    tp_status status;  /* per item in a batch */
    char *error;       /* NULL, or the item's message when status != TP_OK */
} tp_tokenization;

/* Frees the arrays of r (not r itself); r is left zeroed. NULL is a no-op. */
void tp_tokenization_free(tp_tokenization *r);

/* Encodes a NUL-terminated UTF-8 text; add_special_tokens runs the
 * tokenizer's post-processor (e.g. ModernBERT's [CLS] ... [SEP], Gemma3's <bos>).
 * Errors: TP_ERR_INVALID_ARGUMENT, TP_ERR_INPUT (invalid UTF-8: the message gives
 * the byte offset), TP_ERR_OUT_OF_MEMORY. The caller frees *out with
 * tp_tokenization_free (also after an error: it is then empty). */
tp_status tp_tokenizer_encode(const tp_tokenizer *tok, const char *text, bool add_special_tokens,
                              tp_tokenization *out, tp_error *err);

/* Encodes n texts on n_threads threads (<= 0: all cores). out[i] (caller's
 * array of n) gets item i with its own status/error; free each with
 * tp_tokenization_free. Returns TP_OK unless the batch itself failed
 * (TP_ERR_INVALID_ARGUMENT, TP_ERR_OUT_OF_MEMORY). n == 0 is TP_OK. */
tp_status tp_tokenizer_encode_batch(const tp_tokenizer *tok, const char *const *texts, size_t n,
                                    bool add_special_tokens, int n_threads, tp_tokenization *out,
                                    tp_error *err);

/* Decodes ids to text as Hugging Face's tokenizer.decode does (skipping special
 * tokens when asked; clean_up_tokenization_spaces as the tokenizer_config sets
 * it). *out is malloc'd, NUL-terminated: free it with free(). Errors:
 * TP_ERR_INVALID_ARGUMENT, TP_ERR_INPUT (an id outside the vocabulary),
 * TP_ERR_OUT_OF_MEMORY. */
tp_status tp_tokenizer_decode(const tp_tokenizer *tok, const int32_t *ids, size_t n,
                              bool skip_special_tokens, char **out, tp_error *err);

/* Number of ids (added tokens included). */
size_t tp_tokenizer_vocab_size(const tp_tokenizer *tok);

/* ---- end tokenizer ---- */

/* ---- chat templates (section: template) ---- */

/* A model's chat template (its Jinja chat_template, rendered as Python transformers
 * does) plus its special tokens. Immutable once loaded: render from any thread. */
typedef struct tp_chat_template tp_chat_template;

typedef struct tp_chat_template_params {
    bool add_generation_prompt; /* default true                                         */
    int enable_thinking;        /* -1 (default): not passed; 0: false; 1: true           */
    bool has_now;               /* strftime_now clock: false (default) = local time now; */
    int64_t now;                /*   true = this Unix time, formatted as UTC             */
} tp_chat_template_params;

tp_chat_template_params tp_chat_template_default_params(void);

/* Loads the chat template of a model folder: chat_template.jinja when present, else
 * "chat_template" of tokenizer_config.json (a list of {name, template} uses "default");
 * special tokens from tokenizer_config.json. No weights needed.
 * Returns TP_ERR_NOT_FOUND (no template), TP_ERR_IO, TP_ERR_FORMAT (bad config JSON),
 * TP_ERR_TEMPLATE (the template does not compile), TP_ERR_OUT_OF_MEMORY. */
tp_status tp_chat_template_load(const char *model_dir, tp_chat_template **out, tp_error *err);

/* Renders one input: `json` is a JSON object with "messages" (a list), optionally "tools"
 * (absent: the template sees tools = None) and any other top-level fields, which become
 * template variables (a field "add_generation_prompt" or "enable_thinking" in the object
 * overrides params). *out is malloc'd (free with tp_chat_template_string_free).
 * Returns TP_ERR_INPUT (bad JSON, no messages list), TP_ERR_TEMPLATE (the template
 * raised or failed; the message names the template line), TP_ERR_OUT_OF_MEMORY. */
tp_status tp_chat_template_render(const tp_chat_template *ct, const char *json,
                                  const tp_chat_template_params *params, char **out,
                                  tp_error *err);
void tp_chat_template_string_free(char *s);
void tp_chat_template_free(tp_chat_template *ct);

/* ---- end template ---- */

/* ---- encoder pipelines (section: encoder) ---- */
/* ---- end encoder ---- */

/* ---- text generation (section: generate) ---- */
/* ---- end generate ---- */

#ifdef __cplusplus
}
#endif

#endif /* TPIPE_H */
