// The generic build of the dense kernels (dense_variant.inc says why there are three).
#define NOVAQ_DENSE_EIGEN NovaqDenseEigen_generic
#define NOVAQ_DENSE_NS generic
#include "novaq/tensor/dense_variant.inc"
