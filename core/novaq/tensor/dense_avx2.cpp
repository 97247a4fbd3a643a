// The avx2 build of the dense kernels (dense_variant.inc says why there are three).
#define NOVAQ_DENSE_EIGEN NovaqDenseEigen_avx2
#define NOVAQ_DENSE_NS avx2
#include "novaq/tensor/dense_variant.inc"
