// The two communicators of comm.h: MPI when compiled with PROMOE_MPI, else one process whose
// collectives leave buffers as they are. Large buffers are reduced in chunks of at most
// COMM_CHUNK elements so that counts fit MPI's int arguments.
#include "dist/comm.h"

#include "core/error.h"

static int64_t reduced_bytes;

int64_t comm_reduced_bytes(void) { return reduced_bytes; }

#ifdef PROMOE_MPI

#include <mpi.h>

enum { COMM_CHUNK = 1 << 28 };

static int started;

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

static void sum_in_place(void *buf, size_t n, size_t elem, MPI_Datatype type)
{
    if (!started || comm_size() == 1) return;
    for (size_t done = 0; done < n; done += COMM_CHUNK) {
        size_t count = n - done < COMM_CHUNK ? n - done : COMM_CHUNK;
        MPI_Allreduce(MPI_IN_PLACE, (char *)buf + done * elem, (int)count, type, MPI_SUM, MPI_COMM_WORLD);
    }
    reduced_bytes += (int64_t)(n * elem);
}

#ifdef PROMOE_F64
#define MPI_REAL_TYPE MPI_DOUBLE
#else
#define MPI_REAL_TYPE MPI_FLOAT
#endif

void comm_sum_reals(real *buf, size_t n) { sum_in_place(buf, n, sizeof(real), MPI_REAL_TYPE); }
void comm_sum_doubles(double *buf, size_t n) { sum_in_place(buf, n, sizeof(double), MPI_DOUBLE); }
void comm_sum_ints(int *buf, size_t n) { sum_in_place(buf, n, sizeof(int), MPI_INT); }
void comm_sum_int64(int64_t *buf, size_t n) { sum_in_place(buf, n, sizeof(int64_t), MPI_INT64_T); }

void comm_sum_reals_ordered(real *buf, size_t n, real *scratch)
{
    int size = comm_size();
    if (!started || size == 1) return;
    for (size_t done = 0; done < n; done += COMM_CHUNK) {
        size_t count = n - done < COMM_CHUNK ? n - done : COMM_CHUNK;
        MPI_Allgather(buf + done, (int)count, MPI_REAL_TYPE, scratch, (int)count, MPI_REAL_TYPE, MPI_COMM_WORLD);
        for (size_t i = 0; i < count; i++) {
            real s = scratch[i];
            for (int rank = 1; rank < size; rank++) s += scratch[(size_t)rank * count + i];
            buf[done + i] = s;
        }
    }
    reduced_bytes += (int64_t)(n * sizeof(real));
}

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
void comm_sum_reals_ordered(real *buf, size_t n, real *scratch) { (void)buf, (void)n, (void)scratch; }
void comm_broadcast(void *buf, size_t bytes) { (void)buf, (void)bytes; }
void comm_barrier(void) {}

#endif
