/*
 * tok_internal.h — the tokenizer's private data structures, shared by
 * tok_load.c (building them from tokenizer.json), tok_encode.c, tok_decode.c
 * and tok_api.c. Not for other modules: they use tokenizer.h.
 *
 * Everything here is built once at load and read-only afterwards, which is
 * what makes a tp_tokenizer shareable across threads. Per-call state lives in
 * tp_tok_scratch (tok_encode.c).
 */
#ifndef TP_TOK_INTERNAL_H
#define TP_TOK_INTERNAL_H

#define PCRE2_CODE_UNIT_WIDTH 8
#include <pcre2.h>

#include "tokenizer/tokenizer.h"

#define TOK_NONE UINT32_MAX
/* Largest id accepted (real vocabularies are < 2^19): a corrupt file cannot make
 * the per-id tables huge. */
#define TOK_MAX_IDS (1 << 24)

/* ---- string -> id hash (open addressing over a string pool) ---- */
typedef struct tok_strslot {
    uint32_t id;       /* TOK_NONE = empty */
    uint32_t tag;      /* high 32 bits of the hash: most mismatches need no memcmp */
    uint32_t off, len; /* the string in the pool (no indirection through id) */
} tok_strslot;

typedef struct tok_strmap {
    tok_strslot *slots; /* capacity mask+1 */
    size_t mask;
} tok_strmap;

uint64_t tok_hash_bytes(const void *p, size_t n);

/* ---- (left id, right id) -> (rank, merged id) ---- */
typedef struct tok_merge_slot {
    uint64_t key; /* (uint64)left << 32 | right; UINT64_MAX = empty */
    uint32_t rank;
    uint32_t id;
} tok_merge_slot;

typedef struct tok_mergemap {
    tok_merge_slot *slots;
    size_t mask;
} tok_mergemap;

/* Slot index of a merge key: murmur3's fmix64 (a plain multiplicative hash
 * clustered badly under linear probing on Gemma 3's merges). */
static inline size_t tok_merge_index(uint64_t key, size_t mask) {
    uint64_t h = key;
    h ^= h >> 33;
    h *= 0xff51afd7ed558ccdull;
    h ^= h >> 33;
    h *= 0xc4ceb9fe1a85ec53ull;
    h ^= h >> 33;
    return (size_t)h & mask;
}

static inline const tok_merge_slot *tok_merge_find(const tok_mergemap *m, uint32_t a, uint32_t b) {
    if (!m->slots)
        return NULL;
    uint64_t key = (uint64_t)a << 32 | b;
    size_t i = tok_merge_index(key, m->mask);
    for (;;) {
        const tok_merge_slot *s = &m->slots[i];
        if (s->key == key)
            return s;
        if (s->key == UINT64_MAX)
            return NULL;
        i = (i + 1) & m->mask;
    }
}

/* ---- added tokens: a byte trie for leftmost-longest matching ---- */
typedef struct tok_trie_node {
    uint32_t first_edge; /* index into edges, sorted by byte */
    uint16_t n_edges;
    uint32_t token; /* index into added[], or TOK_NONE */
} tok_trie_node;

typedef struct tok_trie_edge {
    uint8_t byte;
    uint32_t child;
} tok_trie_edge;

typedef struct tok_trie {
    tok_trie_node *nodes; /* nodes[0] = root */
    size_t n_nodes;
    tok_trie_edge *edges;
    size_t n_edges;
    uint32_t root_child[256]; /* direct table for the root (TOK_NONE = no edge) */
} tok_trie;

typedef struct tok_added {
    char *content; /* as written in tokenizer.json */
    char *norm;    /* normalized content (for normalized tokens), else NULL */
    uint32_t id;
    bool single_word, lstrip, rstrip, normalized, special;
} tok_added;

/* ---- components ---- */
typedef enum tok_norm_kind {
    TN_NFC,
    TN_NFD,
    TN_NFKC,
    TN_NFKD,
    TN_LOWERCASE,
    TN_STRIP,
    TN_REPLACE,
    TN_PREPEND,
    TN_SEQUENCE,
} tok_norm_kind;

/* PCRE2 allocates through tp_malloc/tp_free (compiled patterns, JIT data,
 * match data and the interpreter's heap frames), so allocation-failure
 * injection reaches it too: pass tok_pcre2_cctx() to pcre2_compile and
 * tok_pcre2_gctx() to pcre2_match_data_create. Both are made on first use
 * (process-wide, read-only afterwards); NULL only when that first use runs out
 * of memory (the caller reports TP_ERR_OUT_OF_MEMORY; a later call retries). */
pcre2_general_context *tok_pcre2_gctx(void);
pcre2_compile_context *tok_pcre2_cctx(void);
/* pcre2_match_data_create(n, tok_pcre2_gctx()), NULL on out of memory. */
pcre2_match_data *tok_match_data_create(uint32_t n);

typedef struct tok_pattern {
    bool is_regex;
    char *literal; /* String pattern */
    size_t literal_len;
    pcre2_code *re; /* Regex pattern (JIT compiled when possible) */
    char *regex;    /* Regex pattern: its source (the GGUF exporter names it) */
} tok_pattern;

typedef struct tok_normalizer {
    tok_norm_kind kind;
    bool strip_left, strip_right; /* Strip */
    tok_pattern pat;              /* Replace */
    char *content;                /* Replace content / Prepend string */
    size_t content_len;
    struct tok_normalizer *items; /* Sequence */
    size_t n_items;
} tok_normalizer;

typedef enum tok_split_behavior {
    TS_REMOVED,
    TS_ISOLATED,
    TS_MERGED_PREV,
    TS_MERGED_NEXT,
    TS_CONTIGUOUS,
} tok_split_behavior;

typedef enum tok_pre_kind {
    TP_PRE_SPLIT,
    TP_PRE_BYTELEVEL,
    TP_PRE_METASPACE,
    TP_PRE_DIGITS,
    TP_PRE_WHITESPACE,
    TP_PRE_WHITESPACE_SPLIT,
    TP_PRE_SEQUENCE,
} tok_pre_kind;

typedef enum tok_prepend_scheme { TPS_ALWAYS, TPS_FIRST, TPS_NEVER } tok_prepend_scheme;

typedef struct tok_pretok {
    tok_pre_kind kind;
    tok_pattern pat; /* Split (or the ByteLevel / Whitespace regex) */
    tok_split_behavior behavior;
    bool invert;
    bool add_prefix_space, use_regex; /* ByteLevel */
    char replacement[8];              /* Metaspace (UTF-8) */
    size_t replacement_len;
    tok_prepend_scheme prepend;
    bool split;             /* Metaspace */
    bool individual_digits; /* Digits */
    struct tok_pretok *items;
    size_t n_items;
} tok_pretok;

typedef enum tok_post_kind {
    TPP_NONE,
    TPP_TEMPLATE,
    TPP_ROBERTA,
    TPP_BERT,
    TPP_BYTELEVEL,
    TPP_SEQUENCE,
} tok_post_kind;

typedef struct tok_tpl_piece {
    int seq;       /* -1 = special token, 0 = A, 1 = B */
    uint32_t *ids; /* special token ids */
    size_t n_ids;
    uint8_t type_id;
} tok_tpl_piece;

typedef struct tok_post {
    tok_post_kind kind;
    tok_tpl_piece *single, *pair; /* Template */
    size_t n_single, n_pair;
    uint32_t cls_id, sep_id;             /* Roberta / Bert */
    bool trim_offsets, add_prefix_space; /* Roberta / ByteLevel */
    struct tok_post *items;
    size_t n_items;
} tok_post;

typedef enum tok_dec_kind {
    TD_BYTELEVEL,
    TD_BYTEFALLBACK,
    TD_FUSE,
    TD_STRIP,
    TD_REPLACE,
    TD_METASPACE,
    TD_SEQUENCE,
} tok_dec_kind;

typedef struct tok_decoder {
    tok_dec_kind kind;
    char content[8]; /* Strip: the char (UTF-8) / Metaspace replacement */
    size_t content_len;
    size_t strip_start, strip_stop;
    tok_pattern pat; /* Replace */
    char *repl;
    size_t repl_len;
    tok_prepend_scheme prepend; /* Metaspace */
    struct tok_decoder *items;
    size_t n_items;
} tok_decoder;

/* ---- the tokenizer ---- */
struct tp_tokenizer {
    char *dir;

    /* id -> string: pool + per-id offset/length (len TOK_NONE: unused id) */
    char *pool;
    size_t pool_len, pool_cap;
    uint32_t *tok_off, *tok_len; /* (n_ids) effective strings (added tokens win) */
    size_t n_ids;
    uint32_t *model_off, *model_len; /* (n_ids) model vocabulary strings only */
    uint8_t *is_special;             /* (n_ids) */
    uint8_t *is_added;               /* (n_ids) */
    tok_strmap vocab;                /* model vocabulary: string -> id */

    /* BPE model */
    tok_mergemap merges;
    size_t n_merges;
    uint32_t unk_id; /* TOK_NONE when no unk_token */
    bool fuse_unk, byte_fallback, ignore_merges;
    char *cont_prefix, *eow_suffix; /* NULL when absent/empty */
    size_t cont_prefix_len, eow_suffix_len;
    bool byte_level;                /* a ByteLevel pre-tokenizer maps bytes to chars */
    uint32_t byte_to_id[256];       /* byte-level: id of the char of each byte */
    uint32_t byte_fallback_id[256]; /* "<0xNN>" ids */
    uint8_t bl_char_to_byte[324];   /* byte-level char (code point < 324) -> byte */
    bool bl_char_valid[324];

    /* Splitting long SentencePiece-style words before each "▁" run (exact,
     * see tok_encode.c: bpe_word): enabled when no merge can join a token
     * ending in another character to one starting with "▁", except the few
     * listed ones, which are checked at each cut. */
    bool meta_split;
    char **cross_a, **cross_b; /* (n_cross) the exceptions, as strings */
    size_t n_cross;

    /* added tokens */
    tok_added *added;
    size_t n_added;
    tok_trie trie_raw;  /* normalized == false tokens, matched on the input */
    tok_trie trie_norm; /* normalized == true tokens, matched after normalizing */

    bool has_normalizer, has_pretok, has_decoder;
    tok_normalizer normalizer;
    tok_pretok pretok;
    tok_post post;
    tok_decoder decoder;
    size_t n_special_single, n_special_pair; /* tokens the post-processor adds */

    tp_tok_info info;
    tp_tok_chat_template *templates;
    size_t n_templates;
};

/* Strings interned at load (info.*.text, template names). */
const char *tok_lookup_str(const tp_tokenizer *tok, uint32_t id, size_t *len);

/* helpers shared between files */
int32_t tok_vocab_find(const tp_tokenizer *tok, const char *s, size_t n);
int32_t tok_added_find(const tp_tokenizer *tok, const char *s, size_t n);

/* Byte-level char of byte b (the GPT-2 table), as a code point. */
uint32_t tok_byte_to_char(uint8_t b);

/* Normalizes s[0..n) with the normalizer norm; appends to out. Used at load for
 * normalized added tokens (alignment dropped). */
tp_status tok_normalize_plain(const tp_tokenizer *tok, const tok_normalizer *norm, const char *s,
                              size_t n, tp_buf *out, tp_error *err);

/* Appends s[0..n) to out replacing each maximal invalid UTF-8 subpart by
 * U+FFFD (Rust's String::from_utf8_lossy). */
void tok_append_lossy(tp_buf *out, const char *s, size_t n);

/* ---- construction steps shared by tok_load.c (tokenizer.json) and tok_gguf.c
 * (GGUF metadata): both build the same structures through these ---- */
struct cJSON;

/* Appends s[0..n) + NUL to the string pool; false when out of memory. */
bool tok_pool_add(tp_tokenizer *tok, const char *s, size_t n, uint32_t *off);
/* The model vocabulary from n strings already in the pool: entry i is
 * (offs[i], lens[i]) with id ids[i]; n_ids becomes max id + 1. A repeated
 * string keeps its first id; dup/dup_of (may be NULL) get the ids of the first
 * repeat and of the entry it repeats (TOK_NONE when none). */
tp_status tok_vocab_install(tp_tokenizer *tok, const uint32_t *ids, const uint32_t *offs,
                            const uint32_t *lens, size_t n, uint32_t *dup, uint32_t *dup_of,
                            tp_error *err);
/* An empty merge table sized for the vocabulary. */
tp_status tok_merges_init(tp_tokenizer *tok, tp_error *err);
/* Adds merge (a, b) with rank (ranks must be added in increasing order; a
 * repeated pair keeps its first rank). 0 = added; 1, 2, 3 = a, b or the merged
 * string (left in cat) is not in the vocabulary; -1 = out of memory. */
int tok_merge_add(tp_tokenizer *tok, const char *a, size_t al, const char *b, size_t bl,
                  uint32_t rank, tp_buf *cat);
/* Everything after the vocabulary and merges, from tokenizer.json-shaped cJSON
 * objects: model {unk_token, fuse_unk, byte_fallback, ignore_merges,
 * end_of_word_suffix, dropout} and root {added_tokens, normalizer,
 * pre_tokenizer, post_processor, decoder}. vocab_ids = n_ids after the
 * vocabulary. Error messages name file. */
tp_status tok_assemble(tp_tokenizer *tok, const char *file, const struct cJSON *root,
                       const struct cJSON *model, size_t vocab_ids, tp_error *err);
/* Adds a chat template (copies); TP_ERR_OUT_OF_MEMORY only. */
tp_status tok_add_template(tp_tokenizer *tok, const char *name, const char *src);

#endif /* TP_TOK_INTERNAL_H */
