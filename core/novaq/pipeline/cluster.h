#pragma once
// One compression across several processes (MPI ranks, `mpirun -n N novaq local ...`).
//
// The engine talks to the other ranks only through Cluster. A build without MPI (or a
// process no launcher started) has the single-rank Cluster: rank 0 of 1, and every call
// a no-op, so one process behaves exactly as without this file. With NOVAQ_WITH_MPI,
// cluster_mpi.cpp joins the MPI job when mpirun / srun started the process.
//
// Determinism: the work is split so that every rank computes whole tensors and whole
// calibration chunks, and everything that is combined is combined in a fixed order; the
// .novaq file is byte-identical at any rank count (compress.h).

#include "novaq/pipeline/job.h"

#include <cstddef>
#include <cstdint>
#include <filesystem>
#include <functional>
#include <span>
#include <string>
#include <vector>

namespace novaq {

class Cluster {
public:
    virtual ~Cluster() = default;
    virtual int rank() const noexcept = 0;
    virtual int size() const noexcept = 0;
    // Every rank passes a buffer of the same size; afterwards all hold `root`'s bytes.
    virtual void broadcast(std::span<std::byte> bytes, int root, const CancelToken* cancel) = 0;
    // Point to point, in order between a pair of ranks. send() returns once the bytes are on
    // their way; it first waits for the previous send, so one message is in flight at most.
    virtual void send(std::vector<std::byte> bytes, int to, const CancelToken* cancel) = 0;
    virtual std::vector<std::byte> receive(int from, const CancelToken* cancel) = 0;
    // Waits for the send in flight, if any.
    virtual void flush(const CancelToken* cancel) = 0;
    // Ends every rank of the job now (MPI_Abort) with this exit code.
    [[noreturn]] virtual void abort(int exitCode) noexcept = 0;

    // A broadcast of a buffer whose size only `root` knows.
    void broadcastBytes(std::vector<std::byte>& bytes, int root, const CancelToken* cancel);
    void broadcastString(std::string& text, int root, const CancelToken* cancel);
    bool single() const noexcept { return size() == 1; }
};

// This process's cluster: single-rank until joinCluster() joined an MPI job.
Cluster& cluster();

// main() of `novaq`: joins the MPI job when a launcher (mpirun, srun) started this process,
// in a build with MPI; otherwise nothing. Returns the rank count. With MPI these two live in
// the novaq_mpi library (cluster_mpi.cpp), which only `novaq` links: the desktop app and the
// tests never join a job and do not link MPI.
int joinCluster(int* argc, char*** argv);
// main() on success: MPI_Finalize when joined.
void leaveCluster() noexcept;
bool builtWithMpi() noexcept;
// joinCluster's hand-over: cluster() returns `joined` from now on (nullptr: single rank again).
void setJoinedCluster(Cluster* joined) noexcept;

// The variables MPI launchers set, read through `env`: the rank count they started (1 when
// none). OMPI_COMM_WORLD_SIZE (Open MPI's mpirun), PMI_SIZE (MPICH, Slurm's PMI), and
// PMIX_RANK / OMPI_COMM_WORLD_RANK / PMI_RANK > 0 (a second rank, size unknown).
int launcherRanks(const std::function<const char*(const char*)>& env);
// For a build without MPI (`withMpi` false), the message refusing a launch of more than one
// rank (empty when the launch is fine): every rank would compress the whole model on its own.
std::string launchWithoutMpiProblem(const std::function<const char*(const char*)>& env, bool withMpi);

// "rank 1 of 3 on node07": for messages.
std::string rankLabel();
// Every rank's host name, in rank order (a collective call).
std::vector<std::string> rankHosts(const CancelToken* cancel);

// The temporary output file of a cluster run, removed by removeScratchFile() from a signal
// handler: when one rank fails, the launcher ends the others with SIGTERM and then SIGKILL,
// and rank 0 may not reach its own cleanup in between. Empty path: none.
void setScratchFile(const std::filesystem::path& path) noexcept;
void removeScratchFile() noexcept; // async-signal-safe (unlink)

// Tests only: NOVAQ_TEST_MPI_FAIL_RANK=R makes rank R (of a cluster run) fail after its
// first tensor, to check that a failed rank ends the job and leaves no file.
void testFailurePoint();

// Each rank's share of one run (reported by rank 0).
struct RankShare {
    int rank = 0;
    std::string host;
    size_t tensors = 0;  // tensors it compressed
    uint64_t params = 0; // their parameters
    double cost = 0;     // their share of the estimated cost, 0..1
    double seconds = 0;  // its time in those tensors
};

// Splits `costs` (one per item) among `ranks`, the most costly first, each to the least
// loaded rank (ties: `load` so far, then the lower rank); `load` carries across calls.
std::vector<int> splitByCost(std::span<const double> costs, std::vector<double>& load);

} // namespace novaq
