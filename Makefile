# promoe build: `make` builds build/promoe; `make test` builds and runs every test under tests/.
# Everything under src/ except src/cli/ goes into one static library (float), and a second copy
# compiled with -DPROMOE_F64 (double) serves the finite-difference gradient checks.

CC      ?= gcc
MULTIARCH := $(shell gcc -print-multiarch 2>/dev/null || echo x86_64-linux-gnu)
BLIS_INC = /usr/include/$(MULTIARCH)/blis-openmp
BLIS_LIB = /usr/lib/$(MULTIARCH)/blis-openmp
CFLAGS  ?= -O3 -march=native -mprefer-vector-width=512 -g
CFLAGS  += -std=c11 -D_GNU_SOURCE -fopenmp -ffp-contract=off -fno-math-errno -Wall -Wextra -Isrc -isystem $(BLIS_INC)
ifeq ($(CI),true)
CFLAGS  += -Werror
endif
LDLIBS   = $(BLIS_LIB)/libblis.a -ldnnl -llapack -lsqlite3 -lyaml -lz -lpng -lcjson -lcrypto -lmicrohttpd -lm -lpthread
LDFLAGS += -fopenmp

LIB_SRC  = $(filter-out src/cli/%,$(wildcard src/*/*.c))
CLI_SRC  = $(wildcard src/cli/*.c)
LIB_OBJ  = $(LIB_SRC:src/%.c=build/obj/%.o)
LIB64_OBJ= $(LIB_SRC:src/%.c=build/obj64/%.o)
CLI_OBJ  = $(CLI_SRC:src/%.c=build/obj/%.o)
TEST_SRC = $(wildcard tests/test_*.c)
F64_SRC  = $(wildcard tests/f64_*.c)
TESTS    = $(TEST_SRC:tests/%.c=build/tests/%) $(F64_SRC:tests/%.c=build/tests/%)

.PHONY: all test deps bench bench-gemm bench-deps bench-check bench-official clean main plots mpi test-mpi study study-report
all: build/promoe

# Debian packages, installed when missing (scripts/install-deps.sh); checked once per build tree.
deps: build/.deps
build/.deps: scripts/install-deps.sh
	@bash scripts/install-deps.sh
	@mkdir -p build && touch $@

# The main job on Fashion-MNIST: a small sweep (dense DiT, DiT-MoE, ProMoE; trained, evaluated and
# recorded in results/promoe.db), then its table beside the paper's figures. Re-running resumes.
main: build/.deps build/promoe
	build/promoe sweep sweeps/mini/main.yaml --jobs 2
	build/promoe table analysis/tables/main.yaml

# The mini study (sweeps/mini/study.yaml, 45 runs, about 8 hours on 2 cores; its pilot, the dense
# and ProMoE rows over three seeds, first): trains what is not done into results/mini-study/study.db, runs the analyses that need checkpoints, and regenerates
# results/mini-study/REPORT.md with its tables, figures and sample grids. Rerunning resumes.
STUDY_DB = results/mini-study/study.db
study: build/.deps build/promoe
	build/promoe sweep sweeps/mini/pilot.yaml --jobs 2 --db $(STUDY_DB)
	build/promoe sweep sweeps/mini/study.yaml --jobs 2 --db $(STUDY_DB)
	bash scripts/study-analyse.sh $(STUDY_DB) results/mini-study
	build/promoe report --db $(STUDY_DB) --out results/mini-study

# The report alone, from the database as it stands.
study-report: build/.deps build/promoe
	build/promoe sweep sweeps/mini/study.yaml --record-only --db $(STUDY_DB)
	bash scripts/study-analyse.sh $(STUDY_DB) results/mini-study
	build/promoe report --db $(STUDY_DB) --out results/mini-study

# The paper's loss and scaling figures (Figs. 5, 3b, 3c) from the results database, as PNG under
# results/plots with their gnuplot data and scripts.
plots: build/.deps build/promoe
	build/promoe plot --db results/promoe.db --out results/plots

build/obj/%.o: src/%.c $(wildcard src/*/*.h) | build/.deps
	@mkdir -p $(dir $@)
	$(CC) $(CFLAGS) -c $< -o $@

build/obj64/%.o: src/%.c $(wildcard src/*/*.h) | build/.deps
	@mkdir -p $(dir $@)
	$(CC) $(CFLAGS) -DPROMOE_F64 -c $< -o $@

build/obj/schema.o: src/store/schema.sql
	@mkdir -p $(dir $@)
	cd src/store && ld -r -b binary -z noexecstack -o ../../$@ schema.sql

build/libpromoe.a: $(LIB_OBJ) build/obj/schema.o
	ar rcs $@ $^

build/libpromoe64.a: $(LIB64_OBJ) build/obj/schema.o
	ar rcs $@ $^

build/promoe: $(CLI_OBJ) build/libpromoe.a
	$(CC) $(LDFLAGS) -o $@ $(CLI_OBJ) build/libpromoe.a $(LDLIBS)

build/tests/test_%: tests/test_%.c $(wildcard tests/*.h) build/libpromoe.a
	@mkdir -p build/tests
	$(CC) $(CFLAGS) -Itests -o $@ $< build/libpromoe.a $(LDLIBS)

build/tests/f64_%: tests/f64_%.c $(wildcard tests/*.h) build/libpromoe64.a
	@mkdir -p build/tests
	$(CC) $(CFLAGS) -DPROMOE_F64 -Itests -o $@ $< build/libpromoe64.a $(LDLIBS)

test: build/.deps build/promoe $(TESTS)
	@bash scripts/include-graph.sh build/obj
	@bash tests/run.sh $(TESTS)

build/bench: tests/bench/bench.c tests/bench/peak.h build/libpromoe.a
	$(CC) $(CFLAGS) -o $@ $< build/libpromoe.a $(LDLIBS)

bench: build/.deps build/bench
	@bash tests/bench/run.sh

# The step's matrix products through gemm_bf16, on oneDNN called directly (bf16 and fp32) and on
# BLIS side by side (tests/bench/gemm_libs.c). BENCH_GEMM_THREADS: default 2.
build/bench-gemm: tests/bench/gemm_libs.c build/libpromoe.a
	$(CC) $(CFLAGS) -o $@ $< build/libpromoe.a $(LDLIBS)

bench-gemm: build/.deps build/bench-gemm
	OMP_NUM_THREADS=$${BENCH_GEMM_THREADS:-2} BLIS_NUM_THREADS=$${BENCH_GEMM_THREADS:-2} build/bench-gemm

# Optional data-parallel build over MPI (Open MPI from Debian): build-mpi/promoe, compiled by
# mpicc with -DPROMOE_MPI in its own object folder; run it with mpirun (README, "Running on a
# cluster"). The plain build above never includes an MPI header.
MPI_OBJ  = $(LIB_SRC:src/%.c=build-mpi/obj/%.o) $(CLI_SRC:src/%.c=build-mpi/obj/%.o)

mpi: build-mpi/promoe

build-mpi/.deps: scripts/install-deps.sh
	@bash scripts/install-deps.sh mpi
	@mkdir -p build-mpi && touch $@

build-mpi/obj/%.o: src/%.c $(wildcard src/*/*.h) | build-mpi/.deps
	@mkdir -p $(dir $@)
	mpicc $(CFLAGS) -DPROMOE_MPI -c $< -o $@

build-mpi/promoe: $(MPI_OBJ) build/obj/schema.o
	mpicc $(LDFLAGS) -o $@ $^ $(LDLIBS)

# MPI test programs (tests/mpi_*.c) link the MPI library objects; test_mpi runs them under mpirun.
build-mpi/libpromoe.a: $(LIB_SRC:src/%.c=build-mpi/obj/%.o) build/obj/schema.o
	ar rcs $@ $^

build-mpi/tests/mpi_%: tests/mpi_%.c $(wildcard tests/*.h) build-mpi/libpromoe.a
	@mkdir -p build-mpi/tests
	mpicc $(CFLAGS) -DPROMOE_MPI -Itests -o $@ $< build-mpi/libpromoe.a $(LDLIBS)

# Two ranks against one process on tiny models and single layers (installs Open MPI when missing).
test-mpi: build/promoe build-mpi/promoe build/tests/test_mpi build-mpi/tests/mpi_pool
	@PROMOE_TEST_MPI=1 bash tests/run.sh build/tests/test_mpi

# The PyTorch side of the benchmark (Debian's python3-torch, python3-numpy, libtcmalloc-minimal4).
bench-deps:
	@bash scripts/install-deps.sh bench

# Our network against the PyTorch implementation in tests/bench (max relative error <= 1e-4).
bench-check: build/.deps build/promoe
	/usr/bin/python3 tests/bench/check_forward.py

# Exported baseline weights in the official classes (strict load, outputs within 1e-4); OFFICIAL_DIR
# is a checkout of ali-vilab/ProMoE.
bench-official: build/.deps build/promoe
	/usr/bin/python3 tests/bench/check_official.py

clean:
	rm -rf build build-mpi

# Fuzzing (optional, needs clang: scripts/install-clang.sh): one libFuzzer harness per reader in
# tests/fuzz/, built with address and undefined-behaviour sanitizers against the reader sources;
# `make fuzz` runs each for FUZZ_SECONDS (FUZZ_TARGETS picks some). Crashes land in
# tests/fuzz/regressions/<target>/ and test_fuzz replays them.
FUZZ_SECONDS ?= 60
FUZZ_TARGETS ?= config sweep npy npz idx safetensors
FUZZ_LIB_SRC = src/core/error.c src/core/sha256.c src/config/config.c src/config/sweep_parse.c src/config/sweep_expand.c \
               src/moe/spec.c src/data/npy.c src/data/npz.c src/data/idx.c src/model/safetensors.c src/io/atomic.c
FUZZ_CFLAGS  = -O1 -g -std=c11 -D_GNU_SOURCE -fsanitize=fuzzer,address,undefined \
               -fno-sanitize-recover=undefined -fno-omit-frame-pointer -Isrc -Itests/fuzz
.PHONY: fuzz fuzz-build asan
build-fuzz/.clang: scripts/install-clang.sh
	@bash scripts/install-clang.sh
	@mkdir -p build-fuzz && touch $@

build-fuzz/fuzz_%: tests/fuzz/fuzz_%.c tests/fuzz/fuzz_file.h $(FUZZ_LIB_SRC) $(wildcard src/*/*.h) | build-fuzz/.clang
	clang $(FUZZ_CFLAGS) -o $@ $< $(FUZZ_LIB_SRC) -lyaml -lz -lcjson -lcrypto -lm

fuzz-build: $(FUZZ_TARGETS:%=build-fuzz/fuzz_%)

fuzz: build/.deps fuzz-build
	@bash tests/fuzz/run.sh $(FUZZ_SECONDS) $(FUZZ_TARGETS)

# Address and undefined-behaviour sanitizers: a copy of the tree in build-asan/tree is built with
# them (library, program, tests) and its test suite run; any report fails the test that made it.
ASAN_FLAGS = -O1 -g -fsanitize=address,undefined -fno-sanitize-recover=all -fno-omit-frame-pointer
asan:
	@mkdir -p build-asan/tree
	@tar -c --exclude=./build --exclude=./build-asan --exclude=./build-fuzz --exclude=./.git \
	  --exclude=./results . | tar -x -C build-asan/tree
	@mkdir -p build-asan/tree/results
	CFLAGS="$(ASAN_FLAGS)" LDFLAGS="-fsanitize=address,undefined" ASAN_OPTIONS=detect_leaks=1 \
	  $(MAKE) -C build-asan/tree test
