// The scalar type of parameters, activations and gradients. The library is compiled twice: as
// float for training, and with -DPROMOE_F64 as double for the finite-difference gradient checks.
#ifndef PROMOE_REAL_H
#define PROMOE_REAL_H

#include <math.h>
#include <stddef.h>

#ifdef PROMOE_F64
typedef double real;
#define REAL_DTYPE "F64"
#define r_exp exp
#define r_log log
#define r_tanh tanh
#define r_sqrt sqrt
#else
typedef float real;
#define REAL_DTYPE "F32"
#define r_exp expf
#define r_log logf
#define r_tanh tanhf
#define r_sqrt sqrtf
#endif

// A row reduction vectorised with omp simd, e.g. SIMD_REDUCTION(+ : sum): in the float build its order
// is fixed by the compiled code (the same on every thread). The double build, which serves the
// finite-difference checks, keeps the sequential order.
#define PROMOE_PRAGMA(x) _Pragma(#x)
#ifdef PROMOE_F64
#define SIMD_REDUCTION(...)
#else
#define SIMD_REDUCTION(...) PROMOE_PRAGMA(omp simd reduction(__VA_ARGS__))
#endif

#endif
