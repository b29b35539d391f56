// The two communicators of comm.h: MPI when compiled with PROMOE_MPI, else one process whose
// collectives leave buffers as they are (an all-gather copies). Large buffers are reduced and
// gathered in chunks of at most COMM_CHUNK elements so that counts fit MPI's int arguments.
#include "dist/comm.h"

#include <stdlib.h>
#include <string.h>

#include "core/error.h"

static int64_t reduced_bytes, gather_sent_bytes;

int64_t comm_reduced_bytes(void) { return reduced_bytes; }
int64_t comm_gathered_bytes(void) { return gather_sent_bytes; }

#ifdef PROMOE_MPI

#include <mpi.h>

enum { COMM_CHUNK = 1 << 28 };

static int started;
static int ordered;            // floating-point sums in rank order (comm_set_ordered)
static char *gathered;         // scratch of the ordered sums: every rank's copy
static size_t gathered_bytes;

int comm_init(int *argc, char ***argv)
{
    int provided = 0;
    if (MPI_Init_thread(argc, argv, MPI_THREAD_FUNNELED, &provided) != MPI_SUCCESS)
        return err("MPI_Init_thread failed");
    started = 1;
    return 0;
}

void comm_finish(int status)
{
    if (!started) return;
    if (status != 0 && comm_size() > 1) MPI_Abort(MPI_COMM_WORLD, status);
    MPI_Finalize();
    free(gathered);
    gathered = NULL;
    gathered_bytes = 0;
    started = 0;
}

int comm_rank(void)
{
    int rank = 0;
    if (started) MPI_Comm_rank(MPI_COMM_WORLD, &rank);
    return rank;
}

int comm_size(void)
{
    int size = 1;
    if (started) MPI_Comm_size(MPI_COMM_WORLD, &size);
    return size;
}

int comm_set_ordered(int on, size_t largest_bytes)
{
    ordered = on;
    if (!on || comm_size() == 1) return 0;
    size_t need = largest_bytes * (size_t)comm_size();
    if (need <= gathered_bytes) return 0;
    free(gathered);
    gathered = malloc(need);
    gathered_bytes = gathered ? need : 0;
    if (!gathered) return err("out of memory for fixed-order sums of %zu bytes over %d ranks", largest_bytes, comm_size());
    return 0;
}

// Every rank's copy of `bytes`, in the scratch reserved by comm_set_ordered.
static void *gather_room(size_t bytes)
{
    if (bytes * (size_t)comm_size() > gathered_bytes)
        BUG("a fixed-order sum of %zu bytes exceeds the %zu reserved", bytes, gathered_bytes);
    return gathered;
}

// buf [count] = sum over ranks, in rank order, of all [size, count].
static void ordered_sum_float(float *buf, const float *all, size_t count)
{
    int size = comm_size();
    for (size_t i = 0; i < count; i++) {
        float s = all[i];
        for (int rank = 1; rank < size; rank++) s += all[(size_t)rank * count + i];
        buf[i] = s;
    }
}

static void ordered_sum_double(double *buf, const double *all, size_t count)
{
    int size = comm_size();
    for (size_t i = 0; i < count; i++) {
        double s = all[i];
        for (int rank = 1; rank < size; rank++) s += all[(size_t)rank * count + i];
        buf[i] = s;
    }
}

// kind: 0 exact (integers), 1 float, 2 double.
static void sum_in_place(void *buf, size_t n, size_t elem, MPI_Datatype type, int kind)
{
    if (!started || comm_size() == 1) return;
    for (size_t done = 0; done < n; done += COMM_CHUNK) {
        size_t count = n - done < COMM_CHUNK ? n - done : COMM_CHUNK;
        char *part = (char *)buf + done * elem;
        if (!ordered || kind == 0) {
            MPI_Allreduce(MPI_IN_PLACE, part, (int)count, type, MPI_SUM, MPI_COMM_WORLD);
            continue;
        }
        void *all = gather_room(count * elem);
        MPI_Allgather(part, (int)count, type, all, (int)count, type, MPI_COMM_WORLD);
        if (kind == 1) ordered_sum_float((float *)part, all, count);
        else ordered_sum_double((double *)part, all, count);
    }
    reduced_bytes += (int64_t)(n * elem);
}

#ifdef PROMOE_F64
#define MPI_REAL_TYPE MPI_DOUBLE
#define REAL_KIND 2
#else
#define MPI_REAL_TYPE MPI_FLOAT
#define REAL_KIND 1
#endif

void comm_sum_reals(real *buf, size_t n) { sum_in_place(buf, n, sizeof(real), MPI_REAL_TYPE, REAL_KIND); }
void comm_sum_doubles(double *buf, size_t n) { sum_in_place(buf, n, sizeof(double), MPI_DOUBLE, 2); }
void comm_sum_ints(int *buf, size_t n) { sum_in_place(buf, n, sizeof(int), MPI_INT, 0); }
void comm_sum_int64(int64_t *buf, size_t n) { sum_in_place(buf, n, sizeof(int64_t), MPI_INT64_T, 0); }

// all [size * n] = every rank's mine [n], rank 0 first. Beyond COMM_CHUNK elements, chunks keep
// MPI's int counts, each chunk's blocks received n elements apart (a resized receive type, built
// per call), so the layout is that of one call.
static void gather(const void *mine, size_t n, size_t elem, MPI_Datatype type, void *all)
{
    if (!started || comm_size() == 1) {
        memcpy(all, mine, n * elem);
        return;
    }
    gather_sent_bytes += (int64_t)(n * elem);
    if (n <= COMM_CHUNK) {   // every router pool: one call, no datatype to build
        MPI_Allgather(mine, (int)n, type, all, (int)n, type, MPI_COMM_WORLD);
        return;
    }
    for (size_t done = 0; done < n; done += COMM_CHUNK) {
        size_t count = n - done < COMM_CHUNK ? n - done : COMM_CHUNK;
        MPI_Datatype block, spaced;
        MPI_Type_contiguous((int)count, type, &block);
        MPI_Type_create_resized(block, 0, (MPI_Aint)(n * elem), &spaced);
        MPI_Type_commit(&spaced);
        MPI_Allgather((const char *)mine + done * elem, (int)count, type, (char *)all + done * elem, 1, spaced,
                      MPI_COMM_WORLD);
        MPI_Type_free(&spaced);
        MPI_Type_free(&block);
    }
}

void comm_gather_reals(const real *mine, size_t n, real *all) { gather(mine, n, sizeof(real), MPI_REAL_TYPE, all); }
void comm_gather_ints(const int *mine, size_t n, int *all) { gather(mine, n, sizeof(int), MPI_INT, all); }

void comm_broadcast(void *buf, size_t bytes)
{
    if (!started || comm_size() == 1) return;
    for (size_t done = 0; done < bytes; done += COMM_CHUNK) {
        size_t count = bytes - done < COMM_CHUNK ? bytes - done : COMM_CHUNK;
        MPI_Bcast((char *)buf + done, (int)count, MPI_BYTE, 0, MPI_COMM_WORLD);
    }
}

void comm_barrier(void)
{
    if (started) MPI_Barrier(MPI_COMM_WORLD);
}

#else   // one process

int comm_init(int *argc, char ***argv)
{
    (void)argc, (void)argv;
    return 0;
}

void comm_finish(int status) { (void)status; }
int comm_rank(void) { return 0; }
int comm_size(void) { return 1; }
void comm_sum_reals(real *buf, size_t n) { (void)buf, (void)n; }
void comm_sum_doubles(double *buf, size_t n) { (void)buf, (void)n; }
void comm_sum_ints(int *buf, size_t n) { (void)buf, (void)n; }
void comm_sum_int64(int64_t *buf, size_t n) { (void)buf, (void)n; }
int comm_set_ordered(int on, size_t largest_bytes)
{
    (void)on, (void)largest_bytes;
    return 0;
}
void comm_gather_reals(const real *mine, size_t n, real *all) { memcpy(all, mine, n * sizeof(real)); }
void comm_gather_ints(const int *mine, size_t n, int *all) { memcpy(all, mine, n * sizeof(int)); }
void comm_broadcast(void *buf, size_t bytes) { (void)buf, (void)bytes; }
void comm_barrier(void) {}

#endif
