/*
 * test_st_zerocopy.c — opening a multi-GB safetensors file costs no copy.
 *
 * Writes a sparse 4 GiB file (header + ftruncate: no disk blocks are used) in a
 * temp folder, opens it, and checks from /proc/self/statm that resident memory
 * grew by far less than the file size; that the tensor pointers lie inside a
 * mapping of that file (/proc/self/maps); that resident memory does grow once
 * a tensor's pages are touched, and falls again after close. The file is
 * deleted at the end.
 */
#include "io/safetensors.h"
#include "io_test_util.h"

#include <fcntl.h>
#include <sys/mman.h>

#define GIB (1024.0 * 1024.0 * 1024.0)
#define MIB (1024.0 * 1024.0)

static double rss_bytes(void) {
    FILE *f = fopen("/proc/self/statm", "r");
    if (!f)
        return -1;
    long size = 0, resident = 0;
    int n = fscanf(f, "%ld %ld", &size, &resident);
    fclose(f);
    return n == 2 ? (double)resident * (double)sysconf(_SC_PAGESIZE) : -1;
}

/* True when [p, p+n) lies in one mapping of a file whose path ends with name. */
static int mapped_from(const void *p, size_t n, const char *name) {
    FILE *f = fopen("/proc/self/maps", "r");
    if (!f)
        return 0;
    char line[8192];
    int found = 0;
    uintptr_t a = (uintptr_t)p;
    while (fgets(line, sizeof line, f)) {
        unsigned long lo, hi;
        if (sscanf(line, "%lx-%lx", &lo, &hi) != 2)
            continue;
        char *nl = strchr(line, '\n');
        if (nl)
            *nl = 0;
        if (a >= lo && a + n <= hi && strstr(line, name))
            found = 1;
    }
    fclose(f);
    return found;
}

int main(void) {
    if (sizeof(size_t) < 8) {
        printf("SKIP: needs a 64-bit address space\n");
        return 0;
    }
    char dir[256];
    snprintf(dir, sizeof dir, "%s", io_tmpdir());
    char path[512];
    snprintf(path, sizeof path, "%s/big.safetensors", dir);

    /* two BF16 tensors: "a" = 2 GiB - 64 KiB, "b" = 2 GiB; 4 GiB of data in all */
    const uint64_t na = (1ull << 30) - 32768, nb = 1ull << 30;
    char header[512];
    int hl = snprintf(header, sizeof header,
                      "{\"__metadata__\":{\"format\":\"pt\"},"
                      "\"a\":{\"dtype\":\"BF16\",\"shape\":[%llu],\"data_offsets\":[0,%llu]},"
                      "\"b\":{\"dtype\":\"BF16\",\"shape\":[1024,%llu],"
                      "\"data_offsets\":[%llu,%llu]}}",
                      (unsigned long long)na, (unsigned long long)(2 * na),
                      (unsigned long long)(nb / 1024), (unsigned long long)(2 * na),
                      (unsigned long long)(2 * na + 2 * nb));
    while ((8 + hl) % 8) /* pad with spaces so data starts 8-aligned */
        header[hl++] = ' ';
    header[hl] = 0;
    uint64_t file_size = 8 + (uint64_t)hl + 2 * na + 2 * nb;
    int fd = open(path, O_CREAT | O_TRUNC | O_WRONLY, 0644);
    CHECK(fd >= 0);
    if (fd < 0)
        return tp_test_exit();
    unsigned char len8[8];
    for (int i = 0; i < 8; i++)
        len8[i] = (unsigned char)((uint64_t)hl >> (8 * i));
    int ok = write(fd, len8, 8) == 8 && write(fd, header, (size_t)hl) == hl &&
             ftruncate(fd, (off_t)file_size) == 0;
    close(fd);
    CHECK_MSG(ok, "cannot write the sparse file %s", path);
    if (!ok) {
        io_rmtree(dir);
        return tp_test_exit();
    }

    double rss0 = rss_bytes();
    double t0 = tp_now();
    tp_st_model *m = NULL;
    tp_error err;
    tp_status st = tp_st_open(path, &m, &err);
    double t_open = tp_now() - t0;
    double rss1 = rss_bytes();
    CHECK_MSG(st == TP_OK, "%s", err.message);
    if (st == TP_OK) {
        const tp_st_tensor *a = tp_st_find(m, "a"), *b = tp_st_find(m, "b");
        CHECK(a && b);
        if (a && b) {
            CHECK((uint64_t)a->n_bytes + b->n_bytes == file_size - 8 - (uint64_t)hl);
            CHECK(b->n_dims == 2 && b->shape[0] == 1024 && b->dtype == TP_DTYPE_BF16);
            /* zero-copy: the data pointers are inside the file's mapping */
            CHECK(mapped_from(a->data, a->n_bytes, "big.safetensors"));
            CHECK(mapped_from(b->data, b->n_bytes, "big.safetensors"));
            /* open cost no copy: far less than the 4 GiB file became resident */
            CHECK_MSG(rss1 - rss0 < 16 * MIB, "RSS grew by %.1f MiB on opening a %.2f GiB file",
                      (rss1 - rss0) / MIB, (double)file_size / GIB);

            /* touching 64 MiB of tensor "b" makes those pages resident */
            const volatile unsigned char *p = b->data;
            unsigned sum = 0;
            size_t touch = (size_t)(64 * MIB);
            for (size_t off = 0; off < touch; off += 4096)
                sum += p[off];
            double rss2 = rss_bytes();
            CHECK(sum == 0); /* a hole reads as zeros */
            CHECK_MSG(rss2 - rss1 > 48 * MIB, "RSS grew by only %.1f MiB after touching 64 MiB",
                      (rss2 - rss1) / MIB);
            printf("file %.2f GiB: open %.3f ms, RSS +%.2f MiB after open, +%.1f MiB after "
                   "touching 64 MiB\n",
                   (double)file_size / GIB, t_open * 1e3, (rss1 - rss0) / MIB, (rss2 - rss1) / MIB);
        }
        tp_st_close(m);
        double rss3 = rss_bytes();
        CHECK_MSG(rss3 - rss0 < 16 * MIB, "RSS still +%.1f MiB after close", (rss3 - rss0) / MIB);
    }
    unlink(path);
    io_rmtree(dir);
    return tp_test_exit();
}
