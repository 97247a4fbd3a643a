#include "novaq/codec/refine.h"

#include "novaq/io/error.h"
#include "novaq/tensor/dense.h"
#include "novaq/tensor/dtype.h"

#include <tbb/parallel_for.h>

#include <algorithm>
#include <cmath>
#include <vector>

namespace novaq {

namespace {

using Matrix = HessianMatrix; // row-major float

// The codes and fixed parts of q, unpacked once.
struct Unpacked {
    int64_t R = 0, N = 0, vpr = 0;
    int d = 0, m1 = 0, m2 = 0, K = 0;
    std::vector<int> subspaceOf; // per vector position
    std::vector<uint32_t> a, b;  // R * vpr
    std::vector<float> colScale; // N (1 when absent)
    size_t perSubspace() const { return static_cast<size_t>(m1 + m2) * static_cast<size_t>(d); }

    explicit Unpacked(const QuantizedTensor& q)
        : R(q.rows), N(q.cols), vpr(vectorsPerRow(q.cols, q.config.d)), d(q.config.d), m1(1 << q.config.b1),
          m2(q.config.b2 > 0 ? 1 << q.config.b2 : 0), K(q.config.subspaces)
    {
        subspaceOf.resize(static_cast<size_t>(vpr));
        for (int k = 0; k < K; ++k)
            for (int64_t v = subspaceBegin(vpr, K, k); v < subspaceBegin(vpr, K, k + 1); ++v)
                subspaceOf[static_cast<size_t>(v)] = k;
        a.resize(static_cast<size_t>(R * vpr));
        b.resize(a.size());
        for (int64_t i = 0; i < R; ++i)
            for (int64_t v = 0; v < vpr; ++v)
                readCodes(q, i, v, a[static_cast<size_t>(i * vpr + v)], b[static_cast<size_t>(i * vpr + v)]);
        colScale.assign(static_cast<size_t>(N), 1.0f);
        if (q.hasColScale)
            for (int64_t j = 0; j < N; ++j)
                colScale[static_cast<size_t>(j)] = halfToFloat(q.colScale[static_cast<size_t>(j)]);
    }

    // A_ij = c_j (C1[a][t] + C2[b][t]): the matrix before row scale and offset, rows
    // [r0, r0 + nr) of it (A is nr x N).
    void decodeNormalized(const std::vector<float>& theta, Matrix& A, int64_t r0, int64_t nr) const
    {
        A.resize(nr, N);
        tbb::parallel_for(int64_t(0), nr, [&](int64_t r) {
            const int64_t i = r0 + r;
            for (int64_t v = 0; v < vpr; ++v) {
                const float* base =
                    theta.data() + static_cast<size_t>(subspaceOf[static_cast<size_t>(v)]) * perSubspace();
                const float* c1 = base + a[static_cast<size_t>(i * vpr + v)] * static_cast<size_t>(d);
                const float* c2 =
                    m2 ? base + (static_cast<size_t>(m1) + b[static_cast<size_t>(i * vpr + v)]) * static_cast<size_t>(d)
                       : nullptr;
                for (int t = 0; t < d; ++t) {
                    const int64_t j = v * d + t;
                    if (j >= N)
                        break;
                    A(r, j) = colScale[static_cast<size_t>(j)] * (c1[t] + (c2 ? c2[t] : 0.0f));
                }
            }
        });
    }

    // The adjoint of decodeNormalized for rows [r0, r0 + G.rows()): entry e of a codebook
    // collects c_j G_ij over the (i, j) that use it, added to out (K * perSubspace()).
    // Subspaces own disjoint entries, so they run in parallel; each one adds its rows in order:
    // groups of rows scattered in order give the sums of one scatter of all rows, at any
    // thread count.
    void scatterAdd(const Matrix& G, int64_t r0, std::vector<double>& out) const
    {
        tbb::parallel_for(0, K, [&](int k) {
            double* base = out.data() + static_cast<size_t>(k) * perSubspace();
            const int64_t vb = subspaceBegin(vpr, K, k), ve = subspaceBegin(vpr, K, k + 1);
            for (int64_t r = 0; r < G.rows(); ++r) {
                const int64_t i = r0 + r;
                for (int64_t v = vb; v < ve; ++v) {
                    double* c1 = base + a[static_cast<size_t>(i * vpr + v)] * static_cast<size_t>(d);
                    double* c2 = m2 ? base + (static_cast<size_t>(m1) + b[static_cast<size_t>(i * vpr + v)]) *
                                                 static_cast<size_t>(d)
                                    : nullptr;
                    for (int t = 0; t < d; ++t) {
                        const int64_t j = v * d + t;
                        if (j >= N)
                            break;
                        const double g = double(G(r, j)) * colScale[static_cast<size_t>(j)];
                        c1[t] += g;
                        if (c2)
                            c2[t] += g;
                    }
                }
            }
        });
    }
    size_t entries() const { return static_cast<size_t>(K) * perSubspace(); }
};

using ConstMap = Eigen::Map<const Matrix>;

// out = A H (A: rows x H's size, row-major). Eigen runs one thread here (EIGEN_DONT_PARALLELIZE:
// TBB owns the cores), so fixed blocks of rows go to TBB; each block's product does not depend
// on which thread ran it, so the result is the same bits at any thread count. This product is
// almost all of the refit's time (R x N x N per Hessian-vector product).
// The blocks are as tall as the rows allow up to 256 while there are at least 4 of them (two
// threads kept busy on a 256-row k_proj): each block's product packs all of H again, which at
// 64 rows cost about as much as the product (measured for 2048 x 2048 x 2048 on 2 threads,
// other jobs running: 0.82 s by blocks of 64, 0.48 s by blocks of 256). The size depends on
// the rows alone, and a row's product does not depend on it (test_refine
// rowBlockHeightChangesNoBits): the same bits as by blocks of 64.
int64_t rowBlockOf(int64_t rows) { return std::clamp<int64_t>(rows / 4 / 64 * 64, 64, 256); }
// The fit's R x N products go by groups of rows, so its scratch is a group's, not R x N (the
// output layer's 262 MB each).
constexpr int64_t kGroupRows = 1024;

template <typename Fn>
void forGroups(int64_t R, const Fn& fn)
{
    for (int64_t g0 = 0; g0 < R; g0 += kGroupRows)
        fn(g0, std::min(kGroupRows, R - g0));
}

void timesH(const float* A, int64_t rows, const Matrix& H, Matrix& out)
{
    const int64_t n = H.cols();
    out.resize(rows, n);
    const int64_t block = rowBlockOf(rows), blocks = (rows + block - 1) / block;
    tbb::parallel_for(int64_t(0), blocks, [&](int64_t b) {
        const int64_t r0 = b * block, nr = std::min(block, rows - r0);
        dense::gemm(dense::Op::N, dense::Op::N, nr, n, n, A + r0 * n, n, H.data(), n, out.data() + r0 * n, n, false);
    });
}

void timesH(const Matrix& A, const Matrix& H, Matrix& out) { timesH(A.data(), A.rows(), H, out); }

// sum_ij X_ij Y_ij in double, by rows in order.
template <typename X, typename Y>
double frobeniusDot(const X& x, const Y& y)
{
    double s = 0;
    for (int64_t i = 0; i < x.rows(); ++i)
        s += x.row(i).template cast<double>().dot(y.row(i).template cast<double>());
    return s;
}

// tr((W - What) H (W - What)^T), by the same fixed blocks of rows as timesH, each with its own
// difference and product (at most 256 rows, not two R x N copies: the output layer's are 262 MB each
// for a 32000 x 2048 matrix); the rows' sums are added in order.
double objective(const ConstMap& W, const Matrix& What, const Matrix& H)
{
    const int64_t R = W.rows(), n = W.cols();
    std::vector<double> rowDot(static_cast<size_t>(R));
    const int64_t block = rowBlockOf(R), blocks = (R + block - 1) / block;
    tbb::parallel_for(int64_t(0), blocks, [&](int64_t b) {
        const int64_t r0 = b * block, nr = std::min(block, R - r0);
        const Matrix E = W.middleRows(r0, nr) - What.middleRows(r0, nr);
        Matrix EH(nr, n);
        dense::gemm(dense::Op::N, dense::Op::N, nr, n, n, E.data(), n, H.data(), n, EH.data(), n, false);
        for (int64_t i = 0; i < nr; ++i)
            rowDot[static_cast<size_t>(r0 + i)] = EH.row(i).cast<double>().dot(E.row(i).cast<double>());
    });
    double s = 0;
    for (double d : rowDot)
        s += d;
    return s;
}

Matrix decodeMatrix(const QuantizedTensor& q)
{
    Matrix M(q.rows, q.cols);
    decode(q, {M.data(), static_cast<size_t>(M.size())});
    return M;
}

double dot(const std::vector<double>& x, const std::vector<double>& y)
{
    double s = 0;
    for (size_t i = 0; i < x.size(); ++i)
        s += x[i] * y[i];
    return s;
}

// What the fit changes: the codebooks theta (f16 values, as the file stores them) and each
// row's scale s_i and offset mu_i (double, before the shared tensor scale).
struct FitState {
    std::vector<float> theta;
    std::vector<double> s, mu;
};

FitState unpackFit(const QuantizedTensor& q, const Unpacked& u)
{
    FitState f;
    const size_t P = static_cast<size_t>(u.K) * u.perSubspace();
    f.theta.resize(P);
    for (size_t e = 0; e < P; ++e)
        f.theta[e] = halfToFloat(q.codebooks[e]);
    f.s.resize(static_cast<size_t>(u.R));
    f.mu.resize(static_cast<size_t>(u.R));
    for (int64_t i = 0; i < u.R; ++i) {
        f.s[static_cast<size_t>(i)] = double(q.scale) * halfToFloat(q.rowScale[static_cast<size_t>(i)]);
        f.mu[static_cast<size_t>(i)] = double(q.scale) * halfToFloat(q.rowMean[static_cast<size_t>(i)]);
    }
    return f;
}

// q with the fitted codebooks and rows, stored as the file stores them (f16, row scales and
// offsets relative to one tensor scale, the largest of them).
QuantizedTensor packFit(const QuantizedTensor& q, const FitState& f)
{
    QuantizedTensor fitted = q;
    for (size_t e = 0; e < f.theta.size(); ++e)
        fitted.codebooks[e] = floatToHalf(f.theta[e]);
    const size_t R = f.s.size();
    double g = 0;
    for (size_t i = 0; i < R; ++i)
        g = std::max({g, std::abs(f.s[i]), std::abs(f.mu[i])});
    fitted.scale = g > 0 ? static_cast<float>(g) : 1.0f;
    for (size_t i = 0; i < R; ++i) {
        fitted.rowScale[i] = floatToHalf(static_cast<float>(f.s[i] / fitted.scale));
        fitted.rowMean[i] = floatToHalf(static_cast<float>(f.mu[i] / fitted.scale));
    }
    return fitted;
}

// Scratch of the fit: a group of rows of A(theta), of its product with H and of what is
// scattered; Ax = scatter(S^2 A(theta) H) as the last row solve left it, for the next codebook
// solve to start from.
struct Workspace {
    Matrix A, G, AH;
    std::vector<double> Ax;
};

// The codebooks' normal matrix applied to x: scatter(S^2 A(x) H).
void applyNormal(const Unpacked& u, const Matrix& H, const std::vector<double>& s, const std::vector<double>& x,
                 std::vector<double>& out, Workspace& ws)
{
    std::vector<float> xf(x.begin(), x.end());
    out.assign(u.entries(), 0.0);
    forGroups(u.R, [&](int64_t g0, int64_t gn) {
        u.decodeNormalized(xf, ws.A, g0, gn);
        for (int64_t r = 0; r < gn; ++r)
            ws.A.row(r) *= static_cast<float>(s[static_cast<size_t>(g0 + r)] * s[static_cast<size_t>(g0 + r)]);
        timesH(ws.A, H, ws.G);
        u.scatterAdd(ws.G, g0, out);
    });
}

// The right-hand side of the codebooks' normal equations: scatter(S (W H - mu (H 1)^T)).
std::vector<double> codebookRhs(const Unpacked& u, const Matrix& WH, const Eigen::VectorXf& H1, const FitState& f,
                                Matrix& G)
{
    std::vector<double> rhs(u.entries(), 0.0);
    forGroups(u.R, [&](int64_t g0, int64_t gn) {
        G.resize(gn, u.N);
        for (int64_t r = 0; r < gn; ++r) {
            const auto i = static_cast<size_t>(g0 + r);
            G.row(r) = static_cast<float>(f.s[i]) * (WH.row(g0 + r) - static_cast<float>(f.mu[i]) * H1.transpose());
        }
        u.scatterAdd(G, g0, rhs);
    });
    return rhs;
}

// Jacobi preconditioner: the inverse of the normal matrix's diagonal, sum over the uses of an
// entry of (s_i c_j)^2 H_jj (0 for unused entries). Entries are used very unevenly, so it cuts
// the steps needed.
std::vector<double> jacobiInverse(const Unpacked& u, const Matrix& H, const FitState& f, Matrix& G)
{
    std::vector<double> D(u.entries(), 0.0);
    forGroups(u.R, [&](int64_t g0, int64_t gn) {
        G.resize(gn, u.N);
        for (int64_t r = 0; r < gn; ++r)
            for (int64_t j = 0; j < u.N; ++j)
                G(r, j) = static_cast<float>(f.s[static_cast<size_t>(g0 + r)] * f.s[static_cast<size_t>(g0 + r)]) *
                          u.colScale[static_cast<size_t>(j)] * H(j, j);
        u.scatterAdd(G, g0, D);
    });
    for (double& v : D)
        v = v > 0 ? 1.0 / v : 0.0;
    return D;
}

// Preconditioned conjugate gradients for apply(x) = rhs from x (Ax = apply(x)), at most
// `iterations` steps. Each step lowers the output error by alpha r.z; it stops after a step
// that gained less than `negligible`.
template <typename Apply>
void conjugateGradient(const Apply& apply, const std::vector<double>& rhs, const std::vector<double>& D,
                       std::vector<double>& x, const std::vector<double>& Ax, int iterations, double negligible)
{
    const size_t P = x.size();
    std::vector<double> r(P), z(P), p, Ap;
    for (size_t e = 0; e < P; ++e) {
        r[e] = rhs[e] - Ax[e];
        z[e] = D[e] * r[e];
    }
    p = z;
    double rz = dot(r, z);
    for (int it = 0; it < iterations && rz > 0; ++it) {
        apply(p, Ap);
        const double pAp = dot(p, Ap);
        if (!(pAp > 0))
            break;
        const double alpha = rz / pAp;
        for (size_t e = 0; e < P; ++e) {
            x[e] += alpha * p[e];
            r[e] -= alpha * Ap[e];
            z[e] = D[e] * r[e];
        }
        const double rzNew = dot(r, z);
        for (size_t e = 0; e < P; ++e)
            p[e] = z[e] + (rzNew / rz) * p[e];
        const double gain = alpha * rz;
        rz = rzNew;
        if (gain < negligible)
            break;
    }
}

// Codebooks: minimize ||S A(theta) + mu 1^T - W||_H for the current rows, i.e. solve
// scatter(S^2 A(theta) H) = scatter(S (W H - mu (H 1)^T)) by conjugate gradients, warm-started
// from the current codebooks; theta gets the result rounded to f16.
void solveCodebooks(const Unpacked& u, const Matrix& H, const Matrix& WH, const Eigen::VectorXf& H1, bool firstRound,
                    int iterations, double negligible, FitState& f, Workspace& ws)
{
    auto apply = [&](const std::vector<double>& x, std::vector<double>& out) { applyNormal(u, H, f.s, x, out, ws); };
    const std::vector<double> rhs = codebookRhs(u, WH, H1, f, ws.G);
    const std::vector<double> D = jacobiInverse(u, H, f, ws.G);
    std::vector<double> x(f.theta.begin(), f.theta.end()), Ax;
    if (firstRound)
        apply(x, Ax);
    else // made by the last row solve, with the row scales it found
        Ax = std::move(ws.Ax);
    conjugateGradient(apply, rhs, D, x, Ax, iterations, negligible);
    for (size_t e = 0; e < f.theta.size(); ++e) // what the file stores
        f.theta[e] = halfToFloat(floatToHalf(static_cast<float>(x[e])));
}

// Rows: for each row the (scale, offset) minimizing ||s a + m 1 - w||_H for the codebooks
// theta, by groups of rows. Leaves Ax = scatter(S^2 A(theta) H) with the new scales in the
// workspace (A(theta) H is made here anyway; the next codebook solve starts from it).
void solveRows(const Unpacked& u, const Matrix& H, const ConstMap& W, const Matrix& WH, double hh, FitState& f,
               Workspace& ws)
{
    ws.Ax.assign(u.entries(), 0.0);
    forGroups(u.R, [&](int64_t g0, int64_t gn) {
        u.decodeNormalized(f.theta, ws.A, g0, gn);
        timesH(ws.A, H, ws.AH);
        for (int64_t r = 0; r < gn; ++r) {
            const int64_t i = g0 + r;
            const double aHa = ws.AH.row(r).cast<double>().dot(ws.A.row(r).cast<double>());
            const double aH1 = ws.AH.row(r).cast<double>().sum();
            const double aHw = ws.AH.row(r).cast<double>().dot(W.row(i).cast<double>());
            const double wH1 = WH.row(i).cast<double>().sum();
            const double det = aHa * hh - aH1 * aH1;
            if (det > 1e-12 * std::max(aHa * hh, 1e-30)) {
                f.s[static_cast<size_t>(i)] = (aHw * hh - aH1 * wH1) / det;
                f.mu[static_cast<size_t>(i)] = (aHa * wH1 - aH1 * aHw) / det;
            }
        }
        ws.G.resize(gn, u.N);
        for (int64_t r = 0; r < gn; ++r)
            ws.G.row(r) =
                static_cast<float>(f.s[static_cast<size_t>(g0 + r)] * f.s[static_cast<size_t>(g0 + r)]) * ws.AH.row(r);
        u.scatterAdd(ws.G, g0, ws.Ax);
    });
}

} // namespace

double outputError(const QuantizedTensor& q, std::span<const float> W, const HessianMatrix& H)
{
    const ConstMap Wd(W.data(), q.rows, q.cols);
    Matrix WH;
    timesH(W.data(), q.rows, H, WH);
    const double denom = frobeniusDot(WH, Wd);
    return denom > 0 ? objective(Wd, decodeMatrix(q), H) / denom : 0.0;
}

RefineResult refineForOutput(QuantizedTensor& q, std::span<const float> Wspan, const HessianMatrix& H,
                             const RefineOptions& options)
{
    if (H.rows() != q.cols || H.cols() != q.cols || Wspan.size() != static_cast<size_t>(q.rows * q.cols))
        internalError("refineForOutput shapes do not match");
    const ConstMap W(Wspan.data(), q.rows, q.cols); // not copied: R x N floats
    Matrix WH;
    timesH(Wspan.data(), q.rows, H, WH);
    const double denom = frobeniusDot(WH, W);
    RefineResult result;
    const double before = objective(W, decodeMatrix(q), H);
    result.before = result.after = denom > 0 ? before / denom : 0.0;
    if (denom <= 0 || before <= 0)
        return result;

    const Unpacked u(q);
    FitState f = unpackFit(q, u);
    const Eigen::VectorXf H1 = H.rowwise().sum();
    const double hh = H1.cast<double>().sum();
    Workspace ws;
    for (int round = 0; round < options.rounds; ++round) {
        solveCodebooks(u, H, WH, H1, round == 0, options.cgIterations, options.cgTolerance * before, f, ws);
        solveRows(u, H, W, WH, hh, f, ws);
    }

    QuantizedTensor fitted = packFit(q, f);
    const double after = objective(W, decodeMatrix(fitted), H);
    if (after < before) {
        q = std::move(fitted);
        result.after = after / denom;
    }
    return result;
}

} // namespace novaq
