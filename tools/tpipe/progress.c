/*
 * progress.c — a one-line progress bar on stderr: count done, rate, ETA and a
 * bar when the total (or the fraction of the input read) is known. Drawn at
 * most ten times a second, only when stderr is a terminal and --quiet is off,
 * so logs and pipes never see control characters.
 */
#include "cli.h"

#include <string.h>
#include <unistd.h>

void cli_format_duration(double s, char *out, size_t n) {
    if (!(s >= 0) || s > 359999) {
        snprintf(out, n, "--:--");
        return;
    }
    long t = (long)(s + 0.5);
    if (t >= 3600)
        snprintf(out, n, "%ld:%02ld:%02ld", t / 3600, t / 60 % 60, t % 60);
    else
        snprintf(out, n, "%ld:%02ld", t / 60, t % 60);
}

void cli_progress_init(cli_progress *p, bool quiet, const char *what) {
    p->on = !quiet && isatty(STDERR_FILENO);
    p->t0 = tp_now();
    p->last_draw = 0;
    p->what = what;
}

/* Human form of a count: 1234567 -> "1.23M" for bytes, plain integers for items. */
static void format_amount(double v, const char *unit, char *out, size_t n) {
    if (unit && !strcmp(unit, "B")) {
        const char *u[] = {"B", "kB", "MB", "GB", "TB"};
        int k = 0;
        while (v >= 1000 && k < 4) {
            v /= 1000;
            k++;
        }
        snprintf(out, n, k ? "%.1f %s" : "%.0f %s", v, u[k]);
    } else {
        snprintf(out, n, "%.0f", v);
    }
}

void cli_progress_update(cli_progress *p, double done, double total, double fraction,
                         const char *unit, bool force) {
    if (!p->on)
        return;
    double now = tp_now();
    if (!force && now - p->last_draw < 0.1)
        return;
    p->last_draw = now;
    double el = now - p->t0;
    double rate = el > 0 ? done / el : 0;
    if (total > 0)
        fraction = done / total;
    char d[32], r[32], eta[32] = "", head[48] = "";
    format_amount(done, unit, d, sizeof d);
    format_amount(rate, unit, r, sizeof r);
    if (fraction >= 0) {
        if (fraction > 1)
            fraction = 1;
        char bar[24];
        int w = 20, k = (int)(fraction * w);
        for (int i = 0; i < w; i++)
            bar[i] = i < k ? '#' : '.';
        bar[w] = '\0';
        snprintf(head, sizeof head, "[%s] %3.0f%%  ", bar, fraction * 100);
        char t[16];
        cli_format_duration(fraction > 0 ? el * (1 - fraction) / fraction : -1, t, sizeof t);
        snprintf(eta, sizeof eta, "  ETA %s", t);
    }
    /* bytes carry their unit in the amount ("1.2 MB"); counts get it appended */
    const char *u = unit && strcmp(unit, "B") ? unit : "";
    fprintf(stderr, "\r\033[K%s%s%s%s%s%s  %s%s%s/s%s", p->what ? p->what : "", p->what ? "  " : "",
            head, d, *u ? " " : "", u, r, *u ? " " : "", u, eta);
    fflush(stderr);
}

void cli_progress_finish(cli_progress *p) {
    if (p->on && p->last_draw > 0) {
        fprintf(stderr, "\n");
        fflush(stderr);
    }
    p->on = false;
}
