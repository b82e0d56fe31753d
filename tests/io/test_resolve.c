/*
 * test_resolve.c — model folder resolution against a Hugging Face cache tree
 * built here in a temp folder: refs/main, a named branch, a commit given as the
 * revision, the HF_HUB_CACHE > HF_HOME > XDG_CACHE_HOME > HOME order, and the
 * NOT_FOUND messages (which must say where we looked).
 */
#include "io/resolve.h"
#include "io_test_util.h"

#define COMMIT_MAIN "0123456789abcdef0123456789abcdef01234567"
#define COMMIT_DEV "fedcba9876543210fedcba9876543210fedcba98"

static void mkdirs(const char *path) {
    char buf[4096];
    snprintf(buf, sizeof buf, "%s", path);
    for (char *p = buf + 1; *p; p++) {
        if (*p == '/') {
            *p = 0;
            mkdir(buf, 0755);
            *p = '/';
        }
    }
    mkdir(buf, 0755);
}

static void write_text(const char *path, const char *text) {
    io_write_bytes(path, text, strlen(text));
}

/* <cache>/models--Org--tiny-model/{refs/main, refs/dev, snapshots/<2 commits>} */
static void build_cache(const char *cache) {
    char p[4096];
    snprintf(p, sizeof p, "%s/models--Org--tiny-model/refs", cache);
    mkdirs(p);
    snprintf(p, sizeof p, "%s/models--Org--tiny-model/snapshots/" COMMIT_MAIN, cache);
    mkdirs(p);
    write_text(io_join(p, "config.json"), "{}");
    snprintf(p, sizeof p, "%s/models--Org--tiny-model/snapshots/" COMMIT_DEV, cache);
    mkdirs(p);
    snprintf(p, sizeof p, "%s/models--Org--tiny-model/refs/main", cache);
    write_text(p, COMMIT_MAIN); /* huggingface_hub writes no newline */
    snprintf(p, sizeof p, "%s/models--Org--tiny-model/refs/dev", cache);
    write_text(p, COMMIT_DEV "\n");
    /* a branch whose snapshot was never downloaded */
    snprintf(p, sizeof p, "%s/models--Org--tiny-model/refs/broken", cache);
    write_text(p, "1111111111111111111111111111111111111111");
    snprintf(p, sizeof p, "%s/models--Org--tiny-model/refs/empty", cache);
    write_text(p, "  \n");
    /* a legacy id without an organisation */
    snprintf(p, sizeof p, "%s/models--gpt2/refs", cache);
    mkdirs(p);
    write_text(io_join(p, "main"), COMMIT_MAIN);
    snprintf(p, sizeof p, "%s/models--gpt2/snapshots/" COMMIT_MAIN, cache);
    mkdirs(p);
}

static void expect_dir(const char *id, const char *want_suffix) {
    char *dir = NULL;
    tp_error err;
    tp_error_clear(&err);
    tp_status st = tp_resolve_local(id, &dir, &err);
    CHECK_MSG(st == TP_OK, "%s: %s", id, err.message);
    if (st == TP_OK) {
        size_t n = strlen(dir), k = strlen(want_suffix);
        CHECK_MSG(n >= k && strcmp(dir + n - k, want_suffix) == 0, "%s -> %s (want ...%s)", id, dir,
                  want_suffix);
        CHECK_MSG(tp_dir_exists(dir), "%s", dir);
    }
    free(dir);
}

static void expect_fail(const char *id, tp_status want, const char *n1, const char *n2) {
    char *dir = (char *)"poison";
    tp_error err;
    tp_error_clear(&err);
    tp_status st = tp_resolve_local(id, &dir, &err);
    CHECK_MSG(st == want, "%s: %s, expected %s (%s)", id, tp_status_name(st), tp_status_name(want),
              err.message);
    CHECK(dir == NULL);
    if (getenv("TPIPE_TEST_VERBOSE"))
        printf("%-20s %s\n", tp_status_name(st), err.message);
    if (n1)
        CHECK_MSG(io_contains(err.message, n1), "'%s' not in: %s", n1, err.message);
    if (n2)
        CHECK_MSG(io_contains(err.message, n2), "'%s' not in: %s", n2, err.message);
}

int main(void) {
    char root[256];
    snprintf(root, sizeof root, "%s", io_tmpdir());
    char cache[512], home[512], xdg[512];
    snprintf(cache, sizeof cache, "%s/hubcache", root);
    snprintf(home, sizeof home, "%s/hfhome", root);
    snprintf(xdg, sizeof xdg, "%s/xdg", root);
    build_cache(cache);

    /* HF_HUB_CACHE */
    setenv("HF_HUB_CACHE", cache, 1);
    setenv("HF_HOME", "/nonexistent-hf-home", 1);
    expect_dir("Org/tiny-model", "/models--Org--tiny-model/snapshots/" COMMIT_MAIN);
    expect_dir("Org/tiny-model@main", "/snapshots/" COMMIT_MAIN);
    expect_dir("Org/tiny-model@dev", "/snapshots/" COMMIT_DEV);
    expect_dir("Org/tiny-model@" COMMIT_DEV, "/snapshots/" COMMIT_DEV);
    expect_dir("gpt2", "/models--gpt2/snapshots/" COMMIT_MAIN);
    /* the resolved folder really holds the snapshot's files */
    {
        char *dir = NULL;
        tp_error err;
        CHECK(tp_resolve_local("Org/tiny-model", &dir, &err) == TP_OK);
        if (dir) {
            char *cfg = tp_path_join(dir, "config.json");
            CHECK(tp_file_exists(cfg));
            free(cfg);
        }
        free(dir);
    }

    /* errors */
    expect_fail("Org/other-model", TP_ERR_NOT_FOUND, "models--Org--other-model", cache);
    expect_fail("Org/tiny-model@v2", TP_ERR_NOT_FOUND, "refs/v2", "revision 'v2'");
    expect_fail("Org/tiny-model@broken", TP_ERR_NOT_FOUND,
                "1111111111111111111111111111111111111111", "refs/broken");
    expect_fail("Org/tiny-model@empty", TP_ERR_FORMAT, "refs/empty", "commit");
    expect_fail("Org/tiny-model@../../x", TP_ERR_INVALID_ARGUMENT, "revision", NULL);
    expect_fail("Org/tiny-model@", TP_ERR_INVALID_ARGUMENT, "revision", NULL);
    expect_fail("Org/", TP_ERR_INVALID_ARGUMENT, "org/name", NULL);
    expect_fail("/Org", TP_ERR_NOT_FOUND, "no such folder", NULL);
    expect_fail("Org/..", TP_ERR_INVALID_ARGUMENT, "org/name", NULL);
    expect_fail("a\\b/c", TP_ERR_INVALID_ARGUMENT, NULL, NULL);
    expect_fail("/definitely/not/here", TP_ERR_NOT_FOUND, "/definitely/not/here", "no such folder");
    expect_fail("./nope", TP_ERR_NOT_FOUND, "no such folder", NULL);
    expect_fail("", TP_ERR_INVALID_ARGUMENT, NULL, NULL);
    CHECK(tp_resolve_local("x", NULL, NULL) == TP_ERR_INVALID_ARGUMENT);
    /* a file is not a model folder */
    {
        char p[4096];
        snprintf(p, sizeof p, "%s/models--Org--tiny-model/refs/main", cache);
        expect_fail(p, TP_ERR_NOT_FOUND, "is a file", NULL);
    }

    /* an existing folder is used as is, even when it looks like an id */
    expect_dir(root, root);
    if (chdir(root) == 0) {
        mkdirs("Local/model");
        expect_dir("Local/model", "Local/model");
    }

    /* HF_HOME/hub when HF_HUB_CACHE is unset */
    unsetenv("HF_HUB_CACHE");
    char p[1024];
    snprintf(p, sizeof p, "%s/hub", home);
    build_cache(p);
    setenv("HF_HOME", home, 1);
    expect_dir("Org/tiny-model", "/hfhome/hub/models--Org--tiny-model/snapshots/" COMMIT_MAIN);
    expect_fail("Org/absent", TP_ERR_NOT_FOUND, "/hfhome/hub/models--Org--absent", NULL);

    /* XDG_CACHE_HOME/huggingface/hub, then ~/.cache/huggingface/hub */
    unsetenv("HF_HOME");
    snprintf(p, sizeof p, "%s/huggingface/hub", xdg);
    build_cache(p);
    setenv("XDG_CACHE_HOME", xdg, 1);
    expect_dir("Org/tiny-model",
               "/xdg/huggingface/hub/models--Org--tiny-model/snapshots/" COMMIT_MAIN);
    unsetenv("XDG_CACHE_HOME");
    snprintf(p, sizeof p, "%s/.cache/huggingface/hub", home);
    build_cache(p);
    setenv("HOME", home, 1);
    expect_dir("Org/tiny-model",
               "/hfhome/.cache/huggingface/hub/models--Org--tiny-model/snapshots/" COMMIT_MAIN);
    char *c = NULL;
    tp_error err;
    CHECK(tp_hf_cache_dir(&c, &err) == TP_OK && c &&
          io_contains(c, "/hfhome/.cache/huggingface/hub"));
    free(c);
    unsetenv("HOME");
    expect_fail("Org/tiny-model", TP_ERR_NOT_FOUND, "HF_HUB_CACHE", "HOME");

    /* helpers */
    char *f = tp_hf_repo_folder("Qwen/Qwen3-0.6B");
    CHECK(f && strcmp(f, "models--Qwen--Qwen3-0.6B") == 0);
    free(f);
    char *repo = NULL, *rev = NULL;
    CHECK(tp_hf_parse_id("google/gemma-3-270m@refs/pr/1", &repo, &rev, &err) == TP_OK);
    CHECK(repo && rev && strcmp(repo, "google/gemma-3-270m") == 0 && strcmp(rev, "refs/pr/1") == 0);
    free(repo);
    free(rev);
    CHECK(tp_hf_parse_id("a/b/c", &repo, &rev, &err) == TP_ERR_INVALID_ARGUMENT && !repo && !rev);
    CHECK(tp_hf_is_commit(COMMIT_MAIN) && !tp_hf_is_commit("main") &&
          !tp_hf_is_commit("0123456789ABCDEF0123456789abcdef01234567"));

    if (chdir("/") != 0)
        perror("chdir");
    io_rmtree(root);
    return tp_test_exit();
}
