/*
 * resolve.c — model folder resolution: a local folder, or a Hugging Face id in
 * the local hub cache (layout in resolve.h).
 *
 * Errors say exactly where we looked (cache folder, refs file, snapshot folder),
 * because "model not found" is useless when the cause is HF_HOME pointing to the
 * wrong place or a half-finished download.
 */
#include "io/resolve.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

tp_status tp_hf_cache_dir(char **out, tp_error *err) {
    *out = NULL;
    const char *v = getenv("HF_HUB_CACHE");
    char *p = NULL;
    if (v && *v) {
        p = tp_strdup(v);
    } else if ((v = getenv("HF_HOME")) && *v) {
        p = tp_path_join(v, "hub");
    } else if ((v = getenv("XDG_CACHE_HOME")) && *v) {
        p = tp_path_join(v, "huggingface/hub");
    } else if ((v = getenv("HOME")) && *v) {
        p = tp_path_join(v, ".cache/huggingface/hub");
    } else {
        return tp_fail(err, TP_ERR_NOT_FOUND,
                       "no Hugging Face cache folder: none of HF_HUB_CACHE, HF_HOME, "
                       "XDG_CACHE_HOME, HOME is set");
    }
    if (!p)
        return tp_fail(err, TP_ERR_OUT_OF_MEMORY, "out of memory");
    *out = p;
    return TP_OK;
}

static bool valid_part(const char *s, size_t n) {
    if (n == 0 || (n == 1 && s[0] == '.') || (n == 2 && s[0] == '.' && s[1] == '.'))
        return false;
    for (size_t i = 0; i < n; i++) {
        unsigned char c = (unsigned char)s[i];
        if (c < 0x20 || c == 0x7f || c == '\\')
            return false;
    }
    return true;
}

tp_status tp_hf_parse_id(const char *id, char **repo, char **revision, tp_error *err) {
    *repo = NULL;
    *revision = NULL;
    if (!id || !*id)
        return tp_fail(err, TP_ERR_INVALID_ARGUMENT, "empty model id");
    const char *at = strchr(id, '@');
    size_t rlen = at ? (size_t)(at - id) : strlen(id);
    /* repo: "name" or "org/name" */
    const char *slash = memchr(id, '/', rlen);
    bool ok = slash ? valid_part(id, (size_t)(slash - id)) &&
                          valid_part(slash + 1, rlen - (size_t)(slash - id) - 1) &&
                          !memchr(slash + 1, '/', rlen - (size_t)(slash - id) - 1)
                    : valid_part(id, rlen);
    if (!ok)
        return tp_fail(err, TP_ERR_INVALID_ARGUMENT,
                       "'%s' is neither an existing folder nor a Hugging Face id of the form "
                       "org/name or org/name@revision",
                       id);
    /* revision: may hold '/' (e.g. refs/pr/1) but no empty, "." or ".." parts */
    const char *rev = at ? at + 1 : "main";
    const char *p = rev;
    ok = *rev != '\0';
    while (ok && *p) {
        const char *q = strchr(p, '/');
        size_t n = q ? (size_t)(q - p) : strlen(p);
        ok = valid_part(p, n) && !memchr(p, '@', n);
        p += n;
        if (*p == '/')
            p++;
        if (q && !*p)
            ok = false; /* trailing '/' */
    }
    if (!ok)
        return tp_fail(err, TP_ERR_INVALID_ARGUMENT, "model id '%s': bad revision '%s'", id, rev);
    *repo = tp_strndup(id, rlen);
    *revision = tp_strdup(rev);
    if (!*repo || !*revision) {
        tp_free(*repo);
        tp_free(*revision);
        *repo = *revision = NULL;
        return tp_fail(err, TP_ERR_OUT_OF_MEMORY, "out of memory");
    }
    return TP_OK;
}

char *tp_hf_repo_folder(const char *repo) {
    tp_buf b = {0};
    tp_buf_puts(&b, "models--");
    for (const char *p = repo; *p; p++) {
        if (*p == '/')
            tp_buf_puts(&b, "--");
        else
            tp_buf_append(&b, p, 1);
    }
    return tp_buf_take(&b);
}

bool tp_hf_is_commit(const char *s) {
    size_t n = 0;
    for (; s[n]; n++)
        if (!((s[n] >= '0' && s[n] <= '9') || (s[n] >= 'a' && s[n] <= 'f')))
            return false;
    return n == 40;
}

/* Reads refs/<revision>: the first line, trimmed. */
static tp_status read_ref(const char *path, char **commit, tp_error *err) {
    char *text = NULL;
    size_t len = 0;
    tp_status st = tp_read_file(path, &text, &len, err);
    if (st != TP_OK)
        return st;
    size_t b = 0, e = 0;
    while (b < len && (text[b] == ' ' || text[b] == '\t' || text[b] == '\r' || text[b] == '\n'))
        b++;
    e = b;
    while (e < len && text[e] != '\n' && text[e] != '\r' && text[e] != ' ' && text[e] != '\t')
        e++;
    if (e == b || !valid_part(text + b, e - b) || memchr(text + b, '/', e - b)) {
        tp_free(text);
        return tp_fail(err, TP_ERR_FORMAT, "%s: does not hold a commit hash", path);
    }
    *commit = tp_strndup(text + b, e - b);
    tp_free(text);
    if (!*commit)
        return tp_fail(err, TP_ERR_OUT_OF_MEMORY, "out of memory");
    return TP_OK;
}

/* A path the user meant as a folder rather than an id. */
static bool looks_like_path(const char *s) {
    if (s[0] == '/' || s[0] == '.' || s[0] == '~')
        return true;
    int slashes = 0;
    for (const char *p = s; *p && *p != '@'; p++)
        slashes += *p == '/';
    return slashes > 1;
}

tp_status tp_resolve_local(const char *id_or_path, char **dir_out, tp_error *err) {
    if (!dir_out)
        return tp_fail(err, TP_ERR_INVALID_ARGUMENT, "tp_resolve_local: dir_out is NULL");
    *dir_out = NULL;
    if (!id_or_path || !*id_or_path)
        return tp_fail(err, TP_ERR_INVALID_ARGUMENT, "empty model name");
    if (tp_dir_exists(id_or_path)) {
        *dir_out = tp_strdup(id_or_path);
        return *dir_out ? TP_OK : tp_fail(err, TP_ERR_OUT_OF_MEMORY, "out of memory");
    }
    if (tp_file_exists(id_or_path))
        return tp_fail(err, TP_ERR_NOT_FOUND,
                       "%s: is a file; a model is given by its folder (holding config.json)",
                       id_or_path);
    if (looks_like_path(id_or_path))
        return tp_fail(err, TP_ERR_NOT_FOUND, "%s: no such folder", id_or_path);

    char *repo = NULL, *rev = NULL, *cache = NULL, *folder = NULL, *repo_dir = NULL;
    char *ref_path = NULL, *commit = NULL, *snaps = NULL, *snap = NULL;
    tp_status st = tp_hf_parse_id(id_or_path, &repo, &rev, err);
    if (st != TP_OK)
        goto done;
    st = tp_hf_cache_dir(&cache, err);
    if (st != TP_OK) {
        tp_error_prefix(err, "model '%s' is not a local folder, and", id_or_path);
        goto done;
    }
    folder = tp_hf_repo_folder(repo);
    repo_dir = folder ? tp_path_join(cache, folder) : NULL;
    snaps = repo_dir ? tp_path_join(repo_dir, "snapshots") : NULL;
    if (!snaps) {
        st = tp_fail(err, TP_ERR_OUT_OF_MEMORY, "out of memory");
        goto done;
    }
    if (!tp_dir_exists(repo_dir)) {
        st = tp_fail(err, TP_ERR_NOT_FOUND,
                     "model '%s': not a local folder, and not in the Hugging Face cache (no "
                     "%s)",
                     id_or_path, repo_dir);
        goto done;
    }
    /* refs/<revision> -> commit; else a revision naming a snapshot folder directly */
    char *refs = tp_path_join(repo_dir, "refs");
    ref_path = refs ? tp_path_join(refs, rev) : NULL;
    tp_free(refs);
    if (!ref_path) {
        st = tp_fail(err, TP_ERR_OUT_OF_MEMORY, "out of memory");
        goto done;
    }
    if (tp_file_exists(ref_path)) {
        st = read_ref(ref_path, &commit, err);
        if (st != TP_OK)
            goto done;
    } else {
        char *direct = tp_path_join(snaps, rev);
        if (!direct) {
            st = tp_fail(err, TP_ERR_OUT_OF_MEMORY, "out of memory");
            goto done;
        }
        bool is_snap = !strchr(rev, '/') && tp_dir_exists(direct);
        tp_free(direct);
        if (!is_snap) {
            st = tp_fail(err, TP_ERR_NOT_FOUND,
                         "model '%s': revision '%s' not in the Hugging Face cache (no %s, and "
                         "no snapshot folder %s/%s)",
                         id_or_path, rev, ref_path, snaps, rev);
            goto done;
        }
        commit = tp_strdup(rev);
        if (!commit) {
            st = tp_fail(err, TP_ERR_OUT_OF_MEMORY, "out of memory");
            goto done;
        }
    }
    snap = tp_path_join(snaps, commit);
    if (!snap) {
        st = tp_fail(err, TP_ERR_OUT_OF_MEMORY, "out of memory");
        goto done;
    }
    if (!tp_dir_exists(snap)) {
        st = tp_fail(err, TP_ERR_NOT_FOUND,
                     "model '%s': %s names commit %s, but the snapshot folder %s is missing "
                     "(incomplete download?)",
                     id_or_path, ref_path, commit, snap);
        goto done;
    }
    *dir_out = snap;
    snap = NULL;
    st = TP_OK;
done:
    tp_free(repo);
    tp_free(rev);
    tp_free(cache);
    tp_free(folder);
    tp_free(repo_dir);
    tp_free(ref_path);
    tp_free(commit);
    tp_free(snaps);
    tp_free(snap);
    return st;
}
