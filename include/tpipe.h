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
 *
 * Threads (docs/RELIABILITY.md, "Concurrency"; tests/reliability/test_concurrency.c
 * checks it, also under ThreadSanitizer):
 *   - Thread-safe, and run in parallel: calls on different models; tokenizer
 *     calls (encode, encode_batch, decode) on one tp_tokenizer; renders of one
 *     tp_chat_template; tp_model_info_get, tp_model_resolve; loading and
 *     freeing different handles.
 *   - Thread-safe, taking turns: pipeline calls (fill-mask, sentiment,
 *     zero-shot, completion, chat; single or batch) on ONE tp_model from
 *     several threads. Each call holds the model's thread pool while it runs
 *     (a generation call renders and tokenizes its prompts before taking it),
 *     so the calls are serialised, and each gives bit for bit the result it
 *     gives alone. For parallel throughput use one batch call, or load the
 *     model once per thread (weights are mmap'd, so shared in memory).
 *   - Per call, never shared: params, options, inputs and result arrays are
 *     the caller's; a call reads its inputs and writes its own results only.
 *   - Not thread-safe: freeing a handle while another thread uses it;
 *     tp_set_isa and tp_set_log_callback while other threads run tpipe (call
 *     them at start-up). A generation stream callback runs on the calling
 *     thread while the call holds the model: it must not call into the same
 *     model (that would wait for itself).
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

/* What a checkpoint is, read from config.json and the safetensors headers only
 * (no weight is read). Strings are NUL-terminated and cut to fit. */
typedef struct tp_model_info {
    char architecture[128]; /* config architectures[0], e.g. "Qwen3ForCausalLM"        */
    char model_type[64];    /* e.g. "qwen3", "modernbert", "gemma3_text"; for a
                               Gemma3ForConditionalGeneration, text_config's type      */
    char dtype[32];         /* config torch_dtype (or dtype), e.g. "bfloat16"; when
                               absent, the torch name of weights_dtype                  */
    char weights_dtype[8];  /* the dtype holding most stored parameters: "F32", "BF16"..*/
    int64_t n_params;       /* elements of all stored tensors; a tied lm_head.weight
                               stored as a copy of the embedding is counted once       */
    int64_t context_length; /* max_position_embeddings                                  */
    int64_t vocab_size;     /* vocab_size                                               */
    int64_t hidden_size;    /* hidden_size                                              */
    int64_t n_layers;       /* num_hidden_layers                                        */
    int64_t n_tensors;      /* tensors stored                                           */
    int n_files;            /* safetensors files (1, or the number of shards)           */
    uint64_t weights_bytes; /* bytes of tensor data                                     */
} tp_model_info;

/* Fills *info for a local model folder or a Hugging Face id in the local cache
 * (HF_HUB_CACHE, else HF_HOME/hub, else ~/.cache/huggingface/hub; nothing is
 * downloaded), or a GGUF checkpoint (a .gguf file, or a folder holding
 * exactly one), described from its metadata and tensor infos (weights_dtype
 * may then be e.g. "Q4_K"). Errors: TP_ERR_INVALID_ARGUMENT (NULL arguments,
 * malformed id), TP_ERR_NOT_FOUND (no such folder or id, no config.json or
 * weights: says where it looked), TP_ERR_FORMAT (malformed config.json,
 * safetensors header or GGUF file: names the file and the key or tensor),
 * TP_ERR_UNSUPPORTED (a tensor dtype tpipe cannot read), TP_ERR_IO,
 * TP_ERR_OUT_OF_MEMORY. Thread-safe. */
tp_status tp_model_info_get(const char *id_or_path, tp_model_info *info, tp_error *err);

/* ---- end io ---- */

/* ---- net (section: net) ---- */

/* Which files tp_model_resolve makes available (a bit mask). */
/* config.json, generation_config.json (optional) */
#define TP_RESOLVE_CONFIG 1u
/* tokenizer.json, tokenizer_config.json, and the optional special_tokens_map.json,
 * chat_template.jinja */
#define TP_RESOLVE_TOKENIZER 2u
/* model.safetensors, else model.safetensors.index.json and every shard it lists */
#define TP_RESOLVE_WEIGHTS 4u
#define TP_RESOLVE_ALL 7u

/* Download progress: `file` is the repository path being fetched, done/total in
 * bytes (total 0 when unknown). Called from the calling thread, often; return
 * non-zero to cancel (tp_model_resolve then returns TP_ERR_CANCELLED). */
typedef int (*tp_download_progress_fn)(const char *file, uint64_t done, uint64_t total, void *user);

typedef struct tp_resolve_params {
    unsigned files;         /* TP_RESOLVE_* mask; default TP_RESOLVE_ALL                    */
    const char *revision;   /* branch, tag or commit; default: the id's "@rev", else "main" */
    const char *cache_dir;  /* default: $HF_HUB_CACHE, else $HF_HOME/hub, else
                               ~/.cache/huggingface/hub                                    */
    const char *endpoint;   /* default: $HF_ENDPOINT, else https://huggingface.co           */
    const char *token;      /* default: $HF_TOKEN, else the file $HF_TOKEN_PATH, else
                               $HF_HOME/token (HF_HOME default ~/.cache/huggingface)        */
    bool offline;           /* never touch the network (also when $HF_HUB_OFFLINE is 1)     */
    long connect_timeout_s; /* default 10                                                   */
    tp_download_progress_fn progress; /* NULL: none                                         */
    void *progress_user;
} tp_resolve_params;

tp_resolve_params tp_resolve_default_params(void);

/* Turns a model reference into a local folder holding the files asked for.
 * `id_or_path` is an existing folder (returned as is), or a Hugging Face id
 * "org/name" or "org/name@revision". An id is looked up in the Hugging Face
 * cache first (refs/<revision> -> snapshots/<commit>/); when files are missing
 * and the network is allowed, they are downloaded from
 * {endpoint}/{id}/resolve/{revision}/{file} into the same layout Python's
 * huggingface_hub uses (blobs/<etag>, snapshots/<commit>/<file> symlinks,
 * refs/<revision>), so both share one cache. Downloads resume from a
 * blobs/<etag>.incomplete file (HTTP Range) and are checked against the size
 * the server announced and, for LFS files, the sha256 in their ETag.
 * On success *path is the malloc'd snapshot folder (free with free()).
 * Errors: TP_ERR_INVALID_ARGUMENT (NULL arguments, malformed id),
 * TP_ERR_NOT_FOUND (no such folder; repo, revision or file missing on the hub,
 * named; offline and not in the cache), TP_ERR_NETWORK (host unreachable or
 * transfer failed, with curl's reason; 401/403: gated or private repository —
 * accept its licence on the model page and set HF_TOKEN; other HTTP errors),
 * TP_ERR_FORMAT (a download failed its size/sha256 check and was deleted; a
 * malformed model.safetensors.index.json), TP_ERR_IO (the cache is not
 * writable), TP_ERR_CANCELLED (the progress callback asked),
 * TP_ERR_OUT_OF_MEMORY. Built only with libcurl (the net module).
 * Thread-safe; concurrent processes fetching the same file take turns (a lock
 * on the .incomplete file). */
tp_status tp_model_resolve(const char *id_or_path, const tp_resolve_params *params, char **path,
                           tp_error *err);

/* ---- end net ---- */

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
                                  const tp_chat_template_params *params, char **out, tp_error *err);
void tp_chat_template_string_free(char *s);
void tp_chat_template_free(tp_chat_template *ct);

/* ---- end template ---- */

/* ---- encoder pipelines (section: encoder) ---- */

/* A loaded model: weights (mmap'd, zero-copy), config, tokenizer and the
 * family's network. Immutable after load; one handle may be shared by several
 * threads: calls on one model take turns on its thread pool (each call has
 * its own scratch memory, so results never depend on other calls). */
typedef struct tp_model tp_model;

typedef enum tp_precision {
    TP_PRECISION_F32 = 0, /* f32 activations and accumulation (what the golden tests check) */
    TP_PRECISION_BF16 = 1 /* activations rounded to bf16, AVX512_BF16 dot products, f32
                             accumulation (weights stored in f32/f16 get a private bf16 copy
                             at load); on CPUs without AVX512_BF16 falls back to f32 with a
                             logged notice */
} tp_precision;

typedef struct tp_model_params {
    int n_threads;           /* inference threads; <= 0: all cores (default 0)              */
    tp_precision precision;  /* default TP_PRECISION_F32                                     */
    size_t max_batch_tokens; /* tokens per micro-batch; 0 (default): the most that fits in
                                memory_budget for this model, at most 2048 (larger
                                micro-batches measured no faster); a longer single
                                input still runs alone when it fits memory_budget          */
    size_t memory_budget;    /* bytes of scratch + head outputs a micro-batch may use;
                                0 (default): 256 MiB. Peak memory of a batch call is bounded
                                by this (plus the inputs and results), whatever its size.   */
} tp_model_params;

tp_model_params tp_model_default_params(void);

/* Loads a model from a local folder, or from a Hugging Face id ("org/name")
 * found in the local Hugging Face cache (HF_HUB_CACHE, else HF_HOME/hub, else
 * ~/.cache/huggingface/hub). Reads config.json, the safetensors weights,
 * tokenizer.json (+ tokenizer_config.json) and, when present,
 * generation_config.json. A Qwen3 or Gemma3 GGUF checkpoint (a .gguf file, or a
 * folder holding exactly one .gguf and no safetensors) loads too: F32, F16,
 * BF16, Q8_0, Q4_K and Q6_K weights, hyper-parameters from its metadata, the
 * tokenizer from tokenizer.json beside it or else from its tokenizer.ggml.*
 * keys, the chat template from tokenizer.chat_template (docs/gguf.md).
 * params NULL = defaults.
 * Errors: TP_ERR_INVALID_ARGUMENT (NULL arguments, bad params), TP_ERR_NOT_FOUND
 * (no such folder or id, a required file or tensor missing: named),
 * TP_ERR_FORMAT (a malformed file: names the file and the field or tensor),
 * TP_ERR_UNSUPPORTED (a model family or setting tpipe does not implement),
 * TP_ERR_IO, TP_ERR_OUT_OF_MEMORY. On success *out owns the model: free it
 * with tp_model_free. */
tp_status tp_model_load(const char *id_or_path, const tp_model_params *params, tp_model **out,
                        tp_error *err);
void tp_model_free(tp_model *model); /* NULL is a no-op */

typedef enum tp_model_task {
    TP_TASK_NONE = 0,            /* an encoder backbone without a head                    */
    TP_TASK_FILL_MASK,           /* masked LM (e.g. answerdotai/ModernBERT-base)          */
    TP_TASK_TEXT_CLASSIFICATION, /* sequence classification: sentiment and zero-shot      */
    TP_TASK_TEXT_GENERATION,     /* causal LM (decoders)                                  */
} tp_model_task;

/* What the model can do (from its architecture and weights). */
tp_model_task tp_model_get_task(const tp_model *model);
/* Classification models: the number of labels and the name of label i (from
 * config.json id2label; "LABEL_i" when absent). NULL when out of range. */
size_t tp_model_num_labels(const tp_model *model);
const char *tp_model_label(const tp_model *model, size_t i);
/* The longest input in tokens (special tokens included) the model takes: the
 * smaller of max_position_embeddings and the tokenizer's model_max_length. */
size_t tp_model_max_length(const tp_model *model);
/* The model's tokenizer (owned by the model; valid until tp_model_free). */
const tp_tokenizer *tp_model_tokenizer(const tp_model *model);

/* Options shared by the encoder pipelines. */
typedef struct tp_encoder_input_params {
    bool truncation;   /* default true: inputs longer than max_length are cut (the result's
                          `truncated` says so); false: such an item fails with TP_ERR_TOO_LONG */
    size_t max_length; /* tokens incl. special tokens; 0 (default): tp_model_max_length     */
} tp_encoder_input_params;

/*
 * Every pipeline call below:
 *   - takes a loaded model of the right task (else TP_ERR_INVALID_ARGUMENT);
 *   - single calls return the item's own error (TP_ERR_INPUT: invalid UTF-8,
 *     no mask token, ...; TP_ERR_TOO_LONG: longer than max_length with
 *     truncation off; TP_ERR_OUT_OF_MEMORY: the item alone needs more than the
 *     memory budget) as the call's status;
 *   - _batch calls take n texts and a caller array `out` of n results: out[i]
 *     gets item i's value or its error (out[i].error.status, .message, .item =
 *     i); the call's own status is only for batch-level failures
 *     (TP_ERR_INVALID_ARGUMENT: NULL arguments, wrong model task, bad params;
 *     TP_ERR_OUT_OF_MEMORY). n == 0 is TP_OK. Items are scheduled by length
 *     into micro-batches under the model's token budget; each result is
 *     bit-identical to the single call on the same input;
 *   - results are owned by the caller: free each with the matching *_free
 *     (also after an error: it is then empty), or all n with *_free_all.
 */

/* ---- fill-mask ---- */

typedef struct tp_fill_mask_params {
    tp_encoder_input_params input;
} tp_fill_mask_params;

tp_fill_mask_params tp_fill_mask_default_params(void);

typedef struct tp_fill_mask_prediction {
    int32_t token;   /* vocabulary id                                                   */
    char *token_str; /* the token decoded alone (Hugging Face's token_str)             */
    float score;     /* softmax probability over the vocabulary                        */
    char *sequence;  /* the input ids with this mask replaced, decoded as Hugging Face's
                        fill-mask pipeline does: special tokens skipped when the text has
                        one mask, kept (other masks visible) when it has several;
                        clean_up_tokenization_spaces per the tokenizer config          */
} tp_fill_mask_prediction;

typedef struct tp_fill_mask_result {
    tp_error error; /* error.status == TP_OK when the item succeeded                  */
    bool truncated; /* the input was cut to max_length                                */
    size_t n_masks; /* mask tokens in the (truncated) input                           */
    size_t k;       /* predictions per mask (top_k, at most the vocabulary size)      */
    tp_fill_mask_prediction *predictions; /* (n_masks, k): mask m's j-th best at [m*k + j],
                                             best first                               */
    char *filled; /* the text with every mask replaced by its best token (special
                     tokens skipped): what tp_fill_mask_predict returns             */
} tp_fill_mask_result;

void tp_fill_mask_result_free(tp_fill_mask_result *r);               /* r is zeroed   */
void tp_fill_mask_result_free_all(tp_fill_mask_result *r, size_t n); /* each of n     */

/* The text with the mask(s) filled by the best token; *filled is malloc'd
 * (free with free()). */
tp_status tp_fill_mask_predict(tp_model *model, const char *text, const tp_fill_mask_params *params,
                               char **filled, tp_error *err);
/* The k best tokens for each mask (k >= 1). */
tp_status tp_fill_mask_predict_top_k(tp_model *model, const char *text, size_t k,
                                     const tp_fill_mask_params *params, tp_fill_mask_result *out,
                                     tp_error *err);
/* Batch forms: predict_batch fills `filled` and k = 1 predictions per mask. */
tp_status tp_fill_mask_predict_batch(tp_model *model, const char *const *texts, size_t n,
                                     const tp_fill_mask_params *params, tp_fill_mask_result *out,
                                     tp_error *err);
tp_status tp_fill_mask_predict_top_k_batch(tp_model *model, const char *const *texts, size_t n,
                                           size_t k, const tp_fill_mask_params *params,
                                           tp_fill_mask_result *out, tp_error *err);

/* ---- sentiment (text classification) ---- */

typedef enum tp_score_function {
    TP_SCORE_AUTO = 0, /* Hugging Face's rule: sigmoid when config problem_type is
                          "multi_label_classification" or num_labels == 1, else softmax */
    TP_SCORE_SOFTMAX,
    TP_SCORE_SIGMOID,
    TP_SCORE_NONE, /* raw logits */
} tp_score_function;

typedef struct tp_sentiment_params {
    tp_encoder_input_params input;
    tp_score_function function; /* default TP_SCORE_AUTO */
} tp_sentiment_params;

tp_sentiment_params tp_sentiment_default_params(void);

typedef struct tp_label_score {
    char *label; /* id2label name */
    int32_t id;  /* label index    */
    float score;
} tp_label_score;

typedef struct tp_sentiment_result {
    tp_error error;
    bool truncated;
    size_t n_scores;        /* 1 (best label), or num_labels for the all-scores forms */
    tp_label_score *scores; /* best first (ties: lower label id first)                 */
} tp_sentiment_result;

void tp_sentiment_result_free(tp_sentiment_result *r);
void tp_sentiment_result_free_all(tp_sentiment_result *r, size_t n);

/* The best label; *label is malloc'd (free with free()). */
tp_status tp_sentiment_predict(tp_model *model, const char *text, const tp_sentiment_params *params,
                               char **label, tp_error *err);
/* The best label and its score (n_scores = 1). */
tp_status tp_sentiment_predict_with_score(tp_model *model, const char *text,
                                          const tp_sentiment_params *params,
                                          tp_sentiment_result *out, tp_error *err);
/* Every label with its score, best first (n_scores = num_labels). */
tp_status tp_sentiment_predict_all_scores(tp_model *model, const char *text,
                                          const tp_sentiment_params *params,
                                          tp_sentiment_result *out, tp_error *err);
/* Batch forms (predict_batch and predict_with_score_batch both give the best
 * label with its score). */
tp_status tp_sentiment_predict_batch(tp_model *model, const char *const *texts, size_t n,
                                     const tp_sentiment_params *params, tp_sentiment_result *out,
                                     tp_error *err);
tp_status tp_sentiment_predict_with_score_batch(tp_model *model, const char *const *texts, size_t n,
                                                const tp_sentiment_params *params,
                                                tp_sentiment_result *out, tp_error *err);
tp_status tp_sentiment_predict_all_scores_batch(tp_model *model, const char *const *texts, size_t n,
                                                const tp_sentiment_params *params,
                                                tp_sentiment_result *out, tp_error *err);

/* ---- zero-shot classification (NLI models) ---- */

typedef struct tp_zero_shot_params {
    tp_encoder_input_params input;   /* truncation cuts the text, never the hypothesis */
    const char *hypothesis_template; /* "{}" is replaced by the label; NULL (default):
                                        "This example is {}."                           */
    bool multi_label;                /* false (default): softmax of the entailment logits across the
                                        labels; true: per label, softmax over [contradiction, entailment].
                                        As in Hugging Face, a single label is always scored multi-label. */
} tp_zero_shot_params;

tp_zero_shot_params tp_zero_shot_default_params(void);

typedef struct tp_zero_shot_result {
    tp_error error;
    bool truncated; /* some (text, hypothesis) pair was cut */
    size_t n_labels;
    char **labels; /* (n_labels) best first */
    float *scores; /* (n_labels) matching labels */
} tp_zero_shot_result;

void tp_zero_shot_result_free(tp_zero_shot_result *r);
void tp_zero_shot_result_free_all(tp_zero_shot_result *r, size_t n);

/* Scores `labels` (n_labels >= 1) for text. The entailment class is the
 * config's label2id entry starting with "entail" (case-insensitive); the
 * contradiction class is 0, or the last class when entailment is 0 (as
 * Hugging Face does). TP_ERR_UNSUPPORTED when the model has no entailment label. */
tp_status tp_zero_shot_predict(tp_model *model, const char *text, const char *const *labels,
                               size_t n_labels, const tp_zero_shot_params *params,
                               tp_zero_shot_result *out, tp_error *err);
/* Every text against the same labels; all (text, hypothesis) pairs of the batch
 * are scheduled together. */
tp_status tp_zero_shot_predict_batch(tp_model *model, const char *const *texts, size_t n,
                                     const char *const *labels, size_t n_labels,
                                     const tp_zero_shot_params *params, tp_zero_shot_result *out,
                                     tp_error *err);
/* Each text with its own labels: labels[i] has n_labels[i] entries (an item
 * with no labels fails alone with TP_ERR_INPUT). */
tp_status tp_zero_shot_predict_batch_labels(tp_model *model, const char *const *texts, size_t n,
                                            const char *const *const *labels,
                                            const size_t *n_labels,
                                            const tp_zero_shot_params *params,
                                            tp_zero_shot_result *out, tp_error *err);

/* ---- end encoder ---- */

/* ---- text generation (section: generate) ---- */

/*
 * Text generation with Qwen3 and Gemma3 checkpoints (tp_model_get_task ==
 * TP_TASK_TEXT_GENERATION): completion (a raw prompt) and chat (messages
 * rendered with the model's own chat template, add_generation_prompt = true),
 * single and batched. Batches run with continuous batching: every decode step
 * is one forward for all live sequences, a finished sequence leaves at once
 * and the next item takes its slot; the KV cache is allocated in blocks under
 * a memory budget (items wait for free blocks; an item that cannot fit even
 * alone fails alone with TP_ERR_OUT_OF_MEMORY).
 *
 * Settings resolve per item: the item's tp_gen_options field when set, else
 * the call's, else generation_config.json's, else the built-in default. An
 * item's output depends only on the item and its resolved settings (its own
 * RNG), never on the rest of the batch or the thread count.
 *
 * Errors of the calls (single calls return the item's own error as status):
 *   TP_ERR_INVALID_ARGUMENT  NULL arguments, a model that is not a text
 *                            generator, out-of-range settings
 *   TP_ERR_INPUT             invalid UTF-8, a prompt with no tokens, a bad message
 *   TP_ERR_TOO_LONG          a prompt leaving no room in the context (unless
 *                            truncate_prompt)
 *   TP_ERR_TEMPLATE          the chat template failed (message names its line)
 *   TP_ERR_NOT_FOUND         chat on a model without a chat template
 *   TP_ERR_OUT_OF_MEMORY     the item alone needs more KV cache than the budget
 * Calls on one model take turns on its thread pool (thread-safe; see
 * "Threads" at the top): prompts are rendered and tokenized before the call
 * takes the model, the generation loop (and the stream callback) runs while
 * it holds it.
 */

typedef enum tp_finish_reason {
    TP_FINISH_NONE = 0,     /* the item failed (see its error)                          */
    TP_FINISH_STOP = 1,     /* an EOS / stop token id, or a stop string                 */
    TP_FINISH_LENGTH = 2,   /* max_new_tokens, or the end of the model's context         */
    TP_FINISH_CANCELLED = 3 /* the stream callback returned non-zero                     */
} tp_finish_reason;

/* Per-item settings; every field has an "unset" value (what
 * tp_gen_options_unset() returns), meaning "inherit". */
typedef struct tp_gen_options {
    int32_t max_new_tokens;    /* < 0 unset. Default: generation_config max_new_tokens,
                                  else 256                                               */
    float temperature;         /* < 0 unset; 0 = greedy. Default: generation_config's
                                  temperature (1.0 if absent) when its do_sample is true,
                                  else 0 (greedy)                                        */
    int32_t top_k;             /* < 0 unset; 0 = off. Default: generation_config (50)    */
    float top_p;               /* < 0 unset; 1 = off. Default: generation_config (1.0)   */
    float min_p;               /* < 0 unset; 0 = off. Default: generation_config (0)     */
    float repetition_penalty;  /* <= 0 unset; 1 = off. Default: generation_config (1.0)  */
    int32_t repetition_window; /* < 0 unset; 0 = every prompt and output token (default) */
    int64_t seed;              /* < 0 unset. Default 0 (so runs are reproducible)        */
    const char *const *stop;   /* stop strings (n_stop); NULL = unset. Generation stops
                                  when the text contains one (also across tokens); the
                                  text is cut before it                                  */
    size_t n_stop;
    const int32_t *stop_ids; /* extra stop token ids besides the EOS ids of
                                generation_config.json (else config.json); NULL =
                                unset. Like EOS, a stop id ends the item and counts  */
    size_t n_stop_ids;
} tp_gen_options;

tp_gen_options tp_gen_options_unset(void);

/* Streaming: new text of item `item` (never a split UTF-8 character; what
 * the stream delivers concatenates to the item's final text). Called on the
 * calling thread. Return non-zero to cancel that item only (finish_reason
 * TP_FINISH_CANCELLED, the text so far kept). */
typedef int (*tp_gen_stream_fn)(size_t item, const char *text, size_t len, void *user);

typedef struct tp_generate_params {
    tp_gen_options options;  /* call-level settings (default: all unset)                 */
    int enable_thinking;     /* chat: -1 (default) = not passed to the template; 0 =
                                false; 1 = true (Qwen3's thinking switch)               */
    bool truncate_prompt;    /* false (default): a prompt leaving no room for
                                max_new_tokens in the context fails TP_ERR_TOO_LONG;
                                true: its oldest tokens are dropped (result.truncated)  */
    size_t kv_budget;        /* bytes of KV cache for the call; 0 (default): half of the
                                available memory                                         */
    int max_batch;           /* sequences decoded together; 0 (default): 64             */
    tp_gen_stream_fn stream; /* NULL (default): no streaming                             */
    void *stream_user;
} tp_generate_params;

tp_generate_params tp_generate_default_params(void);

typedef struct tp_gen_result {
    tp_error error;  /* error.status == TP_OK when the item succeeded              */
    char *text;      /* generated text, special tokens skipped, cut before a stop
                        string; an incomplete UTF-8 tail decodes as U+FFFD        */
    char *reasoning; /* the reasoning block (<think>...</think>, trimmed) when the
                        text has one, else NULL                                   */
    char *content;   /* the text after the reasoning block (trimmed at its start),
                        or the whole text when there is none                      */
    tp_finish_reason finish_reason;
    size_t prompt_tokens;     /* prompt tokens run (after truncation)                 */
    size_t completion_tokens; /* generated ids, a final EOS / stop id included         */
    int32_t *tokens;          /* (completion_tokens) the generated ids                 */
    bool truncated;           /* the prompt was cut (truncate_prompt)                  */
} tp_gen_result;

void tp_gen_result_free(tp_gen_result *r);               /* r is zeroed; NULL ok */
void tp_gen_result_free_all(tp_gen_result *r, size_t n); /* each of n            */

/* Per-call figures (all items of the call together). */
typedef struct tp_generate_stats {
    double total_s;               /* wall time of the call                              */
    double time_to_first_token_s; /* from the call's start to the first new token       */
    double prefill_tokens_per_s;  /* prompt tokens / time of the steps that prefilled   */
    double decode_tokens_per_s;   /* tokens / time of the pure decode steps             */
    size_t prompt_tokens;
    size_t completion_tokens;
    size_t kv_peak_bytes; /* most KV cache memory held at once                  */
} tp_generate_stats;

/* One chat message. content is plain text. */
typedef struct tp_chat_message {
    const char *role; /* "system", "user", "assistant", ... */
    const char *content;
} tp_chat_message;

/* One conversation: messages, or (when json is non-NULL) a JSON object with
 * "messages" and optionally "tools" and other fields passed to the template. */
typedef struct tp_chat_conversation {
    const tp_chat_message *messages;
    size_t n_messages;
    const char *json;
} tp_chat_conversation;

/* Completion of one prompt (tokenized with the tokenizer's special tokens,
 * e.g. Gemma3's <bos>). params/stats may be NULL. */
tp_status tp_completion(tp_model *model, const char *prompt, const tp_generate_params *params,
                        tp_gen_result *out, tp_generate_stats *stats, tp_error *err);
/* n prompts; item_options NULL or n per-item settings; out: caller's array of n. */
tp_status tp_completion_batch(tp_model *model, const char *const *prompts, size_t n,
                              const tp_generate_params *params, const tp_gen_options *item_options,
                              tp_gen_result *out, tp_generate_stats *stats, tp_error *err);
/* Chat: renders the model's chat template (add_generation_prompt = true;
 * enable_thinking passed only when set) and generates the assistant reply. */
tp_status tp_chat(tp_model *model, const tp_chat_message *messages, size_t n_messages,
                  const tp_generate_params *params, tp_gen_result *out, tp_generate_stats *stats,
                  tp_error *err);
tp_status tp_chat_batch(tp_model *model, const tp_chat_conversation *conversations, size_t n,
                        const tp_generate_params *params, const tp_gen_options *item_options,
                        tp_gen_result *out, tp_generate_stats *stats, tp_error *err);

/* ---- end generate ---- */

#ifdef __cplusplus
}
#endif

#endif /* TPIPE_H */
