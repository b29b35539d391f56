// The primitive cache of the bf16 products: at most CAPACITY oneDNN matmul primitives in a hash
// table under one lock, the least recently used one without users evicted to make room. Primitives
// use a user scratchpad, so that threads running the same primitive at once never share oneDNN's,
// and each thread its own memory objects (dnnl_memory_set_data_handle on a shared one would race).
#include "core/bf16_matmul.h"

#include <dnnl.h>
#include <omp.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>

#include "core/error.h"

enum {
    CAPACITY = 1024,   // primitives kept (60 to 90 KiB each): a step of a MoE model uses a few
                       // hundred, its experts' token counts (in grains, core/gemm_bf16.c) varying
    BUCKETS = 2048,    // hash chains
};

enum arg { ARG_A, ARG_B, ARG_C, ARG_SCRATCH, N_ARGS };
static const int arg_ids[N_ARGS] = {DNNL_ARG_SRC, DNNL_ARG_WEIGHTS, DNNL_ARG_DST, DNNL_ARG_SCRATCHPAD};

// The oneDNN kernels whose sums core/gemm_bf16.c argues and tests deterministic.
static const char KERNEL[] = "brg:avx512_core_bf16";

struct bf16_matmul {
    struct bf16_matmul_key key;
    dnnl_primitive_t primitive;
    size_t scratch_size;
    dnnl_memory_t (*memory)[N_ARGS];   // [slots]: each thread's handles on a, b, c and the scratchpad
    int users;                         // acquired and not yet released
    unsigned long last_use;            // the use count when last acquired
    struct bf16_matmul *next;          // in its hash chain
};

static dnnl_engine_t engine;
static dnnl_stream_t *streams;   // [slots]
static int slots;
static struct bf16_matmul *buckets[BUCKETS];
static int entries;
static unsigned long uses;
static pthread_mutex_t lock = PTHREAD_MUTEX_INITIALIZER;   // the table, users and last_use

_Static_assert(sizeof(struct bf16_matmul_key) == 4 * sizeof(int) + 2 * sizeof(float),
               "keys are compared and hashed as bytes: no padding");

// Keys compare as bytes: alpha and beta by their bits.
static int same_key(const struct bf16_matmul_key *x, const struct bf16_matmul_key *y)
{
    return memcmp(x, y, sizeof *x) == 0;
}

static struct bf16_matmul **chain_of(const struct bf16_matmul_key *key)
{
    const unsigned char *byte = (const unsigned char *)key;
    uint32_t h = 2166136261u;   // FNV-1a
    for (size_t i = 0; i < sizeof *key; i++) h = (h ^ byte[i]) * 16777619u;
    return &buckets[h % BUCKETS];
}

static struct bf16_matmul *lookup(const struct bf16_matmul_key *key)
{
    for (struct bf16_matmul *mm = *chain_of(key); mm; mm = mm->next)
        if (same_key(&mm->key, key)) return mm;
    return NULL;
}

// ---------------------------------------------------------------------------------------------
// Creation

static void describe(dnnl_memory_desc_t *md, int rows, int cols, int ld, dnnl_data_type_t type)
{
    dnnl_dims_t dims = {rows, cols}, strides = {ld, 1};
    if (dnnl_memory_desc_init_by_strides(md, 2, dims, type, strides) != dnnl_success)
        BUG("oneDNN refused a [%d, %d] operand with row stride %d", rows, cols, ld);
}

// alpha as the output scale, beta as a sum post-op (C is not read where beta is 0).
static dnnl_primitive_attr_t attributes_of(const struct bf16_matmul_key *key)
{
    dnnl_primitive_attr_t attr;
    dnnl_post_ops_t post_ops = NULL;
    if (dnnl_primitive_attr_create(&attr) != dnnl_success ||
        dnnl_primitive_attr_set_scratchpad_mode(attr, dnnl_scratchpad_mode_user) != dnnl_success ||
        (key->alpha != 1 && dnnl_primitive_attr_set_output_scales(attr, 1, 0, &key->alpha) != dnnl_success) ||
        (key->beta != 0 && (dnnl_post_ops_create(&post_ops) != dnnl_success ||
                            dnnl_post_ops_append_sum(post_ops, key->beta) != dnnl_success ||
                            dnnl_primitive_attr_set_post_ops(attr, post_ops) != dnnl_success)))
        BUG("oneDNN refused the attributes alpha %g, beta %g", key->alpha, key->beta);
    if (post_ops) dnnl_post_ops_destroy(post_ops);
    return attr;
}

static int create_descriptor(dnnl_primitive_desc_t *pd, const struct bf16_matmul_key *key)
{
    dnnl_memory_desc_t a_md, b_md, c_md;
    describe(&a_md, key->m, key->k, key->k, dnnl_bf16);
    describe(&b_md, key->k, key->n, key->n, dnnl_bf16);
    describe(&c_md, key->m, key->n, key->n, dnnl_f32);
    dnnl_matmul_desc_t desc;
    if (dnnl_matmul_desc_init(&desc, &a_md, &b_md, NULL, &c_md) != dnnl_success)
        return err("oneDNN refused a bf16 matmul of m %d, n %d, k %d", key->m, key->n, key->k);
    dnnl_primitive_attr_t attr = attributes_of(key);
    dnnl_status_t status = dnnl_primitive_desc_create(pd, &desc, attr, engine, NULL);
    dnnl_primitive_attr_destroy(attr);
    if (status != dnnl_success)
        return err("oneDNN has no bf16 matmul for m %d, n %d, k %d (status %d)", key->m, key->n, key->k, (int)status);
    const char *impl = "";
    dnnl_primitive_desc_query(*pd, dnnl_query_impl_info_str, 0, &impl);
    if (strcmp(impl, KERNEL) != 0) {
        dnnl_primitive_desc_destroy(*pd);
        return err("oneDNN runs the bf16 matmul of m %d, n %d, k %d on '%s', not on '%s'", key->m, key->n, key->k, impl,
                   KERNEL);
    }
    return 0;
}

static int create_primitive(struct bf16_matmul *mm, const struct bf16_matmul_key *key)
{
    dnnl_primitive_desc_t pd;
    if (create_descriptor(&pd, key) < 0) return -1;
    mm->key = *key;
    static const dnnl_query_t queries[N_ARGS] = {dnnl_query_src_md, dnnl_query_weights_md, dnnl_query_dst_md,
                                                  dnnl_query_scratchpad_md};
    const dnnl_memory_desc_t *md[N_ARGS];
    for (int i = 0; i < N_ARGS; i++) md[i] = dnnl_primitive_desc_query_md(pd, queries[i], 0);
    mm->scratch_size = dnnl_memory_desc_get_size(md[ARG_SCRATCH]);
    int n_args = mm->scratch_size ? N_ARGS : ARG_SCRATCH;
    mm->memory = calloc((size_t)slots, sizeof *mm->memory);
    int ok = mm->memory && dnnl_primitive_create(&mm->primitive, pd) == dnnl_success;
    for (int s = 0; ok && s < slots; s++)
        for (int i = 0; i < n_args && ok; i++)
            ok = dnnl_memory_create(&mm->memory[s][i], md[i], engine, DNNL_MEMORY_NONE) == dnnl_success;
    dnnl_primitive_desc_destroy(pd);
    if (!ok) return err("out of memory for a bf16 matmul of m %d, n %d, k %d", key->m, key->n, key->k);
    return 0;
}

// oneDNN takes a primitive's thread count, from which it chooses its blocking, from
// omp_get_max_threads() at creation: set, for the creation only, to the key's.
static int create(struct bf16_matmul *mm, const struct bf16_matmul_key *key)
{
    int saved = omp_get_max_threads();
    omp_set_num_threads(key->threads);
    int status = create_primitive(mm, key);
    omp_set_num_threads(saved);
    return status;
}

static void destroy(struct bf16_matmul *mm)
{
    for (int s = 0; s < slots; s++)
        for (int i = 0; i < N_ARGS; i++)
            if (mm->memory[s][i]) dnnl_memory_destroy(mm->memory[s][i]);
    free(mm->memory);
    dnnl_primitive_destroy(mm->primitive);
}

// ---------------------------------------------------------------------------------------------
// Set-up

static void drop_all(void)
{
    for (int h = 0; h < BUCKETS; h++)
        while (buckets[h]) {
            struct bf16_matmul *mm = buckets[h];
            buckets[h] = mm->next;
            destroy(mm);
            free(mm);
        }
    entries = 0;
}

static int grow_streams(int wanted)
{
    dnnl_stream_t *grown = realloc(streams, sizeof *grown * (size_t)wanted);
    if (!grown) return err("out of memory for %d oneDNN streams", wanted);
    streams = grown;
    for (; slots < wanted; slots++)
        if (dnnl_stream_create(&streams[slots], engine, dnnl_stream_default_flags) != dnnl_success)
            return err("oneDNN: cannot create a CPU stream");
    return 0;
}

// One small product through the full creation path: refuses here, at set-up, kernels other than
// KERNEL (where the processor, or a use of oneDNN in this process before ours, keeps it from them).
static int check_kernel(void)
{
    struct bf16_matmul probe;
    if (create(&probe, &(struct bf16_matmul_key){16, 16, 16, 1, 1, 0}) < 0) return -1;
    destroy(&probe);
    return 0;
}

int bf16_matmul_init(int wanted)
{
    if (!engine) {
        // AMX kernels would sum k in another order, and split it over threads from 16 threads
        // up: the products stay on the AVX512-BF16 kernels on every processor that has them.
        dnnl_set_max_cpu_isa(dnnl_cpu_isa_avx512_core_bf16);
        // oneDNN's own cache would keep alive the primitives this one evicts: this cache alone.
        dnnl_set_primitive_cache_capacity(0);
        if (dnnl_engine_create(&engine, dnnl_cpu, 0) != dnnl_success) return err("oneDNN: no CPU engine");
    }
    if (wanted <= slots) return 0;
    drop_all();   // their memory objects cover the old slots only
    if (grow_streams(wanted) < 0) return -1;
    return check_kernel();
}

// ---------------------------------------------------------------------------------------------
// Use

// The least recently used primitive without users out of the table (CAPACITY exceeds the
// primitives in use at once, two per thread, many times over).
static void evict_one(void)
{
    struct bf16_matmul **oldest = NULL;
    for (int h = 0; h < BUCKETS; h++)
        for (struct bf16_matmul **at = &buckets[h]; *at; at = &(*at)->next)
            if ((*at)->users == 0 && (!oldest || (*at)->last_use < (*oldest)->last_use)) oldest = at;
    if (!oldest) BUG("bf16 primitive cache: all %d primitives in use", entries);
    struct bf16_matmul *mm = *oldest;
    *oldest = mm->next;
    destroy(mm);
    free(mm);
    entries--;
}

static struct bf16_matmul *insert(const struct bf16_matmul_key *key)
{
    if (entries == CAPACITY) evict_one();
    struct bf16_matmul *mm = calloc(1, sizeof *mm);
    if (!mm || create(mm, key) < 0) BUG("bf16 product: %s", mm ? err_message() : "out of memory");
    struct bf16_matmul **chain = chain_of(key);
    mm->next = *chain;
    *chain = mm;
    entries++;
    return mm;
}

struct bf16_matmul *bf16_matmul_acquire(const struct bf16_matmul_key *key)
{
    pthread_mutex_lock(&lock);
    struct bf16_matmul *mm = lookup(key);
    if (!mm) mm = insert(key);
    mm->users++;
    mm->last_use = ++uses;
    pthread_mutex_unlock(&lock);
    return mm;
}

void bf16_matmul_release(struct bf16_matmul *mm)
{
    pthread_mutex_lock(&lock);
    mm->users--;
    pthread_mutex_unlock(&lock);
}

size_t bf16_matmul_scratch_size(const struct bf16_matmul *mm) { return mm->scratch_size; }

void bf16_matmul_run(struct bf16_matmul *mm, int slot, const uint16_t *a, const uint16_t *b, float *c, void *scratch)
{
    if (slot >= slots) BUG("bf16 product on thread %d, oneDNN started for %d", slot, slots);
    void *handles[N_ARGS] = {(void *)a, (void *)b, c, scratch};
    int n_args = mm->scratch_size ? N_ARGS : ARG_SCRATCH;
    dnnl_exec_arg_t args[N_ARGS];
    for (int i = 0; i < n_args; i++) {
        if (dnnl_memory_set_data_handle(mm->memory[slot][i], handles[i]) != dnnl_success)
            BUG("oneDNN refused a data handle");
        args[i] = (dnnl_exec_arg_t){arg_ids[i], mm->memory[slot][i]};
    }
    if (dnnl_primitive_execute(mm->primitive, streams[slot], n_args, args) != dnnl_success ||
        dnnl_stream_wait(streams[slot]) != dnnl_success)
        BUG("oneDNN failed a bf16 matmul of m %d, n %d, k %d", mm->key.m, mm->key.n, mm->key.k);
}
