/*
 * fake_hub.c — the loopback HTTP server of fake_hub.h. Deliberately simple:
 * HTTP/1.1 with "Connection: close", one connection at a time, which is all
 * the hub client needs (it makes one request at a time).
 */
#include "fake_hub.h"
#include "net/net.h"

#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>
#include <unistd.h>

fh_file *fh_add(fake_hub *h, const char *repo, const char *path, const void *data, size_t size,
                bool lfs) {
    if (h->n_files >= FH_MAX_FILES)
        return NULL;
    fh_file *f = &h->files[h->n_files++];
    memset(f, 0, sizeof *f);
    snprintf(f->repo, sizeof f->repo, "%s", repo);
    snprintf(f->path, sizeof f->path, "%s", path);
    f->data = malloc(size ? size : 1);
    if (!f->data)
        return NULL;
    memcpy(f->data, data, size);
    f->size = size;
    f->lfs = lfs;
    tp_sha256 s;
    uint8_t d[32];
    tp_sha256_init(&s);
    tp_sha256_update(&s, data, size);
    tp_sha256_final(&s, d);
    tp_sha256_hex(d, f->sha256);
    /* a non-LFS ETag is a git blob id on the real hub: any 40 hex digits do here */
    memcpy(f->etag, f->sha256 + 8, 40);
    f->etag[40] = '\0';
    return f;
}

fh_file *fh_add_file(fake_hub *h, const char *repo, const char *path, const char *disk_path,
                     bool lfs) {
    FILE *fp = fopen(disk_path, "rb");
    if (!fp)
        return NULL;
    fseek(fp, 0, SEEK_END);
    long n = ftell(fp);
    fseek(fp, 0, SEEK_SET);
    unsigned char *buf = malloc(n > 0 ? (size_t)n : 1);
    fh_file *f = NULL;
    if (buf && fread(buf, 1, (size_t)n, fp) == (size_t)n)
        f = fh_add(h, repo, path, buf, (size_t)n, lfs);
    free(buf);
    fclose(fp);
    return f;
}

int fh_requests(fake_hub *h) {
    pthread_mutex_lock(&h->mu);
    int n = h->n_requests;
    pthread_mutex_unlock(&h->mu);
    return n;
}

static void send_all(int fd, const void *data, size_t n) {
    const char *p = data;
    while (n) {
        ssize_t w = send(fd, p, n, MSG_NOSIGNAL);
        if (w <= 0) {
            if (w < 0 && errno == EINTR)
                continue;
            return;
        }
        p += w;
        n -= (size_t)w;
    }
}

static void reply(int fd, int code, const char *reason, const char *extra_headers,
                  const char *body) {
    char head[2048];
    size_t blen = body ? strlen(body) : 0;
    int n = snprintf(head, sizeof head,
                     "HTTP/1.1 %d %s\r\nContent-Length: %zu\r\nConnection: close\r\n%s\r\n", code,
                     reason, blen, extra_headers ? extra_headers : "");
    send_all(fd, head, (size_t)n);
    if (body)
        send_all(fd, body, blen);
}

/* Sends a file body (whole or from a Range) with the given extra headers. */
static void send_file(fake_hub *h, int fd, const fh_file *f, bool head_only, long range_start,
                      const char *extra) {
    char hdr[2048];
    size_t start = 0;
    int code = 200;
    if (range_start >= 0) {
        if ((size_t)range_start >= f->size) {
            char cr[128];
            snprintf(cr, sizeof cr, "Content-Range: bytes */%zu\r\n", f->size);
            reply(fd, 416, "Range Not Satisfiable", cr, NULL);
            return;
        }
        start = (size_t)range_start;
        code = 206;
    }
    size_t len = f->size - start;
    int n = snprintf(hdr, sizeof hdr,
                     "HTTP/1.1 %d %s\r\nContent-Length: %zu\r\n%sConnection: close\r\n", code,
                     code == 206 ? "Partial Content" : "OK", len, extra ? extra : "");
    if (code == 206)
        n += snprintf(hdr + n, sizeof hdr - (size_t)n, "Content-Range: bytes %zu-%zu/%zu\r\n",
                      start, f->size - 1, f->size);
    n += snprintf(hdr + n, sizeof hdr - (size_t)n, "\r\n");
    send_all(fd, hdr, (size_t)n);
    if (head_only)
        return;
    size_t limit = len;
    pthread_mutex_lock(&h->mu);
    if (range_start >= 0) {
        h->n_range++;
        h->last_range_start = range_start;
    }
    if (h->drop_after > 0 && h->drop_count > 0 && (size_t)h->drop_after < limit) {
        limit = (size_t)h->drop_after;
        h->drop_count--;
    }
    pthread_mutex_unlock(&h->mu);
    if (f->corrupt) {
        unsigned char *copy = malloc(f->size);
        if (!copy)
            return;
        memcpy(copy, f->data, f->size);
        copy[f->size / 2] ^= 0x5a;
        send_all(fd, copy + start, limit);
        free(copy);
    } else {
        send_all(fd, f->data + start, limit);
    }
}

static const fh_file *find(fake_hub *h, const char *repo, const char *path) {
    for (size_t i = 0; i < h->n_files; i++)
        if (!strcmp(h->files[i].repo, repo) && !strcmp(h->files[i].path, path))
            return &h->files[i];
    return NULL;
}

static bool repo_exists(fake_hub *h, const char *repo) {
    for (size_t i = 0; i < h->n_files; i++)
        if (!strcmp(h->files[i].repo, repo))
            return true;
    return false;
}

static void handle(fake_hub *h, int fd) {
    char req[8192];
    size_t got = 0;
    while (got < sizeof req - 1) {
        struct pollfd p = {fd, POLLIN, 0};
        if (poll(&p, 1, 5000) <= 0)
            return;
        ssize_t r = recv(fd, req + got, sizeof req - 1 - got, 0);
        if (r <= 0)
            return;
        got += (size_t)r;
        req[got] = '\0';
        if (strstr(req, "\r\n\r\n"))
            break;
    }
    char method[16], target[4096];
    if (sscanf(req, "%15s %4095s", method, target) != 2) {
        reply(fd, 400, "Bad Request", NULL, "bad request");
        return;
    }
    bool head_only = !strcmp(method, "HEAD");
    long range_start = -1;
    char auth[128] = "";
    for (char *line = strstr(req, "\r\n"); line && line[2]; line = strstr(line + 2, "\r\n")) {
        char *l = line + 2;
        if (!strncasecmp(l, "Range: bytes=", 13))
            range_start = strtol(l + 13, NULL, 10);
        if (!strncasecmp(l, "Authorization: ", 15))
            sscanf(l + 15, "%127[^\r]", auth);
    }
    pthread_mutex_lock(&h->mu);
    h->n_requests++;
    pthread_mutex_unlock(&h->mu);

    if (!strncmp(target, "/cdn/", 5)) {
        /* /cdn/<file number>/<sha256> */
        char *end;
        unsigned long i = strtoul(target + 5, &end, 10);
        if (*end == '/' && i < h->n_files && h->files[i].lfs &&
            !strncmp(h->files[i].sha256, end + 1, 64)) {
            send_file(h, fd, &h->files[i], head_only, range_start, NULL);
            return;
        }
        reply(fd, 404, "Not Found", NULL, "no such blob");
        return;
    }
    /* /{org}/{name}/resolve/{rev}/{file} */
    char repo[256], rev[128];
    const char *r = strstr(target, "/resolve/");
    if (target[0] != '/' || !r || (size_t)(r - target - 1) >= sizeof repo) {
        reply(fd, 404, "Not Found", "X-Error-Code: EntryNotFound\r\n", "not found");
        return;
    }
    snprintf(repo, sizeof repo, "%.*s", (int)(r - target - 1), target + 1);
    const char *rv = r + 9;
    const char *slash = strchr(rv, '/');
    if (!slash || (size_t)(slash - rv) >= sizeof rev) {
        reply(fd, 404, "Not Found", "X-Error-Code: EntryNotFound\r\n", "not found");
        return;
    }
    snprintf(rev, sizeof rev, "%.*s", (int)(slash - rv), rv);
    const char *file = slash + 1;
    pthread_mutex_lock(&h->mu);
    snprintf(h->last_auth, sizeof h->last_auth, "%s", auth);
    pthread_mutex_unlock(&h->mu);

    if (h->renamed_from[0] && !strcmp(repo, h->renamed_from)) {
        char loc[4400];
        /* the hub's answer for a renamed repo: relative, and it may carry a commit */
        snprintf(loc, sizeof loc, "Location: /%s/resolve/%s/%s\r\nX-Repo-Commit: %s\r\n",
                 h->renamed_to, rev, file, h->commit);
        reply(fd, 307, "Temporary Redirect", loc, NULL);
        return;
    }
    if (h->gated_repo[0] && !strcmp(repo, h->gated_repo)) {
        char want[128];
        snprintf(want, sizeof want, "Bearer %s", h->token);
        if (!auth[0]) {
            reply(fd, 401, "Unauthorized",
                  "X-Error-Code: GatedRepo\r\nX-Error-Message: Access to this model is "
                  "restricted. You must be authenticated to access it.\r\n",
                  "gated");
            return;
        }
        if (strcmp(auth, want)) {
            reply(fd, 403, "Forbidden",
                  "X-Error-Code: GatedRepo\r\nX-Error-Message: Access to this model is "
                  "restricted and you are not in the authorized list.\r\n",
                  "gated");
            return;
        }
    }
    if (!repo_exists(h, repo)) {
        reply(fd, 404, "Not Found",
              "X-Error-Code: RepoNotFound\r\nX-Error-Message: Repository not found\r\n",
              "repo not found");
        return;
    }
    if (strcmp(rev, "main") && strcmp(rev, h->commit)) {
        reply(fd, 404, "Not Found",
              "X-Error-Code: RevisionNotFound\r\nX-Error-Message: Invalid rev id\r\n",
              "revision not found");
        return;
    }
    const fh_file *f = find(h, repo, file);
    char extra[1024];
    if (!f) {
        snprintf(extra, sizeof extra,
                 "X-Repo-Commit: %s\r\nX-Error-Code: EntryNotFound\r\nX-Error-Message: Entry not "
                 "found\r\n",
                 h->commit);
        reply(fd, 404, "Not Found", extra, "entry not found");
        return;
    }
    if (f->lfs) {
        snprintf(extra, sizeof extra,
                 "X-Repo-Commit: %s\r\nX-Linked-Etag: \"%s\"\r\nX-Linked-Size: %zu\r\n"
                 "ETag: \"%s\"\r\nLocation: http://127.0.0.1:%d/cdn/%zu/%s\r\n",
                 h->commit, f->sha256, f->size, f->sha256, h->port, (size_t)(f - h->files),
                 f->sha256);
        reply(fd, 302, "Found", extra, NULL);
        return;
    }
    snprintf(extra, sizeof extra, "X-Repo-Commit: %s\r\nETag: \"%s\"\r\n", h->commit, f->etag);
    send_file(h, fd, f, head_only, range_start, extra);
}

static void *serve(void *arg) {
    fake_hub *h = arg;
    while (!h->stop) {
        struct pollfd p = {h->listen_fd, POLLIN, 0};
        if (poll(&p, 1, 50) <= 0)
            continue;
        int fd = accept(h->listen_fd, NULL, NULL);
        if (fd < 0)
            continue;
        handle(h, fd);
        shutdown(fd, SHUT_RDWR);
        close(fd);
    }
    return NULL;
}

int fh_start(fake_hub *h) {
    pthread_mutex_init(&h->mu, NULL);
    if (!h->commit[0])
        snprintf(h->commit, sizeof h->commit, "0123456789abcdef0123456789abcdef01234567");
    h->listen_fd = socket(AF_INET, SOCK_STREAM, 0);
    if (h->listen_fd < 0)
        return -1;
    int one = 1;
    setsockopt(h->listen_fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
    struct sockaddr_in a;
    memset(&a, 0, sizeof a);
    a.sin_family = AF_INET;
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    a.sin_port = 0;
    if (bind(h->listen_fd, (struct sockaddr *)&a, sizeof a) != 0 || listen(h->listen_fd, 16) != 0)
        return -1;
    socklen_t len = sizeof a;
    getsockname(h->listen_fd, (struct sockaddr *)&a, &len);
    h->port = ntohs(a.sin_port);
    h->stop = 0;
    return pthread_create(&h->thread, NULL, serve, h) ? -1 : 0;
}

void fh_stop(fake_hub *h) {
    h->stop = 1;
    pthread_join(h->thread, NULL);
    close(h->listen_fd);
    for (size_t i = 0; i < h->n_files; i++)
        free(h->files[i].data);
    pthread_mutex_destroy(&h->mu);
}
