/*
 * error.c — tp_status names and the tp_error helpers every module uses to
 * report what went wrong, where, and for which item.
 */
#include "core/core.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static const char *const status_names[TP_STATUS_COUNT] = {
    [TP_OK] = "TP_OK",
    [TP_ERR_INVALID_ARGUMENT] = "TP_ERR_INVALID_ARGUMENT",
    [TP_ERR_OUT_OF_MEMORY] = "TP_ERR_OUT_OF_MEMORY",
    [TP_ERR_IO] = "TP_ERR_IO",
    [TP_ERR_FORMAT] = "TP_ERR_FORMAT",
    [TP_ERR_UNSUPPORTED] = "TP_ERR_UNSUPPORTED",
    [TP_ERR_NOT_FOUND] = "TP_ERR_NOT_FOUND",
    [TP_ERR_INPUT] = "TP_ERR_INPUT",
    [TP_ERR_TOO_LONG] = "TP_ERR_TOO_LONG",
    [TP_ERR_TEMPLATE] = "TP_ERR_TEMPLATE",
    [TP_ERR_NETWORK] = "TP_ERR_NETWORK",
    [TP_ERR_CANCELLED] = "TP_ERR_CANCELLED",
    [TP_ERR_INTERNAL] = "TP_ERR_INTERNAL",
};

const char *tp_status_name(tp_status status) {
    if ((unsigned)status >= TP_STATUS_COUNT)
        return "TP_STATUS_UNKNOWN";
    return status_names[status];
}

void tp_error_clear(tp_error *err) {
    if (!err)
        return;
    err->status = TP_OK;
    err->item = -1;
    err->message[0] = '\0';
}

__attribute__((format(printf, 4, 0))) static tp_status
vfail(tp_error *err, tp_status status, long item, const char *fmt, va_list ap) {
    if (err) {
        err->status = status;
        err->item = item;
        vsnprintf(err->message, sizeof err->message, fmt, ap);
    }
    return status;
}

tp_status tp_fail(tp_error *err, tp_status status, const char *fmt, ...) {
    va_list ap;
    va_start(ap, fmt);
    vfail(err, status, -1, fmt, ap);
    va_end(ap);
    return status;
}

tp_status tp_fail_item(tp_error *err, tp_status status, long item, const char *fmt, ...) {
    va_list ap;
    va_start(ap, fmt);
    vfail(err, status, item, fmt, ap);
    va_end(ap);
    return status;
}

void tp_error_prefix(tp_error *err, const char *fmt, ...) {
    if (!err)
        return;
    char prefix[TP_ERROR_MESSAGE_MAX];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(prefix, sizeof prefix, fmt, ap);
    va_end(ap);
    char old[TP_ERROR_MESSAGE_MAX];
    memcpy(old, err->message, sizeof old);
    /* truncation is intended: the message is capped at TP_ERROR_MESSAGE_MAX */
    tp_buf b = {0};
    tp_buf_printf(&b, "%s: %s", prefix, old);
    if (b.data) {
        size_t n = b.len < sizeof err->message - 1 ? b.len : sizeof err->message - 1;
        memcpy(err->message, b.data, n);
        err->message[n] = '\0';
    }
    tp_buf_free(&b);
}

_Noreturn void tp_assert_fail(const char *cond, const char *file, int line) {
    tp_log(TP_LOG_ERROR, "internal assertion failed: %s at %s:%d", cond, file, line);
    fprintf(stderr, "tpipe: internal assertion failed: %s at %s:%d\n", cond, file, line);
    abort();
}
