// gnuplot from C: the harness writes the script text and runs the gnuplot program (Debian's
// gnuplot-nox, whose pngcairo terminal uses cairo and pango) with fork and exec, in the output
// folder so that the script names its data and PNG files relative to it and can be rerun there.
#include "report/plot_gnuplot.h"

#include <errno.h>
#include <fcntl.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "core/error.h"

enum { PATH_MAX_LEN = 1024, LOG_EXCERPT_MAX = 300 };
// Exit statuses of the child when it cannot enter the folder or exec gnuplot (as a shell's 126, 127).
enum { CHDIR_FAILED = 126, EXEC_FAILED = 127 };
static const char FONT[] = "DejaVu Sans,11";

// Tableau 10, matplotlib's default cycle.
static const char *const palette[] = {"1f77b4", "ff7f0e", "2ca02c", "d62728", "9467bd",
                                      "8c564b", "e377c2", "7f7f7f", "bcbd22", "17becf"};

const char *plot_colour(int i)
{
    return palette[i % (int)(sizeof palette / sizeof *palette)];
}

int plot_make_dir(const char *dir)
{
    char path[PATH_MAX_LEN];
    if (snprintf(path, sizeof path, "%s", dir) >= (int)sizeof path) return err("folder name too long '%s'", dir);
    for (char *p = path + 1;; p++) {
        if (*p != '/' && *p) continue;
        char c = *p;
        *p = '\0';
        if (mkdir(path, 0777) < 0 && errno != EEXIST) return err("cannot create folder '%s'", path);
        if (!c) break;
        *p = c;
    }
    struct stat st;
    if (stat(dir, &st) < 0 || !S_ISDIR(st.st_mode)) return err("'%s' is not a folder", dir);
    return 0;
}

int plot_open(FILE **f, const char *dir, const char *name, const char *ext)
{
    char path[PATH_MAX_LEN];
    snprintf(path, sizeof path, "%s/%s.%s", dir, name, ext);
    *f = fopen(path, "w");
    return *f ? 0 : err("cannot write '%s'", path);
}

int plot_close(FILE *f, const char *dir, const char *name, const char *ext)
{
    int failed = ferror(f);
    if (fclose(f) != 0) failed = 1;
    return failed ? err("write error on '%s/%s.%s'", dir, name, ext) : 0;
}

void plot_gp_string(FILE *f, const char *text)
{
    fputc('\'', f);
    for (const char *p = text; *p; p++) {
        if (*p == '\'') fputc('\'', f);
        if (*p != '\n') fputc(*p, f);
    }
    fputc('\'', f);
}

void plot_gp_header(FILE *f, const char *name, const char *title, const char *xlabel, const char *ylabel)
{
    fprintf(f, "set terminal pngcairo size %d,%d font '%s' noenhanced\n", PLOT_WIDTH, PLOT_HEIGHT, FONT);
    fprintf(f, "set output '%s.png'\n", name);
    fputs("set title ", f), plot_gp_string(f, title), fputc('\n', f);
    fputs("set xlabel ", f), plot_gp_string(f, xlabel), fputc('\n', f);
    fputs("set ylabel ", f), plot_gp_string(f, ylabel), fputc('\n', f);
    fputs("set grid\nset key outside right top\n", f);
}

// The first line of the gnuplot log, for the error message.
static void log_excerpt(const char *dir, const char *name, char *out, size_t size)
{
    char path[PATH_MAX_LEN];
    snprintf(path, sizeof path, "%s/%s.log", dir, name);
    FILE *f = fopen(path, "r");
    out[0] = '\0';
    while (f && out[0] == '\0' && fgets(out, (int)size, f)) out[strcspn(out, "\n")] = '\0';
    if (f) fclose(f);
}

// In the child: chdir, messages to name.log, exec gnuplot; never returns.
static _Noreturn void exec_gnuplot(const char *dir, const char *script, const char *log)
{
    if (chdir(dir) < 0) _exit(CHDIR_FAILED);
    int fd = open(log, O_WRONLY | O_CREAT | O_TRUNC, 0666);
    if (fd >= 0) dup2(fd, STDERR_FILENO), dup2(fd, STDOUT_FILENO), close(fd);
    execlp("gnuplot", "gnuplot", script, (char *)NULL);
    _exit(EXEC_FAILED);
}

int plot_run_gnuplot(const char *dir, const char *name)
{
    char script[PATH_MAX_LEN], log[PATH_MAX_LEN], excerpt[LOG_EXCERPT_MAX];
    snprintf(script, sizeof script, "%s.gp", name);
    snprintf(log, sizeof log, "%s.log", name);
    fflush(NULL);
    pid_t pid = fork();
    if (pid < 0) return err("cannot start gnuplot for '%s/%s'", dir, script);
    if (pid == 0) exec_gnuplot(dir, script, log);
    int status;
    while (waitpid(pid, &status, 0) < 0)
        if (errno != EINTR) return err("waiting for gnuplot on '%s/%s'", dir, script);
    if (WIFEXITED(status) && WEXITSTATUS(status) == 0) {
        char path[2 * PATH_MAX_LEN];
        snprintf(path, sizeof path, "%s/%s", dir, log);
        remove(path); // kept only when gnuplot fails
        return 0;
    }
    if (WIFEXITED(status) && WEXITSTATUS(status) == CHDIR_FAILED)
        return err("cannot enter folder '%s' to run '%s'", dir, script);
    if (WIFEXITED(status) && WEXITSTATUS(status) == EXEC_FAILED)
        return err("gnuplot not found for '%s/%s': install gnuplot-nox", dir, script);
    log_excerpt(dir, name, excerpt, sizeof excerpt);
    return err("gnuplot failed on '%s/%s' (%s %d): %s (see '%s/%s')", dir, script,
               WIFEXITED(status) ? "exit" : "signal",
               WIFEXITED(status) ? WEXITSTATUS(status) : WTERMSIG(status), excerpt, dir, log);
}

void plot_report_add(struct plot_report *report, const char *fmt, ...)
{
    if (report->n >= PLOT_REPORT_MAX) return;
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(report->lines[report->n++], PLOT_TEXT_MAX, fmt, ap);
    va_end(ap);
}
