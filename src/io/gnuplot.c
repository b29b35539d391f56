// gnuplot from C, with fork and exec: the child enters the output folder, so that a script names
// its data and PNG files relative to it and can be rerun there, and sends its messages to a log.
#include "io/gnuplot.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include "core/error.h"
#include "io/path.h"

enum { LOG_EXCERPT_MAX = 300 };
// Exit statuses of the child when it cannot enter the folder or exec gnuplot (as a shell's 126, 127).
enum { CHDIR_FAILED = 126, EXEC_FAILED = 127 };

// In the child: chdir, messages to log, exec gnuplot; never returns.
static _Noreturn void exec_gnuplot(const char *dir, const char *script, const char *log)
{
    if (dir && chdir(dir) < 0) _exit(CHDIR_FAILED);
    int fd = open(log, O_WRONLY | O_CREAT | O_TRUNC, 0666);
    if (fd >= 0) dup2(fd, STDERR_FILENO), dup2(fd, STDOUT_FILENO), close(fd);
    execlp("gnuplot", "gnuplot", script, (char *)NULL);
    _exit(EXEC_FAILED);
}

// "dir/name", or name alone without a folder, into out.
static void in_folder(const char *dir, const char *name, char *out)
{
    snprintf(out, IO_PATH_MAX, "%s%s%s", dir ? dir : "", dir ? "/" : "", name);
}

// The first line of the log, for the error message.
static void log_excerpt(const char *log_path, char *out, size_t size)
{
    FILE *f = fopen(log_path, "r");
    out[0] = '\0';
    while (f && out[0] == '\0' && fgets(out, (int)size, f)) out[strcspn(out, "\n")] = '\0';
    if (f) fclose(f);
}

int io_gnuplot_run(const char *dir, const char *script, const char *log)
{
    char where[IO_PATH_MAX], log_path[IO_PATH_MAX], excerpt[LOG_EXCERPT_MAX];
    in_folder(dir, script, where);
    in_folder(dir, log, log_path);
    fflush(NULL);
    pid_t pid = fork();
    if (pid < 0) return err("cannot start gnuplot for '%s'", where);
    if (pid == 0) exec_gnuplot(dir, script, log);
    int status;
    while (waitpid(pid, &status, 0) < 0)
        if (errno != EINTR) return err("waiting for gnuplot on '%s'", where);
    if (WIFEXITED(status) && WEXITSTATUS(status) == 0) return 0;
    if (WIFEXITED(status) && WEXITSTATUS(status) == CHDIR_FAILED)
        return err("cannot enter folder '%s' to run '%s'", dir ? dir : ".", script);
    if (WIFEXITED(status) && WEXITSTATUS(status) == EXEC_FAILED)
        return err("gnuplot not found for '%s': install gnuplot-nox", where);
    log_excerpt(log_path, excerpt, sizeof excerpt);
    return err("gnuplot failed on '%s' (%s %d): %s (see '%s')", where, WIFEXITED(status) ? "exit" : "signal",
               WIFEXITED(status) ? WEXITSTATUS(status) : WTERMSIG(status), excerpt, log_path);
}
