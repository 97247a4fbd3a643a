#pragma once
// The codec's inner loops, each with a plain scalar twin that defines what it must compute.
// Tests hold the fast paths to the references (codes agree, distortion within 1e-5).
//
// Shapes in math names: n vectors of length d (row-major), codebooks C1 (m1 x d) and
// C2 (m2 x d), row-major.

#include <cstdint>
#include <vector>

namespace novaq::kernels {

// Nearest entry of C for each of the n vectors (ties: lowest index). dist2 may be null.
void assignNearest(const float* X, int64_t n, int d, const float* C, int m, uint32_t* code, float* dist2);
void assignNearestRef(const float* X, int64_t n, int d, const float* C, int m, uint32_t* code, float* dist2);

// Tables that depend only on the codebooks, shared by every vector of a subspace.
struct JointTables {
    int d = 0, m1 = 0, m2 = 0; // m2 == 0: one stage
    int m2p = 0;               // m2 rounded up to 8 (the padded row length of `cross`)
    std::vector<float> c1, c2; // codebooks (row-major)
    std::vector<float> norm1;  // ||C1[a]||^2
    std::vector<float> cross;  // m1 x m2p: ||C2[b]||^2 + 2 C1[a].C2[b], padding = +huge
    std::vector<float> t1, t2; // -2 C1^T (d x m1) and -2 C2^T (d x m2p, padding 0)
};
JointTables makeJointTables(const float* C1, int m1, const float* C2, int m2, int d);

// Joint two-stage encoding: the pair (a, b) minimizing ||x - C1[a] - C2[b]||^2, searched over
// all m1 * m2 pairs when beam <= 0 or beam >= m1, else over the `beam` best stage-1 entries
// (by ||x - C1[a]||^2). Ties: lowest a, then lowest b. b is 0 when m2 == 0.
void encodeJoint(const float* X, int64_t n, const JointTables& t, int beam, uint32_t* a, uint32_t* b);
void encodeJointRef(const float* X, int64_t n, int d, const float* C1, int m1, const float* C2, int m2, int beam,
                    uint32_t* a, uint32_t* b);

} // namespace novaq::kernels
