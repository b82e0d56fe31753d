/*
 * log.c — the log callback. Silent unless the application installs one.
 */
#include "core/core.h"

#include <stdio.h>

static tp_log_fn log_fn;
static void *log_user;
static tp_log_level log_min = TP_LOG_INFO;

void tp_set_log_callback(tp_log_fn fn, void *user, tp_log_level min_level) {
    log_fn = fn;
    log_user = user;
    log_min = min_level;
}

bool tp_log_enabled(tp_log_level level) {
    return log_fn != NULL && level >= log_min;
}

void tp_log(tp_log_level level, const char *fmt, ...) {
    if (!tp_log_enabled(level))
        return;
    char msg[1024];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    log_fn(level, msg, log_user);
}
