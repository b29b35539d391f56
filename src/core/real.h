// The scalar type of parameters, activations and gradients. The library is compiled twice: as
// float for training, and with -DPROMOE_F64 as double for the finite-difference gradient checks.
#ifndef PROMOE_REAL_H
#define PROMOE_REAL_H

#ifdef PROMOE_F64
typedef double real;
#define REAL_DTYPE "F64"
#else
typedef float real;
#define REAL_DTYPE "F32"
#endif

#endif
