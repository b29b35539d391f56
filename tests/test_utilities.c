// The small utilities every layer shares: `mkdir -p` and its errors (io/path.h), SHA-256 as hex
// against the FIPS 180-2 vectors, in one piece, streamed and from a file (core/sha256.h), and the
// gnuplot runner's message when gnuplot is not installed (io/gnuplot.h). Inputs are made in a
// mkdtemp folder that is removed at the end.
#include "check.h"
#include "core/error.h"
#include "core/processors.h"
#include "core/sha256.h"
#include "io/gnuplot.h"
#include "io/path.h"
#include "scratch.h"

#include <sched.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

static char dir[] = "/tmp/promoe_test_utilities_XXXXXX";

static const char *path(const char *name) { return scratch_path(dir, name); }

static int is_folder(const char *p)
{
    struct stat st;
    return stat(p, &st) == 0 && S_ISDIR(st.st_mode);
}

static void test_make_folders(void)
{
    CHECK(io_make_folders(path("a/b/c")) == 0 && is_folder(path("a/b/c")), "nested folders: %s", err_message());
    CHECK(io_make_folders(path("a/b/c")) == 0, "existing folder: %s", err_message());
    CHECK(io_make_folders(path("a/b/c/")) == 0, "trailing slash: %s", err_message());
    CHECK(io_make_parent_folders(path("p/q/file.db")) == 0 && is_folder(path("p/q")) && !is_folder(path("p/q/file.db")),
          "parent folders only: %s", err_message());
    CHECK(io_make_parent_folders("no-slash.db") == 0, "a bare file name needs no folder");
    scratch_write(dir, "plain", "not a folder\n");
    CHECK(io_make_folders(path("plain")) < 0 && strstr(err_message(), "is not a folder"), "a file: %s", err_message());
    CHECK(io_make_folders(path("plain/x/y")) < 0 &&
              strstr(err_message(), path("plain")) && strstr(err_message(), "is not a folder") &&
              strstr(err_message(), "Not a directory"),
          "a file above: %s", err_message());
    char long_path[IO_PATH_MAX + 16];
    memset(long_path, 'x', sizeof long_path - 1);
    long_path[sizeof long_path - 1] = '\0';
    CHECK(io_make_folders(long_path) < 0 && strstr(err_message(), "too long") && strstr(err_message(), "1199"),
          "too long: %.80s", err_message());
    CHECK(io_make_folders("") < 0 && strstr(err_message(), "empty"), "empty: %s", err_message());
}

static void test_sha256(void)
{
    static const char ABC[] = "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad";
    static const char EMPTY[] = "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855";
    static const char TWO_BLOCKS[] = "248d6a61d20638b8e5c026930c3e6039a33ce45964ff2167f6ecedd419db06c1";
    static const char MESSAGE[] = "abcdbcdecdefdefgefghfghighijhijkijkljklmklmnlmnomnopnopq";
    char hex[SHA256_HEX_CAPACITY];
    sha256_hex("abc", 3, hex);
    CHECK(!strcmp(hex, ABC), "abc: %s", hex);
    sha256_hex("", 0, hex);
    CHECK(!strcmp(hex, EMPTY), "empty: %s", hex);
    sha256_hex(MESSAGE, strlen(MESSAGE), hex);
    CHECK(!strcmp(hex, TWO_BLOCKS), "448 bits: %s", hex);
    struct sha256_stream s;
    sha256_begin(&s);
    for (size_t i = 0; i < strlen(MESSAGE); i += 5)
        sha256_add(&s, MESSAGE + i, strlen(MESSAGE) - i < 5 ? strlen(MESSAGE) - i : 5);
    sha256_end_hex(&s, hex);
    CHECK(!strcmp(hex, TWO_BLOCKS) && s.ctx == NULL, "streamed in pieces of 5: %s", hex);
    scratch_write(dir, "abc.txt", "abc");
    CHECK(sha256_file_hex(path("abc.txt"), hex) == 0 && !strcmp(hex, ABC), "file: %s", hex);
    CHECK(sha256_file_hex(path("missing.txt"), hex) < 0 && strstr(err_message(), "cannot read") &&
              strstr(err_message(), "missing.txt"),
          "missing file: %s", err_message());
}

static void test_gnuplot_missing(void)
{
    const char *saved = getenv("PATH");
    char *copy = saved ? strdup(saved) : NULL;
    setenv("PATH", "/nonexistent", 1);
    scratch_write(dir, "g.gp", "print 1\n");
    int rc = io_gnuplot_run(dir, "g.gp", "g.log");
    CHECK(rc < 0 && strstr(err_message(), "install gnuplot-nox") && strstr(err_message(), path("g.gp")),
          "no gnuplot: %s", err_message());
    CHECK(io_gnuplot_run(path("absent"), "g.gp", "g.log") < 0 && strstr(err_message(), "cannot enter folder"),
          "missing folder: %s", err_message());
    if (copy) setenv("PATH", copy, 1), free(copy);
}

// The processor count follows the affinity mask (taskset), so a sweep pinned to one core runs
// its trainers on one thread each.
static void test_processors(void)
{
    cpu_set_t all, one;
    int read = sched_getaffinity(0, sizeof all, &all) == 0;
    CHECK(read, "sched_getaffinity");
    if (!read) return;
    CHECK(processors_available() == CPU_COUNT(&all), "%d processors, mask of %d", processors_available(),
          CPU_COUNT(&all));
    int first = 0;
    while (!CPU_ISSET(first, &all)) first++;
    CPU_ZERO(&one);
    CPU_SET(first, &one);
    CHECK(sched_setaffinity(0, sizeof one, &one) == 0, "pin to processor %d", first);
    CHECK(processors_available() == 1, "%d processors when pinned to one", processors_available());
    sched_setaffinity(0, sizeof all, &all);
}

int main(void)
{
    if (!mkdtemp(dir)) return perror("mkdtemp"), 1;
    test_make_folders();
    test_sha256();
    test_gnuplot_missing();
    test_processors();
    char command[128];
    snprintf(command, sizeof command, "rm -rf %s", dir);
    if (system(command) != 0) fprintf(stderr, "could not remove %s\n", dir);
    return test_summary("test_utilities");
}
