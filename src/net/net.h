/*
 * net.h — internal API of the net module: SHA-256 (FIPS 180-4, written here so
 * that integrity checks need no extra dependency) and the Hugging Face hub
 * client behind tp_model_resolve (hub.c).
 */
#ifndef TP_NET_H
#define TP_NET_H

#include "core/core.h"

typedef struct tp_sha256 {
    uint32_t h[8];
    uint64_t total; /* bytes hashed so far */
    uint8_t block[64];
    size_t used; /* bytes in block */
} tp_sha256;

void tp_sha256_init(tp_sha256 *s);
void tp_sha256_update(tp_sha256 *s, const void *data, size_t n);
void tp_sha256_final(tp_sha256 *s, uint8_t digest[32]);
/* Lower-case hex of a digest into out (65 bytes, NUL-terminated). */
void tp_sha256_hex(const uint8_t digest[32], char out[65]);
/* SHA-256 of a whole file as lower-case hex. TP_ERR_IO names the file. */
tp_status tp_sha256_file(const char *path, char out[65], tp_error *err);

#endif /* TP_NET_H */
