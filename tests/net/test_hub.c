/*
 * test_hub.c — tp_model_resolve against a fake hub on 127.0.0.1 (fake_hub.c):
 * the cache layout it writes, local-first lookups without network, offline
 * mode, resumed downloads (in one call and across calls), a corrupted file
 * rejected, gated 401/403 and 404 messages, sharded checkpoints, a renamed
 * repo, pinned revisions, an unreachable host, and the progress callback.
 * Data: generated files always; the tiny golden ModernBERT model with the real
 * ModernBERT tokenizer when ../shared is present.
 */
#include "fake_hub.h"
#include "net/net.h"
#include "test_util.h"

#include <arpa/inet.h>
#include <dirent.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <unistd.h>

static fake_hub hub;
static char tmp_root[256];
static char endpoint[64];
static int cache_counter;

/* A fresh cache folder for each scenario. */
static void new_cache(char *out, size_t n) {
    snprintf(out, n, "%s/cache%d", tmp_root, cache_counter++);
}

static tp_resolve_params params_for(const char *cache) {
    tp_resolve_params p = tp_resolve_default_params();
    p.endpoint = endpoint;
    p.cache_dir = cache;
    p.connect_timeout_s = 5;
    return p;
}

static unsigned char *read_all(const char *path, size_t *n) {
    FILE *f = fopen(path, "rb");
    if (!f)
        return NULL;
    fseek(f, 0, SEEK_END);
    long len = ftell(f);
    fseek(f, 0, SEEK_SET);
    unsigned char *b = malloc(len > 0 ? (size_t)len : 1);
    if (b && fread(b, 1, (size_t)len, f) != (size_t)len) {
        free(b);
        b = NULL;
    }
    fclose(f);
    *n = (size_t)len;
    return b;
}

/* The snapshot file has exactly the fake hub's bytes and is a relative link
 * into blobs/ named by the expected ETag. */
static void check_file(const char *snap, const fh_file *f) {
    char p[1024], target[1024];
    snprintf(p, sizeof p, "%s/%s", snap, f->path);
    size_t n = 0;
    unsigned char *b = read_all(p, &n);
    CHECK_MSG(b != NULL, "%s missing", p);
    if (b) {
        CHECK_MSG(n == f->size && !memcmp(b, f->data, n), "%s differs from the hub's", p);
        free(b);
    }
    ssize_t k = readlink(p, target, sizeof target - 1);
    CHECK_MSG(k > 0, "%s is not a symlink", p);
    if (k > 0) {
        target[k] = '\0';
        char want[256];
        snprintf(want, sizeof want, "../../blobs/%s", f->lfs ? f->sha256 : f->etag);
        CHECK_MSG(!strcmp(target, want), "%s -> %s, want %s", p, target, want);
    }
}

static char xbuf[1024];
static bool lexists(const char *p) {
    struct stat st;
    return lstat(p, &st) == 0;
}
/* EXISTS("fmt", ...): does the formatted path exist (links not followed)? */
#define EXISTS(...) (snprintf(xbuf, sizeof xbuf, __VA_ARGS__), lexists(xbuf))

static int count_dir(const char *path, const char *suffix) {
    DIR *d = opendir(path);
    if (!d)
        return 0;
    int n = 0;
    struct dirent *e;
    while ((e = readdir(d)))
        if (e->d_name[0] != '.' &&
            (!suffix || (strlen(e->d_name) > strlen(suffix) &&
                         !strcmp(e->d_name + strlen(e->d_name) - strlen(suffix), suffix))))
            n++;
    closedir(d);
    return n;
}

typedef struct progress_log {
    int calls;
    unsigned long long last_done, last_total;
    char last_file[256];
    int cancel_after; /* > 0: ask to cancel at this call */
} progress_log;

static int on_progress(const char *file, uint64_t done, uint64_t total, void *user) {
    progress_log *l = user;
    l->calls++;
    l->last_done = done;
    l->last_total = total;
    snprintf(l->last_file, sizeof l->last_file, "%s", file);
    return l->cancel_after > 0 && l->calls >= l->cancel_after;
}

static const fh_file *hub_file(const char *repo, const char *path) {
    for (size_t i = 0; i < hub.n_files; i++)
        if (!strcmp(hub.files[i].repo, repo) && !strcmp(hub.files[i].path, path))
            return &hub.files[i];
    return NULL;
}

static fh_file *mutable_file(const char *repo, const char *path) {
    return (fh_file *)hub_file(repo, path);
}

/* Deterministic pseudo-random bytes (content does not matter to downloads). */
static unsigned char *make_bytes(size_t n, unsigned seed) {
    unsigned char *b = malloc(n);
    uint32_t x = seed * 2654435761u + 1;
    for (size_t i = 0; i < n && b; i++) {
        x ^= x << 13;
        x ^= x >> 17;
        x ^= x << 5;
        b[i] = (unsigned char)x;
    }
    return b;
}

static void add_generated_repos(void) {
    const char *cfg = "{\"architectures\": [\"ModernBertForMaskedLM\"], \"model_type\": "
                      "\"modernbert\"}\n";
    const char *tcfg = "{\"model_max_length\": 64}\n";
    size_t tok_n = 150000, w_n = 300000;
    unsigned char *tok = make_bytes(tok_n, 1), *w = make_bytes(w_n, 2);
    fh_add(&hub, "tiny/enc", "config.json", cfg, strlen(cfg), false);
    fh_add(&hub, "tiny/enc", "tokenizer.json", tok, tok_n, false);
    fh_add(&hub, "tiny/enc", "tokenizer_config.json", tcfg, strlen(tcfg), false);
    fh_add(&hub, "tiny/enc", "model.safetensors", w, w_n, true);
    /* same files under other names, for the fault scenarios */
    const char *more[] = {"tiny/resume", "tiny/resume2", "tiny/corrupt", "tiny/gated"};
    for (size_t r = 0; r < 4; r++) {
        fh_add(&hub, more[r], "config.json", cfg, strlen(cfg), false);
        fh_add(&hub, more[r], "tokenizer.json", tok, tok_n, false);
        fh_add(&hub, more[r], "model.safetensors", w, w_n, true);
    }
    /* no tokenizer.json: a required file missing */
    fh_add(&hub, "tiny/notok", "config.json", cfg, strlen(cfg), false);
    fh_add(&hub, "tiny/notok", "model.safetensors", w, w_n, true);
    /* sharded weights */
    const char *index = "{\"metadata\": {\"total_size\": 200000}, \"weight_map\": {"
                        "\"a.weight\": \"model-00001-of-00002.safetensors\", "
                        "\"b.weight\": \"model-00002-of-00002.safetensors\", "
                        "\"c.weight\": \"model-00001-of-00002.safetensors\"}}";
    unsigned char *s1 = make_bytes(120000, 3), *s2 = make_bytes(80000, 4);
    fh_add(&hub, "tiny/sharded", "config.json", cfg, strlen(cfg), false);
    fh_add(&hub, "tiny/sharded", "tokenizer.json", tok, 1000, false);
    fh_add(&hub, "tiny/sharded", "model.safetensors.index.json", index, strlen(index), false);
    fh_add(&hub, "tiny/sharded", "model-00001-of-00002.safetensors", s1, 120000, true);
    fh_add(&hub, "tiny/sharded", "model-00002-of-00002.safetensors", s2, 80000, true);
    /* an index pointing outside the snapshot */
    const char *evil = "{\"weight_map\": {\"a\": \"../../../x.safetensors\"}}";
    fh_add(&hub, "tiny/evil", "config.json", cfg, strlen(cfg), false);
    fh_add(&hub, "tiny/evil", "tokenizer.json", tok, 1000, false);
    fh_add(&hub, "tiny/evil", "model.safetensors.index.json", evil, strlen(evil), false);
    free(tok);
    free(w);
    free(s1);
    free(s2);
    mutable_file("tiny/corrupt", "model.safetensors")->corrupt = true;
    snprintf(hub.gated_repo, sizeof hub.gated_repo, "tiny/gated");
    snprintf(hub.token, sizeof hub.token, "hf_secret123");
    snprintf(hub.renamed_from, sizeof hub.renamed_from, "old/enc");
    snprintf(hub.renamed_to, sizeof hub.renamed_to, "tiny/enc");
}

static void test_basic_and_local_first(void) {
    char cache[512], snap[600], rd[700];
    new_cache(cache, sizeof cache);
    tp_resolve_params p = params_for(cache);
    progress_log log = {0};
    p.progress = on_progress;
    p.progress_user = &log;
    char *path = NULL;
    tp_error err;
    tp_status s = tp_model_resolve("tiny/enc", &p, &path, &err);
    CHECK_MSG(s == TP_OK, "%s", err.message);
    if (s != TP_OK)
        return;
    snprintf(snap, sizeof snap, "%s/models--tiny--enc/snapshots/%s", cache, hub.commit);
    CHECK_STR(path, snap);
    const char *files[] = {"config.json", "tokenizer.json", "tokenizer_config.json",
                           "model.safetensors"};
    for (size_t i = 0; i < 4; i++)
        check_file(snap, hub_file("tiny/enc", files[i]));
    snprintf(rd, sizeof rd, "%s/models--tiny--enc", cache);
    /* refs/main holds the commit */
    char ref[800];
    snprintf(ref, sizeof ref, "%s/refs/main", rd);
    size_t n;
    char *c = (char *)read_all(ref, &n);
    CHECK(c && n == 40 && !memcmp(c, hub.commit, 40));
    free(c);
    /* optional files the hub lacks are remembered as absent */
    CHECK(EXISTS("%s/.no_exist/%s/special_tokens_map.json", rd, hub.commit));
    CHECK(EXISTS("%s/.no_exist/%s/chat_template.jinja", rd, hub.commit));
    CHECK(EXISTS("%s/.no_exist/%s/generation_config.json", rd, hub.commit));
    char blobs[800];
    snprintf(blobs, sizeof blobs, "%s/blobs", rd);
    CHECK_EQ_INT(count_dir(blobs, NULL), 4);
    CHECK_EQ_INT(count_dir(blobs, ".incomplete"), 0);
    /* progress: the last report of the last file is complete */
    CHECK(log.calls > 0);
    CHECK_STR(log.last_file, "model.safetensors");
    CHECK_EQ_INT(log.last_total, 300000);
    CHECK_EQ_INT(log.last_done, 300000);
    free(path);

    /* local first: a second resolve makes no request at all */
    int before = fh_requests(&hub);
    s = tp_model_resolve("tiny/enc", &p, &path, &err);
    CHECK_MSG(s == TP_OK, "%s", err.message);
    CHECK_EQ_INT(fh_requests(&hub), before);
    if (s == TP_OK)
        CHECK_STR(path, snap);
    free(path);
    /* also with HF_HUB_OFFLINE=1 and with the commit as revision */
    setenv("HF_HUB_OFFLINE", "1", 1);
    s = tp_model_resolve("tiny/enc", &p, &path, &err);
    CHECK_MSG(s == TP_OK, "%s", err.message);
    free(path);
    char id[128];
    snprintf(id, sizeof id, "tiny/enc@%s", hub.commit);
    s = tp_model_resolve(id, &p, &path, &err);
    CHECK_MSG(s == TP_OK, "%s", err.message);
    if (s == TP_OK)
        CHECK_STR(path, snap);
    free(path);
    unsetenv("HF_HUB_OFFLINE");
    CHECK_EQ_INT(fh_requests(&hub), before);

    /* the cache is found through HF_HUB_CACHE and through HF_HOME/hub too */
    tp_resolve_params q = params_for(NULL);
    q.offline = true;
    setenv("HF_HUB_CACHE", cache, 1);
    s = tp_model_resolve("tiny/enc", &q, &path, &err);
    CHECK_MSG(s == TP_OK, "HF_HUB_CACHE: %s", err.message);
    free(path);
    unsetenv("HF_HUB_CACHE");
    char home[600], hubdir[700];
    snprintf(home, sizeof home, "%s/hfhome", tmp_root);
    snprintf(hubdir, sizeof hubdir, "%s/hub", home);
    mkdir(home, 0755);
    CHECK(symlink(cache, hubdir) == 0);
    setenv("HF_HOME", home, 1);
    s = tp_model_resolve("tiny/enc", &q, &path, &err);
    CHECK_MSG(s == TP_OK, "HF_HOME: %s", err.message);
    free(path);
    snprintf(home, sizeof home, "%s/empty_home", tmp_root);
    setenv("HF_HOME", home, 1);
}

static void test_offline_missing(void) {
    char cache[512];
    new_cache(cache, sizeof cache);
    tp_resolve_params p = params_for(cache);
    p.offline = true;
    char *path = NULL;
    tp_error err;
    int before = fh_requests(&hub);
    tp_status s = tp_model_resolve("tiny/enc", &p, &path, &err);
    CHECK_EQ_INT(s, TP_ERR_NOT_FOUND);
    CHECK_MSG(strstr(err.message, "offline") && strstr(err.message, "tiny/enc"), "%s", err.message);
    CHECK(path == NULL);
    setenv("HF_HUB_OFFLINE", "true", 1);
    p.offline = false;
    s = tp_model_resolve("tiny/enc", &p, &path, &err);
    CHECK_EQ_INT(s, TP_ERR_NOT_FOUND);
    CHECK(strstr(err.message, "HF_HUB_OFFLINE") != NULL);
    unsetenv("HF_HUB_OFFLINE");
    CHECK_EQ_INT(fh_requests(&hub), before);
}

static void test_resume(void) {
    char cache[512], blob[800];
    /* in one call: the connection drops once, the client resumes with a Range */
    new_cache(cache, sizeof cache);
    tp_resolve_params p = params_for(cache);
    pthread_mutex_lock(&hub.mu);
    hub.drop_after = 100000;
    hub.drop_count = 1;
    hub.n_range = 0;
    pthread_mutex_unlock(&hub.mu);
    char *path = NULL;
    tp_error err;
    tp_status s = tp_model_resolve("tiny/resume", &p, &path, &err);
    CHECK_MSG(s == TP_OK, "%s", err.message);
    pthread_mutex_lock(&hub.mu);
    /* tokenizer.json (150 kB) is the first body: it is the one cut at 100 kB */
    CHECK_EQ_INT(hub.n_range, 1);
    CHECK_EQ_INT(hub.last_range_start, 100000);
    pthread_mutex_unlock(&hub.mu);
    if (s == TP_OK) {
        check_file(path, hub_file("tiny/resume", "tokenizer.json"));
        check_file(path, hub_file("tiny/resume", "model.safetensors"));
    }
    free(path);

    /* across calls: every attempt is cut, the call fails and keeps the part ... */
    new_cache(cache, sizeof cache);
    p = params_for(cache);
    p.files = TP_RESOLVE_WEIGHTS;
    pthread_mutex_lock(&hub.mu);
    hub.drop_after = 10000;
    hub.drop_count = 1000;
    hub.n_range = 0;
    pthread_mutex_unlock(&hub.mu);
    s = tp_model_resolve("tiny/resume2", &p, &path, &err);
    CHECK_EQ_INT(s, TP_ERR_NETWORK);
    CHECK_MSG(strstr(err.message, "resume") && strstr(err.message, "model.safetensors"), "%s",
              err.message);
    const fh_file *w = hub_file("tiny/resume2", "model.safetensors");
    snprintf(blob, sizeof blob, "%s/models--tiny--resume2/blobs/%s.incomplete", cache, w->sha256);
    struct stat st;
    CHECK(stat(blob, &st) == 0 && st.st_size > 0 && st.st_size < (off_t)w->size);
    long kept = stat(blob, &st) == 0 ? (long)st.st_size : -1;
    /* ... and the next call continues from there */
    pthread_mutex_lock(&hub.mu);
    hub.drop_count = 0;
    hub.n_range = 0;
    pthread_mutex_unlock(&hub.mu);
    s = tp_model_resolve("tiny/resume2", &p, &path, &err);
    CHECK_MSG(s == TP_OK, "%s", err.message);
    pthread_mutex_lock(&hub.mu);
    CHECK_EQ_INT(hub.n_range, 1);
    CHECK_EQ_INT(hub.last_range_start, kept);
    pthread_mutex_unlock(&hub.mu);
    if (s == TP_OK)
        check_file(path, w);
    CHECK(stat(blob, &st) != 0);
    free(path);
    hub.drop_after = 0;
}

static void test_corrupt(void) {
    char cache[512], dir[800];
    new_cache(cache, sizeof cache);
    tp_resolve_params p = params_for(cache);
    char *path = NULL;
    tp_error err;
    tp_status s = tp_model_resolve("tiny/corrupt", &p, &path, &err);
    CHECK_EQ_INT(s, TP_ERR_FORMAT);
    CHECK_MSG(strstr(err.message, "corrupt") && strstr(err.message, "sha256") &&
                  strstr(err.message, "model.safetensors"),
              "%s", err.message);
    CHECK(path == NULL);
    const fh_file *w = hub_file("tiny/corrupt", "model.safetensors");
    snprintf(dir, sizeof dir, "%s/models--tiny--corrupt/blobs", cache);
    CHECK(!EXISTS("%s/%s", dir, w->sha256));
    CHECK_EQ_INT(count_dir(dir, ".incomplete"), 0);
    snprintf(dir, sizeof dir, "%s/models--tiny--corrupt/snapshots", cache);
    CHECK(!EXISTS("%s/%s/model.safetensors", dir, hub.commit));
    /* the hub is fixed: the same cache now completes */
    mutable_file("tiny/corrupt", "model.safetensors")->corrupt = false;
    s = tp_model_resolve("tiny/corrupt", &p, &path, &err);
    CHECK_MSG(s == TP_OK, "%s", err.message);
    if (s == TP_OK)
        check_file(path, w);
    free(path);
}

static void test_gated(void) {
    char cache[512];
    new_cache(cache, sizeof cache);
    tp_resolve_params p = params_for(cache);
    char *path = NULL;
    tp_error err;
    tp_status s = tp_model_resolve("tiny/gated", &p, &path, &err);
    CHECK_EQ_INT(s, TP_ERR_NETWORK);
    CHECK_MSG(strstr(err.message, "401") && strstr(err.message, "gated") &&
                  strstr(err.message, "HF_TOKEN") && strstr(err.message, "licence") &&
                  strstr(err.message, "tiny/gated"),
              "%s", err.message);
    p.token = "hf_wrong";
    s = tp_model_resolve("tiny/gated", &p, &path, &err);
    CHECK_EQ_INT(s, TP_ERR_NETWORK);
    CHECK_MSG(strstr(err.message, "403") && strstr(err.message, "gated") &&
                  strstr(err.message, "token"),
              "%s", err.message);
    p.token = "hf_secret123";
    s = tp_model_resolve("tiny/gated", &p, &path, &err);
    CHECK_MSG(s == TP_OK, "%s", err.message);
    free(path);
    /* the token from $HF_TOKEN, then from the token file */
    new_cache(cache, sizeof cache);
    p = params_for(cache);
    p.files = TP_RESOLVE_CONFIG;
    setenv("HF_TOKEN", "hf_secret123", 1);
    s = tp_model_resolve("tiny/gated", &p, &path, &err);
    CHECK_MSG(s == TP_OK, "HF_TOKEN: %s", err.message);
    free(path);
    unsetenv("HF_TOKEN");
    new_cache(cache, sizeof cache);
    p = params_for(cache);
    p.files = TP_RESOLVE_CONFIG;
    char home[600], tokf[700];
    snprintf(home, sizeof home, "%s/home_with_token", tmp_root);
    mkdir(home, 0755);
    snprintf(tokf, sizeof tokf, "%s/token", home);
    FILE *f = fopen(tokf, "w");
    if (f) {
        fputs("hf_secret123\n", f);
        fclose(f);
    }
    setenv("HF_HOME", home, 1);
    s = tp_model_resolve("tiny/gated", &p, &path, &err);
    CHECK_MSG(s == TP_OK, "token file: %s", err.message);
    pthread_mutex_lock(&hub.mu);
    CHECK_STR(hub.last_auth, "Bearer hf_secret123");
    pthread_mutex_unlock(&hub.mu);
    free(path);
    snprintf(home, sizeof home, "%s/empty_home", tmp_root);
    setenv("HF_HOME", home, 1);
}

static void test_not_found(void) {
    char cache[512];
    new_cache(cache, sizeof cache);
    tp_resolve_params p = params_for(cache);
    char *path = NULL;
    tp_error err;
    tp_status s = tp_model_resolve("tiny/notok", &p, &path, &err);
    CHECK_EQ_INT(s, TP_ERR_NOT_FOUND);
    CHECK_MSG(strstr(err.message, "tokenizer.json") && strstr(err.message, "tiny/notok") &&
                  strstr(err.message, "404"),
              "%s", err.message);
    /* without the tokenizer in the mask the same repo is fine */
    p.files = TP_RESOLVE_CONFIG | TP_RESOLVE_WEIGHTS;
    s = tp_model_resolve("tiny/notok", &p, &path, &err);
    CHECK_MSG(s == TP_OK, "%s", err.message);
    free(path);
    p.files = TP_RESOLVE_ALL;
    s = tp_model_resolve("nobody/nothing", &p, &path, &err);
    CHECK_EQ_INT(s, TP_ERR_NOT_FOUND);
    CHECK_MSG(strstr(err.message, "repository nobody/nothing not found"), "%s", err.message);
    s = tp_model_resolve("tiny/enc@v9", &p, &path, &err);
    CHECK_EQ_INT(s, TP_ERR_NOT_FOUND);
    CHECK_MSG(strstr(err.message, "revision v9"), "%s", err.message);
    s = tp_model_resolve("a/b/c", &p, &path, &err);
    CHECK_EQ_INT(s, TP_ERR_NOT_FOUND);
    CHECK_MSG(strstr(err.message, "a/b/c") && strstr(err.message, "folder"), "%s", err.message);
    s = tp_model_resolve("tiny/evil", &p, &path, &err);
    CHECK_EQ_INT(s, TP_ERR_FORMAT);
    CHECK_MSG(strstr(err.message, "weight_map"), "%s", err.message);
    CHECK_EQ_INT(tp_model_resolve(NULL, &p, &path, &err), TP_ERR_INVALID_ARGUMENT);
    CHECK_EQ_INT(tp_model_resolve("", &p, &path, &err), TP_ERR_INVALID_ARGUMENT);
    /* a local folder is returned as is, no network */
    int before = fh_requests(&hub);
    s = tp_model_resolve(tmp_root, &p, &path, &err);
    CHECK_EQ_INT(s, TP_OK);
    if (s == TP_OK)
        CHECK_STR(path, tmp_root);
    free(path);
    CHECK_EQ_INT(fh_requests(&hub), before);
}

static void test_sharded_renamed_cancel(void) {
    char cache[512];
    new_cache(cache, sizeof cache);
    tp_resolve_params p = params_for(cache);
    char *path = NULL;
    tp_error err;
    tp_status s = tp_model_resolve("tiny/sharded", &p, &path, &err);
    CHECK_MSG(s == TP_OK, "%s", err.message);
    if (s == TP_OK) {
        check_file(path, hub_file("tiny/sharded", "model.safetensors.index.json"));
        check_file(path, hub_file("tiny/sharded", "model-00001-of-00002.safetensors"));
        check_file(path, hub_file("tiny/sharded", "model-00002-of-00002.safetensors"));
    }
    free(path);
    /* complete now: a second call is local */
    int before = fh_requests(&hub);
    s = tp_model_resolve("tiny/sharded", &p, &path, &err);
    CHECK_MSG(s == TP_OK, "%s", err.message);
    CHECK_EQ_INT(fh_requests(&hub), before);
    free(path);

    /* a renamed repo redirects to its new name (files stored under the asked name) */
    s = tp_model_resolve("old/enc", &p, &path, &err);
    CHECK_MSG(s == TP_OK, "%s", err.message);
    if (s == TP_OK) {
        CHECK(strstr(path, "models--old--enc/snapshots/") != NULL);
        check_file(path, hub_file("tiny/enc", "model.safetensors"));
    }
    free(path);

    /* the progress callback cancels */
    new_cache(cache, sizeof cache);
    p = params_for(cache);
    progress_log log = {0};
    log.cancel_after = 1;
    p.progress = on_progress;
    p.progress_user = &log;
    s = tp_model_resolve("tiny/enc", &p, &path, &err);
    CHECK_EQ_INT(s, TP_ERR_CANCELLED);
    CHECK(path == NULL);
}

static void test_unreachable(void) {
    /* a port that nobody listens on */
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    struct sockaddr_in a;
    memset(&a, 0, sizeof a);
    a.sin_family = AF_INET;
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    socklen_t len = sizeof a;
    bind(fd, (struct sockaddr *)&a, sizeof a);
    getsockname(fd, (struct sockaddr *)&a, &len);
    int port = ntohs(a.sin_port);
    close(fd);
    char dead[64], cache[512];
    snprintf(dead, sizeof dead, "http://127.0.0.1:%d", port);
    new_cache(cache, sizeof cache);
    tp_resolve_params p = params_for(cache);
    p.endpoint = dead;
    char *path = NULL;
    tp_error err;
    tp_status s = tp_model_resolve("tiny/enc", &p, &path, &err);
    CHECK_EQ_INT(s, TP_ERR_NETWORK);
    CHECK_MSG(strstr(err.message, "127.0.0.1") && strstr(err.message, "config.json"), "%s",
              err.message);
    /* HF_ENDPOINT is honoured: the same failure through the environment */
    p.endpoint = NULL;
    setenv("HF_ENDPOINT", dead, 1);
    s = tp_model_resolve("tiny/enc", &p, &path, &err);
    CHECK_EQ_INT(s, TP_ERR_NETWORK);
    CHECK(strstr(err.message, dead + 7) != NULL);
    setenv("HF_ENDPOINT", endpoint, 1);
    s = tp_model_resolve("tiny/enc", &p, &path, &err);
    CHECK_MSG(s == TP_OK, "HF_ENDPOINT: %s", err.message);
    free(path);
    unsetenv("HF_ENDPOINT");
}

typedef struct conc_arg {
    const char *cache;
    tp_status status;
    char *path;
    char message[TP_ERROR_MESSAGE_MAX];
} conc_arg;

static void *conc_main(void *v) {
    conc_arg *a = v;
    tp_resolve_params p = params_for(a->cache);
    tp_error err;
    a->status = tp_model_resolve("tiny/sharded", &p, &a->path, &err);
    snprintf(a->message, sizeof a->message, "%s", err.message);
    return NULL;
}

/* Four threads resolve the same model into one empty cache at once: all
 * succeed with the same folder and intact files (the .incomplete lock, atomic
 * links and refs). */
static void test_concurrent(void) {
    char cache[512];
    new_cache(cache, sizeof cache);
    conc_arg a[4];
    pthread_t th[4];
    for (int i = 0; i < 4; i++) {
        memset(&a[i], 0, sizeof a[i]);
        a[i].cache = cache;
        pthread_create(&th[i], NULL, conc_main, &a[i]);
    }
    for (int i = 0; i < 4; i++)
        pthread_join(th[i], NULL);
    for (int i = 0; i < 4; i++) {
        CHECK_MSG(a[i].status == TP_OK, "thread %d: %s", i, a[i].message);
        if (a[i].status == TP_OK && a[0].path)
            CHECK_STR(a[i].path, a[0].path);
    }
    if (a[0].status == TP_OK) {
        check_file(a[0].path, hub_file("tiny/sharded", "model-00001-of-00002.safetensors"));
        check_file(a[0].path, hub_file("tiny/sharded", "model-00002-of-00002.safetensors"));
        char blobs[700];
        snprintf(blobs, sizeof blobs, "%s/models--tiny--sharded/blobs", cache);
        CHECK_EQ_INT(count_dir(blobs, ".incomplete"), 0);
    }
    for (int i = 0; i < 4; i++)
        free(a[i].path);
}

/* The tiny golden ModernBERT with the real ModernBERT tokenizer, byte for byte. */
static void test_golden_model(void) {
    const char *g = tp_test_shared_or_data("golden/modernbert_mlm");
    char gdir[1024], tdir[1024];
    if (!g) {
        printf(
            "SKIP: golden model scenario (no golden/modernbert_mlm in ../shared or tests/data)\n");
        return;
    }
    snprintf(gdir, sizeof gdir, "%s", g);
    const char *t = tp_test_shared_or_data("tokenizers/modernbert");
    if (!t) {
        printf(
            "SKIP: golden model scenario (no ModernBERT tokenizer in ../shared or tests/data)\n");
        return;
    }
    snprintf(tdir, sizeof tdir, "%s", t);
    char p1[1200];
    snprintf(p1, sizeof p1, "%s/config.json", gdir);
    fh_add_file(&hub, "answerdotai/ModernBERT-tiny", "config.json", p1, false);
    snprintf(p1, sizeof p1, "%s/model.safetensors", gdir);
    fh_add_file(&hub, "answerdotai/ModernBERT-tiny", "model.safetensors", p1, true);
    const char *tf[] = {"tokenizer.json", "tokenizer_config.json", "special_tokens_map.json"};
    for (size_t i = 0; i < 3; i++) {
        snprintf(p1, sizeof p1, "%s/%s", tdir, tf[i]);
        fh_add_file(&hub, "answerdotai/ModernBERT-tiny", tf[i], p1, false);
    }
    char cache[512];
    new_cache(cache, sizeof cache);
    tp_resolve_params p = params_for(cache);
    char *path = NULL;
    tp_error err;
    tp_status s = tp_model_resolve("answerdotai/ModernBERT-tiny", &p, &path, &err);
    CHECK_MSG(s == TP_OK, "%s", err.message);
    if (s == TP_OK) {
        check_file(path, hub_file("answerdotai/ModernBERT-tiny", "config.json"));
        check_file(path, hub_file("answerdotai/ModernBERT-tiny", "model.safetensors"));
        for (size_t i = 0; i < 3; i++)
            check_file(path, hub_file("answerdotai/ModernBERT-tiny", tf[i]));
    }
    free(path);
}

static void rm_rf(const char *path) {
    char cmd[600];
    snprintf(cmd, sizeof cmd, "rm -rf '%s'", path);
    if (system(cmd) != 0)
        fprintf(stderr, "warning: could not remove %s\n", path);
}

int main(void) {
    snprintf(tmp_root, sizeof tmp_root, "/tmp/tp_hub_XXXXXX");
    if (!mkdtemp(tmp_root)) {
        fprintf(stderr, "cannot create a temp folder\n");
        return 1;
    }
    /* keep the developer's own settings out of the test */
    char home[600];
    snprintf(home, sizeof home, "%s/empty_home", tmp_root);
    setenv("HF_HOME", home, 1);
    unsetenv("HF_TOKEN");
    unsetenv("HUGGING_FACE_HUB_TOKEN");
    unsetenv("HF_TOKEN_PATH");
    unsetenv("HF_HUB_OFFLINE");
    unsetenv("HF_HUB_CACHE");
    unsetenv("HF_ENDPOINT");
    unsetenv("XDG_CACHE_HOME");
    memset(&hub, 0, sizeof hub);
    add_generated_repos();
    if (fh_start(&hub) != 0) {
        printf("SKIP: cannot listen on 127.0.0.1\n");
        rm_rf(tmp_root);
        return 0;
    }
    snprintf(endpoint, sizeof endpoint, "http://127.0.0.1:%d", hub.port);

    test_basic_and_local_first();
    test_offline_missing();
    test_resume();
    test_corrupt();
    test_gated();
    test_not_found();
    test_sharded_renamed_cancel();
    test_unreachable();
    test_concurrent();
    test_golden_model();

    fh_stop(&hub);
    rm_rf(tmp_root);
    return tp_test_exit();
}
