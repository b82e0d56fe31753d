/*
 * hub.c — tp_model_resolve: Hugging Face ids to local folders, through the
 * local cache first and the hub's HTTP API second.
 *
 * Cache layout (shared with Python's huggingface_hub):
 *   <cache>/models--<org>--<name>/
 *       refs/<revision>               the commit a branch/tag pointed to
 *       blobs/<etag>                  file contents, named by ETag (sha256 for LFS files)
 *       blobs/<etag>.incomplete       a download in progress (resumed with HTTP Range)
 *       snapshots/<commit>/<file>     relative symlinks to ../../blobs/<etag>
 *       .no_exist/<commit>/<file>     empty markers for optional files the hub lacks
 *
 * Protocol (what huggingface_hub does): HEAD {endpoint}/{repo}/resolve/{rev}/{file}
 * without following redirects gives X-Repo-Commit, the ETag (X-Linked-Etag for LFS
 * files, whose 302 goes to a CDN) and the size (X-Linked-Size, else
 * Content-Length). A relative redirect means a renamed repo and is followed.
 * The GET follows redirects; curl does not forward our Authorization header to
 * another host. After the first file, the commit replaces the revision in URLs so
 * that all files come from one snapshot even if the branch moves meanwhile.
 *
 * Local first: when the snapshot of the revision already holds every required
 * file, and every optional file is present or known absent (.no_exist), the
 * network is not touched. When the network fails but the required files are
 * cached, the cached snapshot is used.
 */
#include "net/net.h"
#include "io/gguf.h"
#include "io/resolve.h"

#include <cjson/cJSON.h>
#include <ctype.h>
#include <curl/curl.h>
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <unistd.h>

#define HUB_DEFAULT_ENDPOINT "https://huggingface.co"
#define HUB_MAX_REDIRECTS 5
#define HUB_MAX_ATTEMPTS 4 /* per file: a dropped connection resumes this many times */

tp_resolve_params tp_resolve_default_params(void) {
    tp_resolve_params p;
    memset(&p, 0, sizeof p);
    p.files = TP_RESOLVE_ALL;
    p.connect_timeout_s = 10;
    return p;
}

/* ------------------------------------------------------------------------ */
/* small helpers                                                             */

static char *str_printf(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
static char *str_printf(const char *fmt, ...) {
    va_list ap;
    va_start(ap, fmt);
    va_list ap2;
    va_copy(ap2, ap);
    int n = vsnprintf(NULL, 0, fmt, ap);
    va_end(ap);
    char *s = n >= 0 ? tp_malloc((size_t)n + 1) : NULL;
    if (s)
        vsnprintf(s, (size_t)n + 1, fmt, ap2);
    va_end(ap2);
    return s;
}

static bool env_truthy(const char *name) {
    const char *v = getenv(name);
    if (!v)
        return false;
    return !strcasecmp(v, "1") || !strcasecmp(v, "true") || !strcasecmp(v, "yes") ||
           !strcasecmp(v, "on");
}

static const char *env_nonempty(const char *name) {
    const char *v = getenv(name);
    return v && *v ? v : NULL;
}

/* $HF_HOME, else $XDG_CACHE_HOME/huggingface, else ~/.cache/huggingface. */
static char *hf_home(void) {
    const char *h = env_nonempty("HF_HOME");
    if (h)
        return tp_strdup(h);
    const char *x = env_nonempty("XDG_CACHE_HOME");
    if (x)
        return tp_path_join(x, "huggingface");
    const char *home = env_nonempty("HOME");
    return str_printf("%s/.cache/huggingface", home ? home : ".");
}

static bool is_hex(const char *s, size_t n) {
    if (strlen(s) != n)
        return false;
    for (size_t i = 0; i < n; i++)
        if (!isxdigit((unsigned char)s[i]))
            return false;
    return true;
}

/* mkdir -p for the folders of path up to (not including) its last component when
 * `parent_only`, else the whole path. */
static tp_status mkdirs(const char *path, bool parent_only, tp_error *err) {
    char *p = tp_strdup(path);
    if (!p)
        return tp_fail(err, TP_ERR_OUT_OF_MEMORY, "out of memory");
    if (parent_only) {
        char *slash = strrchr(p, '/');
        if (!slash) {
            tp_free(p);
            return TP_OK;
        }
        *slash = '\0';
    }
    for (char *q = p + 1;; q++) {
        if (*q == '/' || *q == '\0') {
            char c = *q;
            *q = '\0';
            if (mkdir(p, 0755) != 0 && errno != EEXIST) {
                tp_status s =
                    tp_fail(err, TP_ERR_IO, "cannot create folder %s: %s", p, strerror(errno));
                tp_free(p);
                return s;
            }
            *q = c;
            if (!c)
                break;
        }
    }
    tp_free(p);
    return TP_OK;
}

static bool path_is_file(const char *path) {
    struct stat st;
    return stat(path, &st) == 0 && S_ISREG(st.st_mode); /* follows symlinks */
}

static long long file_size(const char *path) {
    struct stat st;
    return stat(path, &st) == 0 ? (long long)st.st_size : -1;
}

/* Trims whitespace in place. */
static char *trim(char *s) {
    while (*s && isspace((unsigned char)*s))
        s++;
    size_t n = strlen(s);
    while (n && isspace((unsigned char)s[n - 1]))
        s[--n] = '\0';
    return s;
}

/* A repo file name must stay inside the snapshot folder. */
static bool safe_rel_path(const char *f) {
    if (!*f || f[0] == '/' || strstr(f, "//"))
        return false;
    for (const char *p = f; *p;) {
        const char *q = strchr(p, '/');
        size_t n = q ? (size_t)(q - p) : strlen(p);
        if ((n == 1 && p[0] == '.') || (n == 2 && p[0] == '.' && p[1] == '.'))
            return false;
        if (!q)
            break;
        p = q + 1;
    }
    return true;
}

/* ------------------------------------------------------------------------ */
/* the resolver state                                                        */

typedef struct hub {
    const tp_resolve_params *p;
    tp_error *err;
    char *repo;     /* "org/name" */
    char *revision; /* as asked: branch, tag or commit */
    char *cache;    /* cache root */
    char *repo_dir; /* <cache>/models--org--name */
    char commit[64];
    char *endpoint; /* without trailing '/' */
    char *url_repo; /* repo as used in URLs (changes when the hub redirects a renamed repo) */
    char *token;
    bool offline;
    CURL *curl;
    bool conn_failed; /* the last failure was the network, not an HTTP answer */
} hub;

static void hub_free(hub *h) {
    tp_free(h->repo);
    tp_free(h->revision);
    tp_free(h->cache);
    tp_free(h->repo_dir);
    tp_free(h->endpoint);
    tp_free(h->url_repo);
    tp_free(h->token);
    if (h->curl)
        curl_easy_cleanup(h->curl);
}

static char *read_token(void) {
    const char *t = env_nonempty("HF_TOKEN");
    if (!t)
        t = env_nonempty("HUGGING_FACE_HUB_TOKEN");
    if (t) {
        char *c = tp_strdup(t);
        if (c) {
            char *s = trim(c);
            memmove(c, s, strlen(s) + 1);
            if (!*c) {
                tp_free(c);
                c = NULL;
            }
        }
        return c;
    }
    char *path = NULL;
    const char *tp = env_nonempty("HF_TOKEN_PATH");
    if (tp) {
        path = tp_strdup(tp);
    } else {
        char *home = hf_home();
        path = home ? tp_path_join(home, "token") : NULL;
        tp_free(home);
    }
    if (!path)
        return NULL;
    char *data = NULL;
    size_t len = 0;
    tp_error ignore;
    char *tok = NULL;
    if (tp_read_file(path, &data, &len, &ignore) == TP_OK) {
        char *s = trim(data);
        if (*s)
            tok = tp_strdup(s);
        tp_free(data);
    }
    tp_free(path);
    return tok;
}

/* ------------------------------------------------------------------------ */
/* local cache                                                               */

static char *snapshot_dir(const hub *h) {
    return str_printf("%s/snapshots/%s", h->repo_dir, h->commit);
}

static char *snapshot_file(const hub *h, const char *file) {
    return str_printf("%s/snapshots/%s/%s", h->repo_dir, h->commit, file);
}

/* Finds the commit of h->revision in the cache (refs/<rev>, or the revision
 * itself when it is a commit with a snapshot). */
static bool local_commit(hub *h) {
    if (is_hex(h->revision, 40)) {
        char *d = str_printf("%s/snapshots/%s", h->repo_dir, h->revision);
        bool ok = d && tp_dir_exists(d);
        tp_free(d);
        if (ok) {
            snprintf(h->commit, sizeof h->commit, "%s", h->revision);
            return true;
        }
    }
    char *ref = str_printf("%s/refs/%s", h->repo_dir, h->revision);
    char *data = NULL;
    size_t len = 0;
    tp_error ignore;
    bool ok = false;
    if (ref && tp_read_file(ref, &data, &len, &ignore) == TP_OK) {
        char *c = trim(data);
        if (is_hex(c, 40)) {
            snprintf(h->commit, sizeof h->commit, "%s", c);
            ok = true;
        }
        tp_free(data);
    }
    tp_free(ref);
    return ok;
}

typedef enum file_state { F_MISSING, F_PRESENT, F_KNOWN_ABSENT } file_state;

static file_state local_state(const hub *h, const char *file) {
    if (!h->commit[0])
        return F_MISSING;
    char *p = snapshot_file(h, file);
    file_state s = F_MISSING;
    if (p && path_is_file(p)) {
        s = F_PRESENT;
    } else {
        char *m = str_printf("%s/.no_exist/%s/%s", h->repo_dir, h->commit, file);
        if (m && tp_file_exists(m))
            s = F_KNOWN_ABSENT;
        tp_free(m);
    }
    tp_free(p);
    return s;
}

/* The files a request needs. `optional` files may be absent on the hub. */
typedef struct want {
    const char *file;
    bool optional;
} want;

static const want config_files[] = {{"config.json", false}, {"generation_config.json", true}};
static const want tokenizer_files[] = {{"tokenizer.json", false},
                                       {"tokenizer_config.json", true},
                                       {"special_tokens_map.json", true},
                                       {"chat_template.jinja", true}};

/* Reads the shard names of <snapshot>/model.safetensors.index.json (unique, in
 * order of first appearance). */
static tp_status index_shards(const hub *h, char ***names, size_t *n, tp_error *err) {
    *names = NULL;
    *n = 0;
    char *path = snapshot_file(h, "model.safetensors.index.json");
    if (!path)
        return tp_fail(err, TP_ERR_OUT_OF_MEMORY, "out of memory");
    char *text = NULL;
    size_t len = 0;
    tp_status s = tp_read_file(path, &text, &len, err);
    if (s != TP_OK) {
        tp_free(path);
        return s;
    }
    unsigned long failures = tp_alloc_failures();
    cJSON *root = cJSON_ParseWithLength(text, len);
    tp_free(text);
    const cJSON *wm = cJSON_GetObjectItemCaseSensitive(root, "weight_map");
    if (!root) {
        s = tp_alloc_failures() != failures
                ? tp_fail(err, TP_ERR_OUT_OF_MEMORY, "%s: out of memory", path)
                : tp_fail(err, TP_ERR_FORMAT, "%s: not valid JSON", path);
        goto out;
    }
    if (!cJSON_IsObject(wm)) {
        s = tp_fail(err, TP_ERR_FORMAT, "%s: missing object \"weight_map\"", path);
        goto out;
    }
    const cJSON *e;
    cJSON_ArrayForEach(e, wm) {
        if (!cJSON_IsString(e) || !safe_rel_path(e->valuestring)) {
            s = tp_fail(err, TP_ERR_FORMAT, "%s: weight_map[\"%s\"] is not a valid file name", path,
                        e->string ? e->string : "");
            goto out;
        }
        bool seen = false;
        for (size_t i = 0; i < *n && !seen; i++)
            seen = !strcmp((*names)[i], e->valuestring);
        if (seen)
            continue;
        char **nn = tp_realloc_array(*names, *n + 1, sizeof *nn);
        char *c = tp_strdup(e->valuestring);
        if (!nn || !c) {
            tp_free(c);
            if (nn)
                *names = nn;
            s = tp_fail(err, TP_ERR_OUT_OF_MEMORY, "out of memory");
            goto out;
        }
        *names = nn;
        (*names)[(*n)++] = c;
    }
    if (*n == 0)
        s = tp_fail(err, TP_ERR_FORMAT, "%s: \"weight_map\" lists no files", path);
out:
    cJSON_Delete(root);
    tp_free(path);
    if (s != TP_OK) {
        for (size_t i = 0; i < *n; i++)
            tp_free((*names)[i]);
        tp_free(*names);
        *names = NULL;
        *n = 0;
    }
    return s;
}

static void free_names(char **names, size_t n) {
    for (size_t i = 0; i < n; i++)
        tp_free(names[i]);
    tp_free(names);
}

/* Is everything asked for in the local snapshot? `strict`: optional files must
 * be present or known absent too. Sets *missing to the first missing file. */
static bool local_complete(const hub *h, bool strict, const char **missing) {
    static _Thread_local char miss[256];
    *missing = NULL;
    if (!h->commit[0]) {
        *missing = "(no snapshot)";
        return false;
    }
    const want *lists[2] = {config_files, tokenizer_files};
    const size_t counts[2] = {2, 4};
    const unsigned bits[2] = {TP_RESOLVE_CONFIG, TP_RESOLVE_TOKENIZER};
    for (int l = 0; l < 2; l++) {
        if (!(h->p->files & bits[l]))
            continue;
        for (size_t i = 0; i < counts[l]; i++) {
            file_state s = local_state(h, lists[l][i].file);
            if (s == F_PRESENT || (s == F_KNOWN_ABSENT && lists[l][i].optional) ||
                (s == F_MISSING && lists[l][i].optional && !strict))
                continue;
            *missing = lists[l][i].file;
            return false;
        }
    }
    if (h->p->files & TP_RESOLVE_WEIGHTS) {
        if (local_state(h, "model.safetensors") == F_PRESENT)
            return true;
        if (local_state(h, "model.safetensors.index.json") != F_PRESENT) {
            *missing = "model.safetensors";
            return false;
        }
        char **names;
        size_t n;
        tp_error ignore;
        if (index_shards(h, &names, &n, &ignore) != TP_OK) {
            *missing = "model.safetensors.index.json";
            return false;
        }
        bool ok = true;
        for (size_t i = 0; i < n && ok; i++)
            if (local_state(h, names[i]) != F_PRESENT) {
                snprintf(miss, sizeof miss, "%s", names[i]);
                *missing = miss;
                ok = false;
            }
        free_names(names, n);
        return ok;
    }
    return true;
}

/* ------------------------------------------------------------------------ */
/* HTTP                                                                      */

typedef struct meta {
    long status;
    char commit[64];
    char etag[160];
    char linked_etag[160];
    long long linked_size, content_length;
    char location[2048];
    char error_code[64];
    char error_message[256];
    char content_range[128];
} meta;

static size_t on_header(char *data, size_t size, size_t nitems, void *user) {
    meta *m = user;
    size_t n = size * nitems;
    char line[2300];
    size_t k = n < sizeof line - 1 ? n : sizeof line - 1;
    memcpy(line, data, k);
    line[k] = '\0';
    if (!strncmp(line, "HTTP/", 5)) {
        /* a new response (after a redirect): forget the previous headers */
        long st = m->status;
        memset(m, 0, sizeof *m);
        m->linked_size = m->content_length = -1;
        char *sp = strchr(line, ' ');
        m->status = sp ? strtol(sp + 1, NULL, 10) : st;
        return n;
    }
    char *colon = strchr(line, ':');
    if (!colon)
        return n;
    *colon = '\0';
    char *v = trim(colon + 1);
    const char *name = line;
#define COPY(field) snprintf(m->field, sizeof m->field, "%s", v)
    if (!strcasecmp(name, "X-Repo-Commit"))
        COPY(commit);
    else if (!strcasecmp(name, "ETag"))
        COPY(etag);
    else if (!strcasecmp(name, "X-Linked-Etag"))
        COPY(linked_etag);
    else if (!strcasecmp(name, "X-Linked-Size"))
        m->linked_size = strtoll(v, NULL, 10);
    else if (!strcasecmp(name, "Content-Length"))
        m->content_length = strtoll(v, NULL, 10);
    else if (!strcasecmp(name, "Location"))
        COPY(location);
    else if (!strcasecmp(name, "X-Error-Code"))
        COPY(error_code);
    else if (!strcasecmp(name, "X-Error-Message"))
        COPY(error_message);
    else if (!strcasecmp(name, "Content-Range"))
        COPY(content_range);
#undef COPY
    return n;
}

/* Host part of a URL for messages. */
static void url_host(const char *url, char *out, size_t n) {
    const char *p = strstr(url, "://");
    p = p ? p + 3 : url;
    size_t k = strcspn(p, "/?#");
    snprintf(out, n, "%.*s", (int)k, p);
}

static void common_opts(hub *h, struct curl_slist **headers, char *errbuf) {
    CURL *c = h->curl;
    curl_easy_reset(c);
    curl_easy_setopt(c, CURLOPT_NOSIGNAL, 1L);
    curl_easy_setopt(c, CURLOPT_CONNECTTIMEOUT,
                     h->p->connect_timeout_s > 0 ? h->p->connect_timeout_s : 10L);
    /* a stalled transfer (under 1 byte/s for 60 s) is a failure, resumed later */
    curl_easy_setopt(c, CURLOPT_LOW_SPEED_LIMIT, 1L);
    curl_easy_setopt(c, CURLOPT_LOW_SPEED_TIME, 60L);
    curl_easy_setopt(c, CURLOPT_USERAGENT, "tpipe/0.1 (libcurl)");
    curl_easy_setopt(c, CURLOPT_ERRORBUFFER, errbuf);
    errbuf[0] = '\0';
    *headers = NULL;
    if (h->token) {
        char *a = str_printf("Authorization: Bearer %s", h->token);
        if (a) {
            *headers = curl_slist_append(*headers, a);
            tp_free(a);
        }
    }
    /* Ask for the raw bytes: sizes and hashes are of the stored file. */
    *headers = curl_slist_append(*headers, "Accept-Encoding: identity");
    curl_easy_setopt(c, CURLOPT_HTTPHEADER, *headers);
}

static tp_status curl_failure(hub *h, CURLcode rc, const char *errbuf, const char *url,
                              const char *file) {
    char host[256];
    url_host(url, host, sizeof host);
    h->conn_failed = true;
    if (rc == CURLE_ABORTED_BY_CALLBACK)
        return tp_fail(h->err, TP_ERR_CANCELLED, "download of %s from %s cancelled", file, h->repo);
    return tp_fail(h->err, TP_ERR_NETWORK, "cannot download %s of %s from %s: %s", file, h->repo,
                   host, errbuf && errbuf[0] ? errbuf : curl_easy_strerror(rc));
}

/* Maps an HTTP error status to a message that says what to do. */
static tp_status http_failure(hub *h, const meta *m, const char *file, const char *url) {
    h->conn_failed = false;
    const char *xmsg = m->error_message[0] ? m->error_message : NULL;
    if (m->status == 401 || m->status == 403) {
        bool gated = !strcasecmp(m->error_code, "GatedRepo");
        const char *what = m->status == 403 ? "the repository is gated and your token has not "
                                              "been granted access"
                           : gated          ? "the repository is gated"
                                            : "the repository is gated or private (or does "
                                              "not exist)";
        return tp_fail(h->err, TP_ERR_NETWORK,
                       "access to %s denied (HTTP %ld%s%s): %s. Accept its licence on %s/%s "
                       "with your Hugging Face account, then set HF_TOKEN (or the token file "
                       "$HF_HOME/token) to an access token of that account (%s)",
                       h->repo, m->status, xmsg ? ": " : "", xmsg ? xmsg : "", what, h->endpoint,
                       h->repo, h->token ? "a token was sent" : "no token is set now");
    }
    if (m->status == 404) {
        if (!strcasecmp(m->error_code, "RepoNotFound"))
            return tp_fail(h->err, TP_ERR_NOT_FOUND, "repository %s not found on %s", h->repo,
                           h->endpoint);
        if (!strcasecmp(m->error_code, "RevisionNotFound"))
            return tp_fail(h->err, TP_ERR_NOT_FOUND, "revision %s not found in repository %s",
                           h->revision, h->repo);
        return tp_fail(h->err, TP_ERR_NOT_FOUND,
                       "file %s not found in repository %s at revision %s (HTTP 404 from %s)", file,
                       h->repo, h->revision, url);
    }
    return tp_fail(h->err, TP_ERR_NETWORK, "HTTP %ld for %s of %s (%s)%s%s", m->status, file,
                   h->repo, url, xmsg ? ": " : "", xmsg ? xmsg : "");
}

static char *file_url(const hub *h, const char *repo, const char *file) {
    const char *rev = h->commit[0] ? h->commit : h->revision;
    char *erev = curl_easy_escape(h->curl, rev, 0); /* "refs/pr/1" -> refs%2Fpr%2F1 */
    char *u = erev ? str_printf("%s/%s/resolve/%s/%s", h->endpoint, repo, erev, file) : NULL;
    curl_free(erev);
    return u;
}

/* Absolute URL for a Location header relative to `base`. */
static char *absolute_url(const char *base, const char *loc) {
    if (strstr(loc, "://"))
        return tp_strdup(loc);
    const char *p = strstr(base, "://");
    p = p ? p + 3 : base;
    size_t host_end = (size_t)(p - base) + strcspn(p, "/");
    if (loc[0] == '/')
        return str_printf("%.*s%s", (int)host_end, base, loc);
    const char *last = strrchr(base, '/');
    return str_printf("%.*s/%s", (int)(last - base), base, loc);
}

/* HEAD of one file: metadata for the download. Returns TP_NOT_FOUND for 404
 * (message set) so optional files can be skipped. */
static tp_status head_file(hub *h, const char *file, meta *m, char **get_url) {
    char *url = file_url(h, h->url_repo, file);
    if (!url)
        return tp_fail(h->err, TP_ERR_OUT_OF_MEMORY, "out of memory");
    for (int hop = 0;; hop++) {
        struct curl_slist *hdrs;
        char errbuf[CURL_ERROR_SIZE];
        common_opts(h, &hdrs, errbuf);
        memset(m, 0, sizeof *m);
        m->linked_size = m->content_length = -1;
        curl_easy_setopt(h->curl, CURLOPT_URL, url);
        curl_easy_setopt(h->curl, CURLOPT_NOBODY, 1L);
        curl_easy_setopt(h->curl, CURLOPT_FOLLOWLOCATION, 0L);
        curl_easy_setopt(h->curl, CURLOPT_HEADERFUNCTION, on_header);
        curl_easy_setopt(h->curl, CURLOPT_HEADERDATA, m);
        CURLcode rc = curl_easy_perform(h->curl);
        curl_slist_free_all(hdrs);
        if (rc != CURLE_OK) {
            tp_status s = curl_failure(h, rc, errbuf, url, file);
            tp_free(url);
            return s;
        }
        long code = 0;
        curl_easy_getinfo(h->curl, CURLINFO_RESPONSE_CODE, &code);
        m->status = code;
        if (code >= 300 && code < 400) {
            /* A relative redirect is the hub itself (a renamed repo): follow it,
             * as huggingface_hub does. A redirect elsewhere is an LFS file's
             * storage, and this answer carries its metadata: the HEAD is done. */
            bool relative = m->location[0] && !strstr(m->location, "://");
            if (!relative && (m->linked_etag[0] || (m->commit[0] && m->etag[0]))) {
                *get_url = url;
                return TP_OK;
            }
            if (!m->location[0] || hop >= HUB_MAX_REDIRECTS) {
                tp_status s =
                    tp_fail(h->err, TP_ERR_NETWORK, "%s of %s: too many or empty redirects from %s",
                            file, h->repo, url);
                tp_free(url);
                return s;
            }
            char *next = absolute_url(url, m->location);
            tp_free(url);
            if (!next)
                return tp_fail(h->err, TP_ERR_OUT_OF_MEMORY, "out of memory");
            url = next;
            continue;
        }
        if (code >= 200 && code < 300) {
            *get_url = url;
            return TP_OK;
        }
        tp_status s = http_failure(h, m, file, url);
        tp_free(url);
        return s;
    }
}

/* The GET of one file into an open .incomplete file descriptor. */
typedef struct sink {
    hub *h;
    int fd;
    long long offset;   /* where the body starts in the file (0 or the resumed size) */
    long long written;  /* body bytes written */
    long long expected; /* total file size, -1 unknown */
    bool decided;       /* status seen and offset chosen */
    bool refused;       /* the response is not the file: body ignored */
    bool write_failed;
    int write_errno;
    meta m;
    const char *file;
} sink;

static size_t on_body(char *data, size_t size, size_t nmemb, void *user) {
    sink *s = user;
    size_t n = size * nmemb;
    if (!s->decided) {
        s->decided = true;
        long code = 0;
        curl_easy_getinfo(s->h->curl, CURLINFO_RESPONSE_CODE, &code);
        s->m.status = code;
        if (code == 206) {
            /* "bytes START-END/TOTAL": must start where our file ends */
            long long start = -1;
            if (!strncasecmp(s->m.content_range, "bytes ", 6))
                start = strtoll(s->m.content_range + 6, NULL, 10);
            if (start != s->offset) {
                s->refused = true;
                return 0;
            }
        } else if (code == 200) {
            s->offset = 0; /* the server ignored the Range: start over */
            if (ftruncate(s->fd, 0) != 0) {
                s->write_failed = true;
                s->write_errno = errno;
                return 0;
            }
        } else {
            s->refused = true;
            return n; /* an error page: read and ignore it */
        }
    }
    if (s->refused)
        return n;
    const char *p = data;
    size_t left = n;
    while (left) {
        ssize_t w = pwrite(s->fd, p, left, (off_t)(s->offset + s->written));
        if (w < 0) {
            if (errno == EINTR)
                continue;
            s->write_failed = true;
            s->write_errno = errno;
            return 0;
        }
        p += w;
        left -= (size_t)w;
        s->written += w;
    }
    return n;
}

static int on_xfer(void *user, curl_off_t dltotal, curl_off_t dlnow, curl_off_t ultotal,
                   curl_off_t ulnow) {
    (void)dltotal;
    (void)ultotal;
    (void)ulnow;
    sink *s = user;
    const tp_resolve_params *p = s->h->p;
    if (!p->progress || !s->decided || s->refused)
        return 0;
    uint64_t total = s->expected > 0 ? (uint64_t)s->expected : 0;
    return p->progress(s->file, (uint64_t)(s->offset + dlnow), total, p->progress_user);
}

/* Verifies a finished .incomplete file against the announced size and, for LFS
 * files (64-hex ETag), the sha256. On mismatch the file is deleted. */
static tp_status verify_blob(hub *h, const char *tmp, const char *file, const char *etag,
                             long long expected) {
    long long got = file_size(tmp);
    if (expected >= 0 && got != expected) {
        unlink(tmp);
        return tp_fail(h->err, TP_ERR_FORMAT,
                       "%s of %s: downloaded %lld bytes but the hub announced %lld; the "
                       "partial file was deleted, run again to download it anew",
                       file, h->repo, got, expected);
    }
    if (is_hex(etag, 64)) {
        char hex[65];
        tp_status s = tp_sha256_file(tmp, hex, h->err);
        if (s != TP_OK)
            return s;
        if (strcasecmp(hex, etag)) {
            unlink(tmp);
            return tp_fail(h->err, TP_ERR_FORMAT,
                           "%s of %s is corrupt: its sha256 is %s but the hub says %s; the "
                           "file was deleted, run again to download it anew",
                           file, h->repo, hex, etag);
        }
    }
    return TP_OK;
}

/* Downloads `url` into blobs/<etag> (resuming an .incomplete file). */
static tp_status download_blob(hub *h, const char *file, const char *url, const char *etag,
                               long long expected, const char *blob) {
    char *tmp = str_printf("%s.incomplete", blob);
    if (!tmp)
        return tp_fail(h->err, TP_ERR_OUT_OF_MEMORY, "out of memory");
    tp_status s = mkdirs(tmp, true, h->err);
    if (s != TP_OK) {
        tp_free(tmp);
        return s;
    }
    int fd = open(tmp, O_RDWR | O_CREAT | O_CLOEXEC, 0644);
    if (fd < 0) {
        s = tp_fail(h->err, TP_ERR_IO, "cannot write %s: %s", tmp, strerror(errno));
        tp_free(tmp);
        return s;
    }
    /* another process may be fetching the same blob: wait for it */
    while (flock(fd, LOCK_EX) != 0 && errno == EINTR) {
    }
    if (path_is_file(blob) && (expected < 0 || file_size(blob) == expected)) {
        /* another thread or process finished it while we waited; remove our
         * .incomplete only if the name still is the file we opened */
        struct stat a, b;
        if (fstat(fd, &a) == 0 && stat(tmp, &b) == 0 && a.st_ino == b.st_ino &&
            a.st_dev == b.st_dev)
            unlink(tmp);
        close(fd);
        tp_free(tmp);
        return TP_OK;
    }
    s = TP_ERR_INTERNAL;
    for (int attempt = 0; attempt < HUB_MAX_ATTEMPTS; attempt++) {
        struct stat st;
        long long have = fstat(fd, &st) == 0 ? (long long)st.st_size : 0;
        if (expected >= 0 && have > expected) {
            if (ftruncate(fd, 0) != 0) {
                s = tp_fail(h->err, TP_ERR_IO, "cannot truncate %s: %s", tmp, strerror(errno));
                break;
            }
            have = 0;
        }
        if (expected >= 0 && have == expected) {
            s = TP_OK;
            break;
        }
        sink sk;
        memset(&sk, 0, sizeof sk);
        sk.h = h;
        sk.fd = fd;
        sk.offset = have;
        sk.expected = expected;
        sk.file = file;
        sk.m.linked_size = sk.m.content_length = -1;
        struct curl_slist *hdrs;
        char errbuf[CURL_ERROR_SIZE];
        common_opts(h, &hdrs, errbuf);
        curl_easy_setopt(h->curl, CURLOPT_URL, url);
        curl_easy_setopt(h->curl, CURLOPT_FOLLOWLOCATION, 1L);
        curl_easy_setopt(h->curl, CURLOPT_MAXREDIRS, (long)HUB_MAX_REDIRECTS);
        curl_easy_setopt(h->curl, CURLOPT_HEADERFUNCTION, on_header);
        curl_easy_setopt(h->curl, CURLOPT_HEADERDATA, &sk.m);
        curl_easy_setopt(h->curl, CURLOPT_WRITEFUNCTION, on_body);
        curl_easy_setopt(h->curl, CURLOPT_WRITEDATA, &sk);
        curl_easy_setopt(h->curl, CURLOPT_XFERINFOFUNCTION, on_xfer);
        curl_easy_setopt(h->curl, CURLOPT_XFERINFODATA, &sk);
        curl_easy_setopt(h->curl, CURLOPT_NOPROGRESS, 0L);
        char range[64];
        if (have > 0) {
            snprintf(range, sizeof range, "%lld-", have);
            curl_easy_setopt(h->curl, CURLOPT_RANGE, range);
        }
        CURLcode rc = curl_easy_perform(h->curl);
        curl_slist_free_all(hdrs);
        long code = 0;
        curl_easy_getinfo(h->curl, CURLINFO_RESPONSE_CODE, &code);
        if (sk.write_failed) {
            s = tp_fail(h->err, TP_ERR_IO, "cannot write %s: %s", tmp, strerror(sk.write_errno));
            break;
        }
        if (code == 416 && have > 0) {
            /* our partial file does not fit the server's: start over */
            if (ftruncate(fd, 0) != 0) {
                s = tp_fail(h->err, TP_ERR_IO, "cannot truncate %s: %s", tmp, strerror(errno));
                break;
            }
            continue;
        }
        if (sk.refused && code == 206) {
            /* a range we did not ask for: start over from 0 */
            if (ftruncate(fd, 0) != 0) {
                s = tp_fail(h->err, TP_ERR_IO, "cannot truncate %s: %s", tmp, strerror(errno));
                break;
            }
            continue;
        }
        if (code >= 400 || (sk.refused && code != 206)) {
            sk.m.status = code;
            s = http_failure(h, &sk.m, file, url);
            break;
        }
        if (rc != CURLE_OK) {
            s = curl_failure(h, rc, errbuf, url, file);
            if (s == TP_ERR_CANCELLED || sk.written == 0)
                break;
            continue; /* dropped connection after some progress: resume from there */
        }
        if (expected < 0) {
            s = TP_OK;
            break;
        }
        /* complete when the size matches; a short body is resumed */
        if (file_size(tmp) >= expected) {
            s = TP_OK;
            break;
        }
        s = tp_fail(h->err, TP_ERR_NETWORK,
                    "%s of %s: the transfer ended after %lld of %lld bytes (%s)", file, h->repo,
                    file_size(tmp), expected, url);
        h->conn_failed = true;
    }
    if (s == TP_OK) {
        s = verify_blob(h, tmp, file, etag, expected);
        if (s == TP_OK && rename(tmp, blob) != 0)
            s = tp_fail(h->err, TP_ERR_IO, "cannot rename %s to %s: %s", tmp, blob,
                        strerror(errno));
    } else if (s == TP_ERR_NETWORK && h->conn_failed) {
        long long have = file_size(tmp);
        if (have > 0) {
            char msg[TP_ERROR_MESSAGE_MAX];
            snprintf(msg, sizeof msg, "%s", h->err->message);
            tp_fail(h->err, TP_ERR_NETWORK, "%s (%lld bytes kept in %s: run again to resume)", msg,
                    have, tmp);
        }
    }
    close(fd); /* releases the lock */
    tp_free(tmp);
    return s;
}

/* snapshots/<commit>/<file> -> ../../blobs/<etag> (one more ../ per folder level). */
static tp_status link_snapshot(hub *h, const char *file, const char *etag) {
    char *link = snapshot_file(h, file);
    if (!link)
        return tp_fail(h->err, TP_ERR_OUT_OF_MEMORY, "out of memory");
    tp_status s = mkdirs(link, true, h->err);
    if (s != TP_OK) {
        tp_free(link);
        return s;
    }
    tp_buf target = {0};
    tp_buf_puts(&target, "../../");
    for (const char *p = file; *p; p++)
        if (*p == '/')
            tp_buf_puts(&target, "../");
    tp_buf_printf(&target, "blobs/%s", etag);
    if (target.oom) {
        tp_buf_free(&target);
        tp_free(link);
        return tp_fail(h->err, TP_ERR_OUT_OF_MEMORY, "out of memory");
    }
    /* made under a unique name and renamed over the final one: atomic, so
     * concurrent resolvers and a stale link from an earlier run are fine */
    char *tmp = str_printf("%s.tmp%ld.%lx", link, (long)getpid(), (unsigned long)pthread_self());
    if (!tmp) {
        s = tp_fail(h->err, TP_ERR_OUT_OF_MEMORY, "out of memory");
    } else {
        unlink(tmp);
        if (symlink(target.data, tmp) != 0 || rename(tmp, link) != 0) {
            s = tp_fail(h->err, TP_ERR_IO, "cannot create link %s: %s", link, strerror(errno));
            unlink(tmp);
        }
        tp_free(tmp);
    }
    tp_buf_free(&target);
    tp_free(link);
    return s;
}

static tp_status write_ref(hub *h) {
    if (!strcmp(h->revision, h->commit))
        return TP_OK;
    char *ref = str_printf("%s/refs/%s", h->repo_dir, h->revision);
    if (!ref)
        return tp_fail(h->err, TP_ERR_OUT_OF_MEMORY, "out of memory");
    tp_status s = mkdirs(ref, true, h->err);
    if (s == TP_OK) {
        char *tmp = str_printf("%s.tmp%ld.%lx", ref, (long)getpid(), (unsigned long)pthread_self());
        FILE *f = tmp ? fopen(tmp, "wb") : NULL;
        if (!f || fputs(h->commit, f) < 0 || fclose(f) != 0 || rename(tmp, ref) != 0)
            s = tp_fail(h->err, TP_ERR_IO, "cannot write %s: %s", ref, strerror(errno));
        tp_free(tmp);
    }
    tp_free(ref);
    return s;
}

static void mark_absent(hub *h, const char *file) {
    char *m = str_printf("%s/.no_exist/%s/%s", h->repo_dir, h->commit, file);
    tp_error ignore;
    if (m && mkdirs(m, true, &ignore) == TP_OK) {
        FILE *f = fopen(m, "wb");
        if (f)
            fclose(f);
    }
    tp_free(m);
}

/* Makes one file present in the snapshot. *absent is set (and TP_OK returned)
 * for an optional file the hub does not have. */
static tp_status fetch(hub *h, const char *file, bool optional, bool *absent) {
    if (absent)
        *absent = false;
    file_state st = local_state(h, file);
    if (st == F_PRESENT)
        return TP_OK;
    if (st == F_KNOWN_ABSENT && optional) {
        *absent = true;
        return TP_OK;
    }
    meta m;
    char *url = NULL;
    tp_status s = head_file(h, file, &m, &url);
    if (s == TP_ERR_NOT_FOUND && optional && m.status == 404 &&
        strcasecmp(m.error_code, "RepoNotFound") && strcasecmp(m.error_code, "RevisionNotFound")) {
        if (h->commit[0])
            mark_absent(h, file);
        if (absent)
            *absent = true;
        tp_error_clear(h->err);
        return TP_OK;
    }
    if (s != TP_OK)
        return s;
    if (!h->commit[0]) {
        if (!is_hex(m.commit, 40)) {
            tp_free(url);
            return tp_fail(h->err, TP_ERR_NETWORK,
                           "%s: the hub's answer for %s has no X-Repo-Commit header (is %s a "
                           "Hugging Face endpoint?)",
                           h->repo, file, h->endpoint);
        }
        snprintf(h->commit, sizeof h->commit, "%s", m.commit);
        s = write_ref(h);
        if (s != TP_OK) {
            tp_free(url);
            return s;
        }
        if (local_state(h, file) == F_PRESENT) {
            tp_free(url);
            return TP_OK;
        }
    }
    /* the ETag names the blob: W/ prefix and quotes removed */
    char etag[160];
    const char *e = m.linked_etag[0] ? m.linked_etag : m.etag;
    if (!strncmp(e, "W/", 2))
        e += 2;
    size_t k = 0;
    for (; *e && k < sizeof etag - 1; e++)
        if (*e != '"')
            etag[k++] = *e;
    etag[k] = '\0';
    if (!k || strchr(etag, '/') || !strcmp(etag, "..") || !strcmp(etag, ".")) {
        tp_free(url);
        return tp_fail(h->err, TP_ERR_NETWORK, "%s of %s: the hub gave no usable ETag", file,
                       h->repo);
    }
    long long size = m.linked_size >= 0 ? m.linked_size : m.content_length;
    char *blob = str_printf("%s/blobs/%s", h->repo_dir, etag);
    if (!blob) {
        tp_free(url);
        return tp_fail(h->err, TP_ERR_OUT_OF_MEMORY, "out of memory");
    }
    if (!(path_is_file(blob) && (size < 0 || file_size(blob) == size)))
        s = download_blob(h, file, url, etag, size, blob);
    tp_free(url);
    tp_free(blob);
    if (s == TP_OK)
        s = link_snapshot(h, file, etag);
    return s;
}

static tp_status fetch_all(hub *h) {
    const want *lists[2] = {config_files, tokenizer_files};
    const size_t counts[2] = {2, 4};
    const unsigned bits[2] = {TP_RESOLVE_CONFIG, TP_RESOLVE_TOKENIZER};
    tp_status s;
    for (int l = 0; l < 2; l++) {
        if (!(h->p->files & bits[l]))
            continue;
        for (size_t i = 0; i < counts[l]; i++) {
            bool absent;
            s = fetch(h, lists[l][i].file, lists[l][i].optional, &absent);
            if (s != TP_OK)
                return s;
        }
    }
    if (!(h->p->files & TP_RESOLVE_WEIGHTS))
        return TP_OK;
    bool absent = false;
    s = fetch(h, "model.safetensors", true, &absent);
    if (s != TP_OK || !absent)
        return s;
    s = fetch(h, "model.safetensors.index.json", true, &absent);
    if (s != TP_OK)
        return s;
    if (absent)
        return tp_fail(h->err, TP_ERR_NOT_FOUND,
                       "repository %s (revision %s) has neither model.safetensors nor "
                       "model.safetensors.index.json (tpipe reads safetensors weights only)",
                       h->repo, h->revision);
    char **names;
    size_t n;
    s = index_shards(h, &names, &n, h->err);
    if (s != TP_OK)
        return s;
    for (size_t i = 0; i < n && s == TP_OK; i++)
        s = fetch(h, names[i], false, NULL);
    free_names(names, n);
    return s;
}

static pthread_once_t curl_once = PTHREAD_ONCE_INIT;
static CURLcode curl_init_rc;
static void curl_init(void) {
    curl_init_rc = curl_global_init(CURL_GLOBAL_DEFAULT);
}

tp_status tp_model_resolve(const char *id_or_path, const tp_resolve_params *params, char **path,
                           tp_error *err) {
    tp_error local_err;
    if (!err)
        err = &local_err;
    tp_error_clear(err);
    if (!id_or_path || !path)
        return tp_fail(err, TP_ERR_INVALID_ARGUMENT, "tp_model_resolve: NULL argument");
    *path = NULL;
    tp_resolve_params defaults = tp_resolve_default_params();
    const tp_resolve_params *p = params ? params : &defaults;
    if (!*id_or_path)
        return tp_fail(err, TP_ERR_INVALID_ARGUMENT, "empty model name");
    char *gguf = NULL;
    if (tp_gguf_checkpoint_path(id_or_path, &gguf)) { /* a local GGUF checkpoint */
        *path = gguf;
        return TP_OK;
    }
    if (tp_dir_exists(id_or_path)) {
        *path = tp_strdup(id_or_path);
        return *path ? TP_OK : tp_fail(err, TP_ERR_OUT_OF_MEMORY, "out of memory");
    }
    if (p->files == 0 || (p->files & ~TP_RESOLVE_ALL))
        return tp_fail(err, TP_ERR_INVALID_ARGUMENT, "tp_model_resolve: bad files mask %#x",
                       p->files);

    hub h;
    memset(&h, 0, sizeof h);
    h.p = p;
    h.err = err;
    /* id syntax, cache folder and repo folder name as the io module reads them */
    char *id_rev = NULL;
    if (tp_hf_parse_id(id_or_path, &h.repo, &id_rev, err) != TP_OK) {
        if (err->status == TP_ERR_OUT_OF_MEMORY)
            return TP_ERR_OUT_OF_MEMORY;
        char msg[TP_ERROR_MESSAGE_MAX];
        snprintf(msg, sizeof msg, "%s", err->message);
        return tp_fail(err, TP_ERR_NOT_FOUND, "%s", msg);
    }
    h.revision = tp_strdup(p->revision ? p->revision : id_rev);
    tp_free(id_rev);
    tp_status s = TP_OK;
    if (p->cache_dir)
        h.cache = tp_strdup(p->cache_dir);
    else if ((s = tp_hf_cache_dir(&h.cache, err)) != TP_OK)
        goto out;
    if (!h.revision || !h.cache) {
        s = tp_fail(err, TP_ERR_OUT_OF_MEMORY, "out of memory");
        goto out;
    }
    if (!*h.revision || strstr(h.revision, "..")) {
        s = tp_fail(err, TP_ERR_INVALID_ARGUMENT, "bad revision \"%s\" for %s", h.revision, h.repo);
        goto out;
    }
    char *folder = tp_hf_repo_folder(h.repo);
    h.repo_dir = folder ? tp_path_join(h.cache, folder) : NULL;
    tp_free(folder);
    if (!h.repo_dir) {
        s = tp_fail(err, TP_ERR_OUT_OF_MEMORY, "out of memory");
        goto out;
    }
    h.offline = p->offline || env_truthy("HF_HUB_OFFLINE");

    /* 1. the local cache */
    bool have_local = local_commit(&h);
    const char *missing = NULL;
    if (have_local && local_complete(&h, true, &missing)) {
        *path = snapshot_dir(&h);
        s = *path ? TP_OK : tp_fail(err, TP_ERR_OUT_OF_MEMORY, "out of memory");
        goto out;
    }
    if (h.offline) {
        if (have_local && local_complete(&h, false, &missing)) {
            *path = snapshot_dir(&h);
            s = *path ? TP_OK : tp_fail(err, TP_ERR_OUT_OF_MEMORY, "out of memory");
        } else {
            s = tp_fail(err, TP_ERR_NOT_FOUND,
                        "%s (revision %s) is not in the Hugging Face cache %s (missing %s) "
                        "and offline mode is on (HF_HUB_OFFLINE)",
                        h.repo, h.revision, h.cache, missing ? missing : "files");
        }
        goto out;
    }

    /* 2. the hub */
    const char *ep = p->endpoint ? p->endpoint : env_nonempty("HF_ENDPOINT");
    h.endpoint = tp_strdup(ep ? ep : HUB_DEFAULT_ENDPOINT);
    h.url_repo = tp_strdup(h.repo);
    h.token = p->token ? tp_strdup(p->token) : read_token();
    if (!h.endpoint || !h.url_repo) {
        s = tp_fail(err, TP_ERR_OUT_OF_MEMORY, "out of memory");
        goto out;
    }
    while (strlen(h.endpoint) > 1 && h.endpoint[strlen(h.endpoint) - 1] == '/')
        h.endpoint[strlen(h.endpoint) - 1] = '\0';
    pthread_once(&curl_once, curl_init);
    if (curl_init_rc != CURLE_OK || !(h.curl = curl_easy_init())) {
        s = tp_fail(err, TP_ERR_NETWORK, "cannot initialise libcurl");
        goto out;
    }
    /* A commit resolved from a stale ref must not pin the download: ask the hub. */
    if (!is_hex(h.revision, 40))
        h.commit[0] = '\0';
    s = fetch_all(&h);
    if (s == TP_OK) {
        *path = snapshot_dir(&h);
        if (!*path)
            s = tp_fail(err, TP_ERR_OUT_OF_MEMORY, "out of memory");
    } else if (h.conn_failed && s == TP_ERR_NETWORK) {
        /* no network: fall back to a cached snapshot that has the required files */
        hub local = h;
        local.commit[0] = '\0';
        if (local_commit(&local) && local_complete(&local, false, &missing)) {
            snprintf(h.commit, sizeof h.commit, "%s", local.commit);
            tp_log(TP_LOG_WARN, "%s: using the cached snapshot %s (%s)", h.repo, h.commit,
                   err->message);
            tp_error_clear(err);
            *path = snapshot_dir(&h);
            s = *path ? TP_OK : tp_fail(err, TP_ERR_OUT_OF_MEMORY, "out of memory");
        }
    }
out:
    hub_free(&h);
    return s;
}
