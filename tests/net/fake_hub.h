/*
 * fake_hub.h — a tiny Hugging Face hub on 127.0.0.1 for the net tests: one
 * server thread, one request per connection, GET and HEAD on
 * /{org}/{name}/resolve/{rev}/{file} with the hub's headers (X-Repo-Commit,
 * ETag, X-Linked-Etag/X-Linked-Size + 302 to /cdn/<sha256> for LFS files),
 * HTTP Range, 401/403 for a gated repo, 404 with X-Error-Code, a 307 for a
 * renamed repo, and fault modes: drop the connection after N body bytes,
 * serve corrupted bytes.
 */
#ifndef TP_FAKE_HUB_H
#define TP_FAKE_HUB_H

#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stddef.h>

#define FH_MAX_FILES 64

typedef struct fh_file {
    char repo[128];
    char path[256];
    unsigned char *data;
    size_t size;
    bool lfs;
    bool corrupt; /* serve one flipped byte (headers still describe the true file) */
    char sha256[65];
    char etag[41]; /* non-LFS ETag (a made-up git-style id) */
} fh_file;

typedef struct fake_hub {
    int listen_fd;
    int port;
    pthread_t thread;
    atomic_int stop;
    pthread_mutex_t mu;
    fh_file files[FH_MAX_FILES];
    size_t n_files;
    char commit[41];
    char gated_repo[128]; /* this repo needs "Authorization: Bearer <token>" */
    char token[64];
    char renamed_from[128]; /* "old/name" answers 307 to renamed_to */
    char renamed_to[128];
    long drop_after; /* > 0: the next drop_count body responses stop after this many bytes */
    int drop_count;
    /* statistics (read under mu) */
    int n_requests;
    int n_range;           /* GETs with a Range header */
    long last_range_start; /* start of the last Range */
    char last_auth[128];   /* Authorization header of the last request on a /resolve/ URL */
} fake_hub;

/* Starts the server on an ephemeral loopback port; 0 on success. */
int fh_start(fake_hub *h);
void fh_stop(fake_hub *h);
/* Adds a file (data copied); computes its sha256 (LFS ETag). */
fh_file *fh_add(fake_hub *h, const char *repo, const char *path, const void *data, size_t size,
                bool lfs);
/* Adds a file read from disk; NULL if it cannot be read. */
fh_file *fh_add_file(fake_hub *h, const char *repo, const char *path, const char *disk_path,
                     bool lfs);
int fh_requests(fake_hub *h);

#endif
