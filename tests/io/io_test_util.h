/*
 * io_test_util.h — helpers shared by the io tests: a temp folder that is removed
 * at the end, raw file writers for hand-made safetensors files, and substring
 * checks on error messages.
 */
#ifndef TP_IO_TEST_UTIL_H
#define TP_IO_TEST_UTIL_H

#include "test_util.h"

#include <dirent.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

/* Creates a fresh temp folder (mkdtemp) and returns its path (static buffer). */
static inline const char *io_tmpdir(void) {
    static char buf[256];
    const char *base = getenv("TMPDIR");
    snprintf(buf, sizeof buf, "%s/tpipe-io-XXXXXX", base && *base ? base : "/tmp");
    if (!mkdtemp(buf)) {
        perror("mkdtemp");
        exit(1);
    }
    return buf;
}

/* Removes a folder tree (only what the tests created: files and folders). */
static inline void io_rmtree(const char *path) {
    DIR *d = opendir(path);
    if (!d) {
        unlink(path);
        return;
    }
    struct dirent *e;
    while ((e = readdir(d))) {
        if (!strcmp(e->d_name, ".") || !strcmp(e->d_name, ".."))
            continue;
        size_t n = strlen(path) + strlen(e->d_name) + 2;
        char *p = malloc(n);
        memcpy(p, path, strlen(path));
        p[strlen(path)] = '/';
        memcpy(p + strlen(path) + 1, e->d_name, strlen(e->d_name) + 1);
        struct stat st;
        if (lstat(p, &st) == 0 && S_ISDIR(st.st_mode))
            io_rmtree(p);
        else
            unlink(p);
        free(p);
    }
    closedir(d);
    rmdir(path);
}

static inline void io_write_bytes(const char *path, const void *data, size_t n) {
    FILE *f = fopen(path, "wb");
    if (!f || (n && fwrite(data, 1, n, f) != n)) {
        perror(path);
        exit(1);
    }
    fclose(f);
}

/* Writes a safetensors file: 8-byte length (hlen_override when non-zero),
 * header text, then `data_len` bytes of data (data, or a ramp when NULL). */
static inline void io_write_st(const char *path, const char *header, uint64_t hlen_override,
                               const void *data, size_t data_len) {
    size_t hl = strlen(header);
    uint64_t hlen = hlen_override ? hlen_override : hl;
    size_t n = 8 + hl + data_len;
    unsigned char *buf = malloc(n ? n : 1);
    for (int i = 0; i < 8; i++)
        buf[i] = (unsigned char)(hlen >> (8 * i));
    memcpy(buf + 8, header, hl);
    for (size_t i = 0; i < data_len; i++)
        buf[8 + hl + i] = data ? ((const unsigned char *)data)[i] : (unsigned char)i;
    io_write_bytes(path, buf, n);
    free(buf);
}

static inline char *io_join(const char *a, const char *b) {
    static char bufs[4][4096];
    static int k;
    char *p = bufs[k++ & 3];
    size_t la = strlen(a), lb = strlen(b);
    if (la + lb + 2 > sizeof bufs[0]) {
        fprintf(stderr, "io_join: path too long\n");
        exit(1);
    }
    memcpy(p, a, la);
    p[la] = '/';
    memcpy(p + la + 1, b, lb + 1);
    return p;
}

static inline int io_contains(const char *hay, const char *needle) {
    return strstr(hay, needle) != NULL;
}

#endif
