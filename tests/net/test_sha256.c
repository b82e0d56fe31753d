/*
 * test_sha256.c — SHA-256 against the FIPS 180-4 / NIST example vectors
 * ("abc", the empty string, the two-block 448-bit message, one million 'a'),
 * fed whole and in odd-sized pieces (the block buffering is where bugs hide),
 * and tp_sha256_file on a written file.
 */
#include "net/net.h"
#include "test_util.h"

#include <unistd.h>

static void hash_pieces(const char *msg, size_t n, size_t piece, char hex[65]) {
    tp_sha256 s;
    uint8_t d[32];
    tp_sha256_init(&s);
    for (size_t i = 0; i < n; i += piece)
        tp_sha256_update(&s, msg + i, n - i < piece ? n - i : piece);
    tp_sha256_final(&s, d);
    tp_sha256_hex(d, hex);
}

int main(void) {
    static const struct {
        const char *msg;
        const char *hex;
    } v[] = {
        {"abc", "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"},
        {"", "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"},
        {"abcdbcdecdefdefgefghfghighijhijkijkljklmklmnlmnomnopnopq",
         "248d6a61d20638b8e5c026930c3e6039a33ce45964ff2167f6ecedd419db06c1"},
        {"abcdefghbcdefghicdefghijdefghijkefghijklfghijklmghijklmnhijklmnoijklmnopjklmnopqklmnopqr"
         "lmnopqrsmnopqrstnopqrstu",
         "cf5b16a778af8380036ce59e7b0492370b249b11e8f07a51afac45037afee9d1"},
    };
    char hex[65];
    for (size_t i = 0; i < sizeof v / sizeof v[0]; i++) {
        size_t n = strlen(v[i].msg);
        size_t pieces[] = {n ? n : 1, 1, 3, 63, 64, 65};
        for (size_t p = 0; p < sizeof pieces / sizeof pieces[0]; p++) {
            hash_pieces(v[i].msg, n, pieces[p], hex);
            CHECK_MSG(!strcmp(hex, v[i].hex), "vector %zu piece %zu: %s", i, pieces[p], hex);
        }
    }
    /* one million 'a' (FIPS 180-2 appendix B.3) */
    size_t n = 1000000;
    char *a = malloc(n);
    CHECK(a != NULL);
    if (!a)
        return tp_test_exit();
    memset(a, 'a', n);
    hash_pieces(a, n, 4099, hex);
    CHECK_STR(hex, "cdc76e5c9914fb9281a1c7e284d73e67f1809a48a497200e046d39ccc7112cd0");

    /* the file form on the same bytes */
    char path[] = "/tmp/tp_sha256_XXXXXX";
    int fd = mkstemp(path);
    CHECK(fd >= 0);
    if (fd >= 0) {
        CHECK(write(fd, a, n) == (ssize_t)n);
        close(fd);
        tp_error err;
        CHECK_EQ_INT(tp_sha256_file(path, hex, &err), TP_OK);
        CHECK_STR(hex, "cdc76e5c9914fb9281a1c7e284d73e67f1809a48a497200e046d39ccc7112cd0");
        unlink(path);
        CHECK_EQ_INT(tp_sha256_file(path, hex, &err), TP_ERR_IO);
        CHECK(strstr(err.message, path) != NULL);
    }
    free(a);
    return tp_test_exit();
}
