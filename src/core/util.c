/*
 * util.c — time, UTF-8 and small file helpers.
 */
#include "core/core.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>

double tp_now(void) {
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return (double)t.tv_sec + (double)t.tv_nsec * 1e-9;
}

size_t tp_utf8_validate(const char *str, size_t n) {
    const unsigned char *s = (const unsigned char *)str;
    size_t i = 0;
    while (i < n) {
        unsigned c = s[i];
        if (c < 0x80) {
            i++;
            continue;
        }
        size_t len;
        uint32_t cp, min;
        if (c >= 0xC2 && c <= 0xDF) {
            len = 2;
            cp = c & 0x1F;
            min = 0x80;
        } else if (c >= 0xE0 && c <= 0xEF) {
            len = 3;
            cp = c & 0x0F;
            min = 0x800;
        } else if (c >= 0xF0 && c <= 0xF4) {
            len = 4;
            cp = c & 0x07;
            min = 0x10000;
        } else {
            return i;
        }
        if (n - i < len)
            return i;
        for (size_t k = 1; k < len; k++) {
            if ((s[i + k] & 0xC0) != 0x80)
                return i;
            cp = (cp << 6) | (s[i + k] & 0x3F);
        }
        if (cp < min || cp > 0x10FFFF || (cp >= 0xD800 && cp <= 0xDFFF))
            return i;
        i += len;
    }
    return n;
}

int tp_utf8_decode(const char *str, size_t n, uint32_t *cp) {
    const unsigned char *s = (const unsigned char *)str;
    unsigned c = s[0];
    int len = c < 0x80 ? 1 : c < 0xE0 ? 2 : c < 0xF0 ? 3 : 4;
    if ((size_t)len > n) {
        *cp = 0xFFFD;
        return 1;
    }
    switch (len) {
    case 1:
        *cp = c;
        break;
    case 2:
        *cp = ((c & 0x1Fu) << 6) | (s[1] & 0x3Fu);
        break;
    case 3:
        *cp = ((c & 0x0Fu) << 12) | ((s[1] & 0x3Fu) << 6) | (s[2] & 0x3Fu);
        break;
    default:
        *cp = ((c & 0x07u) << 18) | ((s[1] & 0x3Fu) << 12) | ((s[2] & 0x3Fu) << 6) | (s[3] & 0x3Fu);
        break;
    }
    return len;
}

int tp_utf8_encode(uint32_t cp, char *out) {
    unsigned char *o = (unsigned char *)out;
    if (cp < 0x80) {
        o[0] = (unsigned char)cp;
        return 1;
    }
    if (cp < 0x800) {
        o[0] = (unsigned char)(0xC0 | (cp >> 6));
        o[1] = (unsigned char)(0x80 | (cp & 0x3F));
        return 2;
    }
    if (cp < 0x10000) {
        o[0] = (unsigned char)(0xE0 | (cp >> 12));
        o[1] = (unsigned char)(0x80 | ((cp >> 6) & 0x3F));
        o[2] = (unsigned char)(0x80 | (cp & 0x3F));
        return 3;
    }
    o[0] = (unsigned char)(0xF0 | (cp >> 18));
    o[1] = (unsigned char)(0x80 | ((cp >> 12) & 0x3F));
    o[2] = (unsigned char)(0x80 | ((cp >> 6) & 0x3F));
    o[3] = (unsigned char)(0x80 | (cp & 0x3F));
    return 4;
}

size_t tp_utf8_complete_prefix(const char *str, size_t n) {
    const unsigned char *s = (const unsigned char *)str;
    /* look back at most 3 bytes for the lead byte of the last character */
    size_t back = 0;
    while (back < 4 && back < n) {
        unsigned c = s[n - 1 - back];
        if ((c & 0xC0) != 0x80) {
            size_t need = c < 0x80 ? 1 : c >= 0xF0 ? 4 : c >= 0xE0 ? 3 : c >= 0xC0 ? 2 : 1;
            return back + 1 >= need ? n : n - back - 1;
        }
        back++;
    }
    return n; /* only continuation bytes: invalid anyway, let it through */
}

tp_status tp_read_file(const char *path, char **data, size_t *len, tp_error *err) {
    *data = NULL;
    if (len)
        *len = 0;
    FILE *f = fopen(path, "rb");
    if (!f)
        return tp_fail(err, errno == ENOENT ? TP_ERR_NOT_FOUND : TP_ERR_IO, "%s: cannot open: %s",
                       path, strerror(errno));
    struct stat st;
    if (fstat(fileno(f), &st) != 0 || !S_ISREG(st.st_mode)) {
        fclose(f);
        return tp_fail(err, TP_ERR_IO, "%s: not a regular file", path);
    }
    size_t n = (size_t)st.st_size;
    char *buf = tp_malloc(n + 1);
    if (!buf) {
        fclose(f);
        return tp_fail(err, TP_ERR_OUT_OF_MEMORY, "%s: cannot allocate %zu bytes", path, n);
    }
    size_t got = fread(buf, 1, n, f);
    int rerr = ferror(f);
    fclose(f);
    if (got != n || rerr) {
        tp_free(buf);
        return tp_fail(err, TP_ERR_IO, "%s: read error (%zu of %zu bytes)", path, got, n);
    }
    buf[n] = '\0';
    *data = buf;
    if (len)
        *len = n;
    return TP_OK;
}

bool tp_file_exists(const char *path) {
    struct stat st;
    return stat(path, &st) == 0 && S_ISREG(st.st_mode);
}

bool tp_dir_exists(const char *path) {
    struct stat st;
    return stat(path, &st) == 0 && S_ISDIR(st.st_mode);
}

char *tp_path_join(const char *a, const char *b) {
    size_t la = strlen(a), lb = strlen(b);
    while (la > 1 && a[la - 1] == '/')
        la--;
    char *p = tp_malloc(la + lb + 2);
    if (!p)
        return NULL;
    memcpy(p, a, la);
    p[la] = '/';
    memcpy(p + la + 1, b, lb + 1);
    return p;
}

size_t tp_dtype_size(tp_dtype t) {
    switch (t) {
    case TP_DTYPE_F64:
    case TP_DTYPE_I64:
    case TP_DTYPE_U64:
        return 8;
    case TP_DTYPE_F32:
    case TP_DTYPE_I32:
    case TP_DTYPE_U32:
        return 4;
    case TP_DTYPE_F16:
    case TP_DTYPE_BF16:
    case TP_DTYPE_I16:
    case TP_DTYPE_U16:
        return 2;
    case TP_DTYPE_I8:
    case TP_DTYPE_U8:
    case TP_DTYPE_BOOL:
        return 1;
    default:
        return 0;
    }
}

const char *tp_dtype_name(tp_dtype t) {
    static const char *const names[TP_DTYPE_COUNT] = {
        "F32", "F16", "BF16", "F64", "I8", "U8", "I16", "U16", "I32", "U32", "I64", "U64", "BOOL",
    };
    switch (t) {
    case TP_DTYPE_Q8_0:
        return "Q8_0";
    case TP_DTYPE_Q4_K:
        return "Q4_K";
    case TP_DTYPE_Q6_K:
        return "Q6_K";
    default:
        return (unsigned)t < TP_DTYPE_COUNT ? names[t] : "?";
    }
}

bool tp_dtype_is_quant(tp_dtype t) {
    return t == TP_DTYPE_Q8_0 || t == TP_DTYPE_Q4_K || t == TP_DTYPE_Q6_K;
}

size_t tp_dtype_block(tp_dtype t) {
    switch (t) {
    case TP_DTYPE_Q8_0:
        return 32;
    case TP_DTYPE_Q4_K:
    case TP_DTYPE_Q6_K:
        return 256;
    default:
        return 1;
    }
}

size_t tp_dtype_block_bytes(tp_dtype t) {
    switch (t) {
    case TP_DTYPE_Q8_0:
        return 2 + 32;
    case TP_DTYPE_Q4_K:
        return 2 + 2 + 12 + 128;
    case TP_DTYPE_Q6_K:
        return 128 + 64 + 16 + 2;
    default:
        return tp_dtype_size(t);
    }
}

bool tp_dtype_row_bytes(tp_dtype t, uint64_t n, size_t *out) {
    size_t blk = tp_dtype_block(t), bb = tp_dtype_block_bytes(t);
    if (bb == 0 || n % blk != 0 || n / blk > SIZE_MAX)
        return false;
    return tp_mul_size((size_t)(n / blk), bb, out);
}

float tp_f16_to_f32(uint16_t h) {
    uint32_t sign = (uint32_t)(h & 0x8000u) << 16;
    uint32_t exp = (h >> 10) & 0x1Fu;
    uint32_t man = h & 0x3FFu;
    uint32_t bits;
    if (exp == 0) {
        if (man == 0) {
            bits = sign;
        } else { /* subnormal: normalise */
            int e = -1;
            do {
                e++;
                man <<= 1;
            } while (!(man & 0x400u));
            bits = sign | ((uint32_t)(127 - 15 - e) << 23) | ((man & 0x3FFu) << 13);
        }
    } else if (exp == 31) {
        bits = sign | 0x7F800000u | (man << 13);
    } else {
        bits = sign | ((exp + 127 - 15) << 23) | (man << 13);
    }
    union {
        uint32_t u;
        float f;
    } v;
    v.u = bits;
    return v.f;
}
