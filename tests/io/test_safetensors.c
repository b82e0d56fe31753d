/*
 * test_safetensors.c — the safetensors reader:
 *   - the 7 tiny golden checkpoints (tests/data/golden, a copy of ../shared/golden)
 *     load with exactly the tensor names, shapes and dtypes that their config.json
 *     implies (the expected list is built here from the config dimensions and the
 *     Hugging Face naming of each family, not from the loader);
 *   - a malformed-file corpus generated in a temp folder: each file must give the
 *     expected status and a message naming the file and the tensor or field;
 *   - valid hand-made files: values, F16/BF16 conversion, sharded index, lookups.
 */
#include "io/safetensors.h"
#include "io_test_util.h"
#include "golden_expect.h"

#include <cjson/cJSON.h>

static void test_golden_case(const char *root, const char *name) {
    char dir[4400], cfgp[4500];
    snprintf(dir, sizeof dir, "%s/%s", root, name);
    snprintf(cfgp, sizeof cfgp, "%s/config.json", dir);
    FILE *f = fopen(cfgp, "rb");
    CHECK_MSG(f != NULL, "%s", cfgp);
    if (!f)
        return;
    char text[8192];
    size_t n = fread(text, 1, sizeof text - 1, f);
    fclose(f);
    text[n] = 0;
    cJSON *c = cJSON_Parse(text);
    CHECK(c != NULL);
    if (!c)
        return;
    const char *torch_dtype = cJSON_GetObjectItem(c, "torch_dtype")->valuestring;
    tp_dtype want_dt = strcmp(torch_dtype, "bfloat16") == 0 ? TP_DTYPE_BF16 : TP_DTYPE_F32;
    static exp_list l;
    CHECK(expect_tensors(c, &l));

    tp_st_model *m = NULL;
    tp_error err;
    tp_status st = tp_st_open(dir, &m, &err);
    CHECK_MSG(st == TP_OK, "%s: %s", name, err.message);
    if (st != TP_OK) {
        cJSON_Delete(c);
        return;
    }
    CHECK_MSG((int)tp_st_count(m) == l.n, "%s: %zu tensors, expected %d", name, tp_st_count(m),
              l.n);
    CHECK_EQ_INT(tp_st_file_count(m), 1);
    for (int i = 0; i < l.n; i++) {
        const tp_st_tensor *t = tp_st_find(m, l.t[i].name);
        CHECK_MSG(t != NULL, "%s: missing %s", name, l.t[i].name);
        if (!t)
            continue;
        CHECK_STR(t->name, l.t[i].name);
        CHECK_MSG(t->dtype == want_dt, "%s: %s dtype %s", name, t->name, tp_dtype_name(t->dtype));
        CHECK_EQ_INT(t->n_dims, l.t[i].n_dims);
        int64_t ne = 1;
        for (int d = 0; d < l.t[i].n_dims; d++) {
            CHECK_MSG(t->shape[d] == l.t[i].shape[d], "%s: %s shape[%d] %lld != %lld", name,
                      t->name, d, (long long)t->shape[d], (long long)l.t[i].shape[d]);
            ne *= l.t[i].shape[d];
        }
        CHECK_EQ_INT(t->n_elems, ne);
        CHECK_EQ_INT(t->n_bytes, ne * (int64_t)tp_dtype_size(want_dt));
        CHECK(strstr(t->file, "model.safetensors") != NULL);
        /* tp_st_get with the expected shape succeeds */
        const tp_st_tensor *g = NULL;
        CHECK(tp_st_get(m, t->name, l.t[i].n_dims, l.t[i].shape, &g, &err) == TP_OK && g == t);
    }
    /* sorted by name */
    for (size_t i = 1; i < tp_st_count(m); i++)
        CHECK(strcmp(tp_st_at(m, i - 1)->name, tp_st_at(m, i)->name) < 0);
    CHECK(tp_st_at(m, tp_st_count(m)) == NULL);
    /* weights are small random values: norms ~1, matrices ~0.02 scale */
    const tp_st_tensor *emb = tp_st_at(m, 0);
    float *v = NULL;
    CHECK(tp_st_to_f32(emb, &v, &err) == TP_OK);
    if (v) {
        int finite = 1;
        for (int64_t i = 0; i < emb->n_elems; i++)
            finite &= isfinite(v[i]) && fabsf(v[i]) < 100.0f;
        CHECK_MSG(finite, "%s: %s has non-finite or huge values", name, emb->name);
        free(v);
    }
    tp_st_close(m);
    cJSON_Delete(c);
}

static void test_golden(void) {
    const char *root = tp_test_data("golden");
    char r[4096];
    snprintf(r, sizeof r, "%s", root);
    for (size_t i = 0; i < sizeof golden_cases / sizeof golden_cases[0]; i++)
        test_golden_case(r, golden_cases[i]);

    /* the bf16 case: the first bytes of the embedding match a direct read of the file */
    char p[4200];
    snprintf(p, sizeof p, "%s/qwen3_untied_bf16/model.safetensors", r);
    tp_st_model *m = NULL;
    tp_error err;
    CHECK(tp_st_open(p, &m, &err) == TP_OK);
    if (m) {
        /* the golden writer stores tensors sorted by name with contiguous offsets:
         * the first name (lm_head.weight) starts at data offset 0 */
        const tp_st_tensor *t = tp_st_at(m, 0);
        CHECK_STR(t->name, "lm_head.weight");
        FILE *f = fopen(p, "rb");
        unsigned char h8[8];
        CHECK(fread(h8, 1, 8, f) == 8);
        uint64_t hl = 0;
        for (int i = 7; i >= 0; i--)
            hl = hl << 8 | h8[i];
        fseek(f, (long)(8 + hl), SEEK_SET);
        uint16_t raw[4];
        CHECK(fread(raw, 2, 4, f) == 4);
        fclose(f);
        float *v = NULL;
        CHECK(tp_st_to_f32(t, &v, &err) == TP_OK);
        for (int i = 0; v && i < 4; i++) {
            uint32_t bits = (uint32_t)raw[i] << 16;
            float w;
            memcpy(&w, &bits, 4);
            CHECK(v[i] == w);
        }
        free(v);
        tp_st_close(m);
    }
}

/* ---- malformed corpus ---- */

typedef struct bad_case {
    const char *file;    /* file name inside the temp folder */
    const char *header;  /* NULL: raw bytes given by `raw` */
    uint64_t hlen;       /* 0: strlen(header) */
    size_t data_len;     /* bytes of data after the header */
    tp_status want;      /* expected status */
    const char *needle1; /* must appear in the message (besides the file name) */
    const char *needle2; /* may be NULL */
} bad_case;

static void expect_error(const char *path, const char *file_in_msg, tp_status want, const char *n1,
                         const char *n2) {
    tp_st_model *m = (tp_st_model *)&m; /* poison: must be set to NULL */
    tp_error err;
    tp_error_clear(&err);
    tp_status st = tp_st_open(path, &m, &err);
    CHECK_MSG(st == want, "%s: status %s, expected %s (%s)", path, tp_status_name(st),
              tp_status_name(want), err.message);
    CHECK_MSG(m == NULL, "%s: out not NULL on error", path);
    CHECK(err.status == st);
    if (getenv("TPIPE_TEST_VERBOSE"))
        printf("%-20s %s\n", tp_status_name(st), err.message);
    CHECK_MSG(io_contains(err.message, file_in_msg), "message does not name %s: %s", file_in_msg,
              err.message);
    if (n1)
        CHECK_MSG(io_contains(err.message, n1), "message lacks '%s': %s", n1, err.message);
    if (n2)
        CHECK_MSG(io_contains(err.message, n2), "message lacks '%s': %s", n2, err.message);
    if (st == TP_OK)
        tp_st_close(m);
}

static void test_corpus(const char *dir) {
    static const bad_case cases[] = {
        /* header problems */
        {"hl_beyond.safetensors",
         "{\"a\":{\"dtype\":\"F32\",\"shape\":[1],\"data_offsets\":[0,4]}}", 5000, 4, TP_ERR_FORMAT,
         "header length 5000", "past the end"},
        {"hl_huge.safetensors", "{}", 0x4000000000000000ull, 0, TP_ERR_FORMAT,
         "header length 4611686018427387904", "limit"},
        {"not_json.safetensors", "{this is not json}", 0, 0, TP_ERR_FORMAT, "not valid JSON", NULL},
        {"json_array.safetensors", "[1, 2]", 0, 0, TP_ERR_FORMAT, "not a JSON object", NULL},
        {"json_trailing.safetensors", "{} x", 0, 0, TP_ERR_FORMAT, "trailing data", NULL},
        {"json_cut.safetensors", "{\"a\":{\"dtype\":\"F32\",\"sha", 0, 0, TP_ERR_FORMAT,
         "not valid JSON", NULL},
        {"meta_bad.safetensors", "{\"__metadata__\":3}", 0, 0, TP_ERR_FORMAT, "__metadata__", NULL},
        /* offsets */
        {"overlap.safetensors",
         "{\"a\":{\"dtype\":\"F32\",\"shape\":[4],\"data_offsets\":[0,16]},"
         "\"b\":{\"dtype\":\"F32\",\"shape\":[4],\"data_offsets\":[8,24]}}",
         0, 24, TP_ERR_FORMAT, "tensor 'b': data_offsets [8, 24] overlap tensor 'a' [0, 16]", NULL},
        {"overlap_same.safetensors",
         "{\"w1\":{\"dtype\":\"U8\",\"shape\":[8],\"data_offsets\":[0,8]},"
         "\"w2\":{\"dtype\":\"U8\",\"shape\":[8],\"data_offsets\":[0,8]}}",
         0, 8, TP_ERR_FORMAT, "overlap", "'w1'"},
        {"out_of_range.safetensors",
         "{\"w\":{\"dtype\":\"F32\",\"shape\":[25],\"data_offsets\":[0,100]}}", 0, 16,
         TP_ERR_FORMAT, "tensor 'w'", "out of range"},
        {"begin_gt_end.safetensors",
         "{\"w\":{\"dtype\":\"F32\",\"shape\":[4],\"data_offsets\":[16,0]}}", 0, 16, TP_ERR_FORMAT,
         "tensor 'w'", "begin 16 > end 0"},
        {"offsets_three.safetensors",
         "{\"w\":{\"dtype\":\"F32\",\"shape\":[1],\"data_offsets\":[0,4,8]}}", 0, 8, TP_ERR_FORMAT,
         "tensor 'w'", "data_offsets"},
        {"offsets_neg.safetensors",
         "{\"w\":{\"dtype\":\"F32\",\"shape\":[1],\"data_offsets\":[-4,0]}}", 0, 8, TP_ERR_FORMAT,
         "tensor 'w'", "data_offsets"},
        {"offsets_str.safetensors",
         "{\"w\":{\"dtype\":\"F32\",\"shape\":[1],\"data_offsets\":\"0,4\"}}", 0, 8, TP_ERR_FORMAT,
         "tensor 'w'", "data_offsets"},
        {"missing_offsets.safetensors", "{\"w\":{\"dtype\":\"F32\",\"shape\":[1]}}", 0, 4,
         TP_ERR_FORMAT, "tensor 'w'", "missing field 'data_offsets'"},
        /* shape / dtype */
        {"shape_mismatch.safetensors",
         "{\"w\":{\"dtype\":\"F32\",\"shape\":[3],\"data_offsets\":[0,16]}}", 0, 16, TP_ERR_FORMAT,
         "tensor 'w'", "3 elements of F32"},
        {"shape_mismatch_bf16.safetensors",
         "{\"w\":{\"dtype\":\"BF16\",\"shape\":[2,4],\"data_offsets\":[0,32]}}", 0, 32,
         TP_ERR_FORMAT, "tensor 'w'", "span 32 bytes"},
        {"dtype_unknown.safetensors",
         "{\"w\":{\"dtype\":\"Q7\",\"shape\":[1],\"data_offsets\":[0,1]}}", 0, 1, TP_ERR_FORMAT,
         "tensor 'w'", "unknown dtype 'Q7'"},
        {"dtype_f8.safetensors",
         "{\"w\":{\"dtype\":\"F8_E4M3\",\"shape\":[1],\"data_offsets\":[0,1]}}", 0, 1,
         TP_ERR_UNSUPPORTED, "tensor 'w'", "F8_E4M3"},
        {"dtype_num.safetensors", "{\"w\":{\"dtype\":4,\"shape\":[1],\"data_offsets\":[0,4]}}", 0,
         4, TP_ERR_FORMAT, "tensor 'w'", "'dtype' is not a string"},
        {"dtype_missing.safetensors", "{\"w\":{\"shape\":[1],\"data_offsets\":[0,4]}}", 0, 4,
         TP_ERR_FORMAT, "tensor 'w'", "missing field 'dtype'"},
        {"shape_missing.safetensors", "{\"w\":{\"dtype\":\"F32\",\"data_offsets\":[0,4]}}", 0, 4,
         TP_ERR_FORMAT, "tensor 'w'", "missing field 'shape'"},
        {"shape_neg.safetensors",
         "{\"w\":{\"dtype\":\"F32\",\"shape\":[-1,4],\"data_offsets\":[0,16]}}", 0, 16,
         TP_ERR_FORMAT, "tensor 'w'", "shape[0]"},
        {"shape_frac.safetensors",
         "{\"w\":{\"dtype\":\"F32\",\"shape\":[2,2.5],\"data_offsets\":[0,20]}}", 0, 20,
         TP_ERR_FORMAT, "tensor 'w'", "shape[1]"},
        {"shape_huge.safetensors",
         "{\"w\":{\"dtype\":\"F32\",\"shape\":[1e300],\"data_offsets\":[0,4]}}", 0, 4,
         TP_ERR_FORMAT, "tensor 'w'", "shape[0]"},
        {"shape_overflow.safetensors",
         "{\"w\":{\"dtype\":\"F32\",\"shape\":[4294967296,4294967296,16],"
         "\"data_offsets\":[0,4]}}",
         0, 4, TP_ERR_FORMAT, "tensor 'w'", "overflow"},
        /* 2^62 elements fit int64 but times 4 bytes do not fit 64 bits */
        {"bytes_overflow.safetensors",
         "{\"w\":{\"dtype\":\"F32\",\"shape\":[2147483648,2147483648],\"data_offsets\":[0,0]}}", 0,
         4, TP_ERR_FORMAT, "tensor 'w'", "byte size overflows"},
        {"shape_obj.safetensors", "{\"w\":{\"dtype\":\"F32\",\"shape\":{},\"data_offsets\":[0,4]}}",
         0, 4, TP_ERR_FORMAT, "tensor 'w'", "'shape' is not an array"},
        {"too_many_dims.safetensors",
         "{\"w\":{\"dtype\":\"U8\",\"shape\":[1,1,1,1,1,1,1,1,1],\"data_offsets\":[0,1]}}", 0, 1,
         TP_ERR_UNSUPPORTED, "tensor 'w'", "9 dimensions"},
        {"entry_not_obj.safetensors", "{\"w\":5}", 0, 0, TP_ERR_FORMAT, "tensor 'w'",
         "not a JSON object"},
        /* names */
        {"bad_utf8.safetensors",
         "{\"bad\xff\xfe\":{\"dtype\":\"U8\",\"shape\":[1],\"data_offsets\":[0,1]}}", 0, 1,
         TP_ERR_FORMAT, "bad\\xff\\xfe", "not valid UTF-8"},
        {"surrogate.safetensors",
         "{\"x\xed\xa0\x80\":{\"dtype\":\"U8\",\"shape\":[1],\"data_offsets\":[0,1]}}", 0, 1,
         TP_ERR_FORMAT, "not valid UTF-8", "x\\xed"},
        {"dup_name.safetensors",
         "{\"w\":{\"dtype\":\"U8\",\"shape\":[1],\"data_offsets\":[0,1]},"
         "\"w\":{\"dtype\":\"U8\",\"shape\":[1],\"data_offsets\":[1,2]}}",
         0, 2, TP_ERR_FORMAT, "tensor 'w'", "listed twice"},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        const bad_case *c = &cases[i];
        char *p = io_join(dir, c->file);
        io_write_st(p, c->header, c->hlen, NULL, c->data_len);
        expect_error(p, c->file, c->want, c->needle1, c->needle2);
    }

    /* truncated files: empty, 5 bytes, and a golden-like file cut inside its data */
    char *p = io_join(dir, "empty.safetensors");
    io_write_bytes(p, "", 0);
    expect_error(p, "empty.safetensors", TP_ERR_FORMAT, "truncated", NULL);
    p = io_join(dir, "five.safetensors");
    io_write_bytes(p, "\x10\0\0\0\0", 5);
    expect_error(p, "five.safetensors", TP_ERR_FORMAT, "truncated", NULL);
    p = io_join(dir, "cut_data.safetensors");
    io_write_st(p,
                "{\"a\":{\"dtype\":\"F32\",\"shape\":[4],\"data_offsets\":[0,16]},"
                "\"b\":{\"dtype\":\"F32\",\"shape\":[4],\"data_offsets\":[16,32]}}",
                0, NULL, 20);
    expect_error(p, "cut_data.safetensors", TP_ERR_FORMAT, "tensor 'b'", "out of range");
    /* a real golden file, truncated in the middle of its header and of its data */
    {
        char src[4096];
        snprintf(src, sizeof src, "%s", tp_test_data("golden/qwen3_tied/model.safetensors"));
        FILE *f = fopen(src, "rb");
        CHECK(f != NULL);
        if (f) {
            static unsigned char buf[1 << 20];
            size_t n = fread(buf, 1, sizeof buf, f);
            fclose(f);
            p = io_join(dir, "golden_cut_header.safetensors");
            io_write_bytes(p, buf, 200);
            expect_error(p, "golden_cut_header.safetensors", TP_ERR_FORMAT, "past the end", NULL);
            p = io_join(dir, "golden_cut_data.safetensors");
            io_write_bytes(p, buf, n / 2);
            expect_error(p, "golden_cut_data.safetensors", TP_ERR_FORMAT, "out of range",
                         "tensor 'model.");
        }
    }
    /* not a file / absent */
    expect_error(io_join(dir, "absent.safetensors"), "absent.safetensors", TP_ERR_NOT_FOUND,
                 "cannot open", NULL);
    char *sub = io_join(dir, "emptydir");
    mkdir(sub, 0755);
    expect_error(sub, "emptydir", TP_ERR_NOT_FOUND, "model.safetensors", NULL);
    /* a NUL byte inside the header */
    {
        const char h[] = "{\"w\":{\"dtype\":\"U8\",\"shape\":[1],\"data_offsets\":[0,1]}}";
        unsigned char buf[128];
        size_t hl = sizeof h - 1 + 4;
        memset(buf, 0, sizeof buf);
        buf[0] = (unsigned char)hl;
        memcpy(buf + 8, h, sizeof h - 1);
        buf[8 + sizeof h - 1 + 1] = ' '; /* NUL, space, NUL, NUL */
        p = io_join(dir, "nul_in_header.safetensors");
        io_write_bytes(p, buf, 8 + hl + 1);
        expect_error(p, "nul_in_header.safetensors", TP_ERR_FORMAT, "trailing data", NULL);
    }
}

/* ---- sharded checkpoints ---- */

static const char shard1_hdr[] =
    "{\"__metadata__\":{\"format\":\"pt\"},"
    "\"a.weight\":{\"dtype\":\"F32\",\"shape\":[2,2],\"data_offsets\":[0,16]},"
    "\"b.weight\":{\"dtype\":\"BF16\",\"shape\":[3],\"data_offsets\":[16,22]}}";
static const char shard2_hdr[] =
    "{\"c.weight\":{\"dtype\":\"F16\",\"shape\":[2],\"data_offsets\":[0,4]},"
    "\"d.ids\":{\"dtype\":\"I64\",\"shape\":[],\"data_offsets\":[4,12]},"
    "\"e.empty\":{\"dtype\":\"F32\",\"shape\":[0,5],\"data_offsets\":[12,12]}}";

static void write_shards(const char *dir) {
    unsigned char d1[22], d2[12];
    float fa[4] = {1.0f, -2.5f, 0.125f, 3e10f};
    memcpy(d1, fa, 16);
    /* bf16: 1.0 = 0x3f80, -2.0 = 0xc000, 0.5 = 0x3f00 (little-endian) */
    const uint16_t b[3] = {0x3f80, 0xc000, 0x3f00};
    memcpy(d1 + 16, b, 6);
    /* f16: 1.5 = 0x3e00, -0.25 = 0xb400 */
    const uint16_t h[2] = {0x3e00, 0xb400};
    memcpy(d2, h, 4);
    int64_t id = 151645;
    memcpy(d2 + 4, &id, 8);
    io_write_st(io_join(dir, "model-00001-of-00002.safetensors"), shard1_hdr, 0, d1, sizeof d1);
    io_write_st(io_join(dir, "model-00002-of-00002.safetensors"), shard2_hdr, 0, d2, sizeof d2);
}

static void write_index(const char *dir, const char *map) {
    char text[2048];
    snprintf(text, sizeof text, "{\"metadata\":{\"total_size\":34},\"weight_map\":{%s}}", map);
    io_write_bytes(io_join(dir, "model.safetensors.index.json"), text, strlen(text));
}

#define GOOD_MAP                                                                                   \
    "\"a.weight\":\"model-00001-of-00002.safetensors\","                                           \
    "\"b.weight\":\"model-00001-of-00002.safetensors\","                                           \
    "\"c.weight\":\"model-00002-of-00002.safetensors\","                                           \
    "\"d.ids\":\"model-00002-of-00002.safetensors\","                                              \
    "\"e.empty\":\"model-00002-of-00002.safetensors\""

static void test_sharded(const char *root) {
    char dir[4096];
    snprintf(dir, sizeof dir, "%s", io_join(root, "sharded"));
    mkdir(dir, 0755);
    write_shards(dir);
    write_index(dir, GOOD_MAP);

    tp_st_model *m = NULL;
    tp_error err;
    tp_status st = tp_st_open(dir, &m, &err);
    CHECK_MSG(st == TP_OK, "%s", err.message);
    if (st == TP_OK) {
        CHECK_EQ_INT(tp_st_count(m), 5);
        CHECK_EQ_INT(tp_st_file_count(m), 2);
        CHECK_STR(tp_st_at(m, 0)->name, "a.weight");
        CHECK_STR(tp_st_at(m, 4)->name, "e.empty");
        const tp_st_tensor *a = tp_st_find(m, "a.weight");
        const tp_st_tensor *b = tp_st_find(m, "b.weight");
        const tp_st_tensor *c = tp_st_find(m, "c.weight");
        const tp_st_tensor *d = tp_st_find(m, "d.ids");
        const tp_st_tensor *e = tp_st_find(m, "e.empty");
        CHECK(a && b && c && d && e);
        CHECK(tp_st_find(m, "zzz") == NULL && tp_st_find(m, "") == NULL);
        if (a && b && c && d && e) {
            CHECK(strstr(a->file, "model-00001-of-00002") != NULL);
            CHECK(strstr(c->file, "model-00002-of-00002") != NULL);
            float *v = NULL;
            CHECK(tp_st_to_f32(a, &v, &err) == TP_OK);
            CHECK(v && v[0] == 1.0f && v[1] == -2.5f && v[2] == 0.125f && v[3] == 3e10f);
            free(v);
            CHECK(tp_st_to_f32(b, &v, &err) == TP_OK);
            CHECK(v && v[0] == 1.0f && v[1] == -2.0f && v[2] == 0.5f);
            free(v);
            CHECK(tp_st_to_f32(c, &v, &err) == TP_OK);
            CHECK(v && v[0] == 1.5f && v[1] == -0.25f);
            free(v);
            /* I64 scalar: metadata only */
            CHECK(d->dtype == TP_DTYPE_I64 && d->n_dims == 0 && d->n_elems == 1 && d->n_bytes == 8);
            int64_t id;
            memcpy(&id, d->data, 8);
            CHECK_EQ_INT(id, 151645);
            CHECK(tp_st_to_f32(d, &v, &err) == TP_ERR_FORMAT && v == NULL);
            CHECK(io_contains(err.message, "d.ids") && io_contains(err.message, "I64"));
            CHECK(e->n_elems == 0 && e->n_bytes == 0 && e->n_dims == 2);
            /* tp_st_get */
            const tp_st_tensor *g = NULL;
            const int64_t s22[2] = {2, 2}, s23[2] = {2, 3}, sany[2] = {-1, 2};
            CHECK(tp_st_get(m, "a.weight", 2, s22, &g, &err) == TP_OK && g == a);
            CHECK(tp_st_get(m, "a.weight", 2, sany, &g, &err) == TP_OK && g == a);
            CHECK(tp_st_get(m, "a.weight", -1, NULL, &g, &err) == TP_OK && g == a);
            CHECK(tp_st_get(m, "a.weight", 2, s23, &g, &err) == TP_ERR_FORMAT && g == NULL);
            CHECK_MSG(io_contains(err.message, "a.weight") &&
                          io_contains(err.message, "shape [2, 2], expected [2, 3]") &&
                          io_contains(err.message, "model-00001-of-00002.safetensors"),
                      "%s", err.message);
            CHECK(tp_st_get(m, "a.weight", 1, s22, &g, &err) == TP_ERR_FORMAT);
            CHECK(tp_st_get(m, "nope", 1, s22, &g, &err) == TP_ERR_NOT_FOUND);
            CHECK(io_contains(err.message, "nope") && io_contains(err.message, "sharded"));
            CHECK(tp_st_get(m, "d.ids", -1, NULL, &g, &err) == TP_ERR_FORMAT);
        }
        tp_st_close(m);
    }
    /* the index path itself works too */
    st = tp_st_open(io_join(dir, "model.safetensors.index.json"), &m, &err);
    CHECK_MSG(st == TP_OK, "%s", err.message);
    if (st == TP_OK)
        tp_st_close(m);

    /* index -> missing shard file */
    write_index(dir, GOOD_MAP ",\"f\":\"model-00003-of-00003.safetensors\"");
    expect_error(dir, "model.safetensors.index.json", TP_ERR_NOT_FOUND,
                 "model-00003-of-00003.safetensors", "cannot open");
    /* index -> tensor not in its shard */
    write_index(dir, GOOD_MAP ",\"zz.weight\":\"model-00001-of-00002.safetensors\"");
    expect_error(dir, "model.safetensors.index.json", TP_ERR_FORMAT, "tensor 'zz.weight'",
                 "does not contain it");
    /* index -> tensor in the other shard */
    write_index(dir, "\"a.weight\":\"model-00002-of-00002.safetensors\","
                     "\"c.weight\":\"model-00001-of-00002.safetensors\"");
    expect_error(dir, "model.safetensors.index.json", TP_ERR_FORMAT, "tensor 'a.weight'",
                 "it is in");
    /* index with a path outside the folder, a non-string, no weight_map, bad JSON */
    write_index(dir, "\"a.weight\":\"../model-00001-of-00002.safetensors\"");
    expect_error(dir, "model.safetensors.index.json", TP_ERR_FORMAT, "'a.weight'", "relative");
    write_index(dir, "\"a.weight\":7");
    expect_error(dir, "model.safetensors.index.json", TP_ERR_FORMAT, "'a.weight'", "not a string");
    write_index(dir, "");
    expect_error(dir, "model.safetensors.index.json", TP_ERR_FORMAT, "weight_map is empty", NULL);
    io_write_bytes(io_join(dir, "model.safetensors.index.json"), "{\"metadata\":{}}", 15);
    expect_error(dir, "model.safetensors.index.json", TP_ERR_FORMAT, "weight_map", NULL);
    const char *bad_json = "{\n  \"weight_map\": {\n    , \n  }\n}\n";
    io_write_bytes(io_join(dir, "model.safetensors.index.json"), bad_json, strlen(bad_json));
    expect_error(dir, "model.safetensors.index.json", TP_ERR_FORMAT, "malformed JSON", "line 3,");
    /* the same tensor in two shards */
    io_write_st(io_join(dir, "model-00002-of-00002.safetensors"),
                "{\"a.weight\":{\"dtype\":\"F32\",\"shape\":[1],\"data_offsets\":[0,4]}}", 0, NULL,
                4);
    write_index(dir, "\"a.weight\":\"model-00001-of-00002.safetensors\","
                     "\"b.weight\":\"model-00002-of-00002.safetensors\"");
    expect_error(dir, "model-00001-of-00002.safetensors", TP_ERR_FORMAT, "'a.weight'", "two files");
    /* a corrupt shard: the error names the index and the shard */
    io_write_st(io_join(dir, "model-00002-of-00002.safetensors"), "{\"x\":1}", 0, NULL, 0);
    write_index(dir, GOOD_MAP);
    expect_error(dir, "model-00002-of-00002.safetensors", TP_ERR_FORMAT, "tensor 'x'",
                 "model.safetensors.index.json");
}

/* ---- mutation fuzz: corrupted real headers never crash ---- */

static uint64_t fuzz_rng(uint64_t *s) {
    *s ^= *s << 13;
    *s ^= *s >> 7;
    *s ^= *s << 17;
    return *s;
}

static void test_fuzz(const char *dir) {
    char src[4096];
    snprintf(src, sizeof src, "%s",
             tp_test_data("golden/modernbert_seqcls_cls_bias/model.safetensors"));
    FILE *f = fopen(src, "rb");
    CHECK(f != NULL);
    if (!f)
        return;
    static unsigned char orig[1 << 18], buf[1 << 18];
    size_t n = fread(orig, 1, sizeof orig, f);
    fclose(f);
    uint64_t hl = 0;
    for (int i = 7; i >= 0; i--)
        hl = hl << 8 | orig[i];
    CHECK(hl < n);
    char *p = io_join(dir, "fuzz.safetensors");
    char path[4096];
    snprintf(path, sizeof path, "%s", p);
    uint64_t seed = 0x2545F4914F6CDD1Dull;
    int n_ok = 0, n_err = 0;
    static const char pool[] = "{}[]\",:0123456789-.eE\"FBU e\xff";
    for (int it = 0; it < 250; it++) {
        memcpy(buf, orig, n);
        size_t len = n;
        int kind = (int)(fuzz_rng(&seed) % 4);
        int flips = 1 + (int)(fuzz_rng(&seed) % 4);
        for (int k = 0; k < flips; k++) {
            size_t at;
            if (kind == 0) /* the length field */
                at = fuzz_rng(&seed) % 8;
            else /* the JSON header */
                at = 8 + fuzz_rng(&seed) % hl;
            if (kind == 2)
                buf[at] = (unsigned char)pool[fuzz_rng(&seed) % (sizeof pool - 1)];
            else
                buf[at] ^= (unsigned char)(1u << (fuzz_rng(&seed) % 8));
        }
        if (kind == 3) /* and cut the file somewhere */
            len = (size_t)(fuzz_rng(&seed) % n);
        io_write_bytes(path, buf, len);
        tp_st_model *m = NULL;
        tp_error err;
        tp_error_clear(&err);
        tp_status st = tp_st_open(path, &m, &err);
        if (st == TP_OK) {
            n_ok++;
            /* every byte of every tensor is readable */
            unsigned sum = 0;
            for (size_t i = 0; i < tp_st_count(m); i++) {
                const tp_st_tensor *t = tp_st_at(m, i);
                for (size_t b = 0; b < t->n_bytes; b++)
                    sum += ((const unsigned char *)t->data)[b];
            }
            (void)sum;
            tp_st_close(m);
        } else {
            n_err++;
            CHECK(m == NULL);
            CHECK_MSG(io_contains(err.message, "fuzz.safetensors"), "%s", err.message);
        }
    }
    CHECK(n_err > 150); /* most mutations must be caught */
    printf("fuzz: %d corrupted files rejected, %d still valid\n", n_err, n_ok);
}

/* Headers that end exactly on a page boundary with no data after them: the
 * parser must not read past the mapping (valid, and an unterminated string). */
static void test_page_end(const char *dir) {
    static char h[4089];
    const char *meta = "{\"__metadata__\":{\"format\":\"pt\"}}";
    memset(h, ' ', 4088);
    memcpy(h, meta, strlen(meta));
    h[4088] = 0;
    char *p = io_join(dir, "page_ok.safetensors");
    io_write_st(p, h, 0, NULL, 0);
    tp_st_model *m = NULL;
    tp_error err;
    CHECK_MSG(tp_st_open(p, &m, &err) == TP_OK, "%s", err.message);
    CHECK(m && tp_st_count(m) == 0);
    tp_st_close(m);
    memset(h, 'a', 4088);
    memcpy(h, "{\"", 2);
    p = io_join(dir, "page_cut.safetensors");
    io_write_st(p, h, 0, NULL, 0);
    expect_error(p, "page_cut.safetensors", TP_ERR_FORMAT, "not valid JSON", NULL);
    const char *num = "{\"a\":{\"dtype\":\"F32\",\"shape\":[1],\"data_offsets\":[0,";
    memcpy(h, num, strlen(num));
    memset(h + strlen(num), '4', 4088 - strlen(num));
    p = io_join(dir, "page_num.safetensors");
    io_write_st(p, h, 0, NULL, 0);
    expect_error(p, "page_num.safetensors", TP_ERR_FORMAT, "not valid JSON", NULL);
}

static void test_args(void) {
    tp_error err;
    tp_st_model *m = NULL;
    CHECK(tp_st_open(NULL, &m, &err) == TP_ERR_INVALID_ARGUMENT);
    CHECK(tp_st_open("", &m, &err) == TP_ERR_INVALID_ARGUMENT);
    CHECK(tp_st_open("x", NULL, &err) == TP_ERR_INVALID_ARGUMENT);
    CHECK(tp_st_count(NULL) == 0 && tp_st_at(NULL, 0) == NULL && tp_st_find(NULL, "a") == NULL);
    tp_st_close(NULL);
    CHECK(tp_st_to_f32(NULL, NULL, &err) == TP_ERR_INVALID_ARGUMENT);
}

int main(void) {
    const char *tmp = io_tmpdir();
    char dir[256];
    snprintf(dir, sizeof dir, "%s", tmp);
    test_golden();
    test_corpus(dir);
    test_sharded(dir);
    test_fuzz(dir);
    test_page_end(dir);
    test_args();
    io_rmtree(dir);
    return tp_test_exit();
}
