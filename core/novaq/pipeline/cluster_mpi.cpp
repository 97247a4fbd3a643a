// The MPI side of cluster.h: compiled only with NOVAQ_WITH_MPI (core/CMakeLists.txt).
//
// Every wait polls (MPI_Test) and checks the cancel token in between, so that a rank told to
// stop (Ctrl-C, or SIGTERM from the launcher when another rank failed) leaves its collective
// call, deletes its temporary file and ends, instead of blocking until SIGKILL.

#include "novaq/io/error.h"
#include "novaq/pipeline/cluster.h"

#include <algorithm>
#include <chrono>
#include <cstdlib>
#include <memory>
#include <mpi.h>
#include <thread>

namespace novaq {

namespace {

constexpr int kTag = 16;
// MPI counts are int: larger buffers go in pieces of 1 GiB.
constexpr size_t kPiece = size_t(1) << 30;

void waitAll(std::vector<MPI_Request>& requests, const CancelToken* cancel)
{
    while (true) {
        int done = 0;
        MPI_Testall(static_cast<int>(requests.size()), requests.data(), &done, MPI_STATUSES_IGNORE);
        if (done)
            return;
        checkCancel(cancel);
        std::this_thread::sleep_for(std::chrono::microseconds(200));
    }
}

class MpiCluster final : public Cluster {
public:
    MpiCluster()
    {
        MPI_Comm_rank(MPI_COMM_WORLD, &m_rank);
        MPI_Comm_size(MPI_COMM_WORLD, &m_size);
    }
    int rank() const noexcept override { return m_rank; }
    int size() const noexcept override { return m_size; }

    void broadcast(std::span<std::byte> bytes, int root, const CancelToken* cancel) override
    {
        if (m_size == 1)
            return;
        for (size_t at = 0; at < bytes.size(); at += kPiece) {
            std::vector<MPI_Request> request(1);
            MPI_Ibcast(bytes.data() + at, static_cast<int>(std::min(kPiece, bytes.size() - at)), MPI_BYTE, root,
                       MPI_COMM_WORLD, request.data());
            waitAll(request, cancel);
        }
    }

    void send(std::vector<std::byte> bytes, int to, const CancelToken* cancel) override
    {
        flush(cancel);
        m_sending = std::move(bytes);
        m_sendSize = m_sending.size();
        m_pending.assign(1, MPI_REQUEST_NULL);
        MPI_Isend(&m_sendSize, 1, MPI_UINT64_T, to, kTag, MPI_COMM_WORLD, m_pending.data());
        for (size_t at = 0; at < m_sending.size(); at += kPiece) {
            m_pending.push_back(MPI_REQUEST_NULL);
            MPI_Isend(m_sending.data() + at, static_cast<int>(std::min(kPiece, m_sending.size() - at)), MPI_BYTE, to,
                      kTag, MPI_COMM_WORLD, &m_pending.back());
        }
    }

    std::vector<std::byte> receive(int from, const CancelToken* cancel) override
    {
        uint64_t n = 0;
        std::vector<MPI_Request> requests(1);
        MPI_Irecv(&n, 1, MPI_UINT64_T, from, kTag, MPI_COMM_WORLD, requests.data());
        waitAll(requests, cancel);
        std::vector<std::byte> bytes(n);
        requests.clear();
        for (size_t at = 0; at < bytes.size(); at += kPiece) {
            requests.push_back(MPI_REQUEST_NULL);
            MPI_Irecv(bytes.data() + at, static_cast<int>(std::min(kPiece, bytes.size() - at)), MPI_BYTE, from, kTag,
                      MPI_COMM_WORLD, &requests.back());
        }
        waitAll(requests, cancel);
        return bytes;
    }

    void flush(const CancelToken* cancel) override
    {
        if (m_pending.empty())
            return;
        waitAll(m_pending, cancel);
        m_pending.clear();
        m_sending = {};
    }

    [[noreturn]] void abort(int exitCode) noexcept override
    {
        MPI_Abort(MPI_COMM_WORLD, exitCode);
        std::_Exit(exitCode);
    }

private:
    int m_rank = 0, m_size = 1;
    std::vector<std::byte> m_sending;
    uint64_t m_sendSize = 0;
    std::vector<MPI_Request> m_pending;
};

std::unique_ptr<MpiCluster> g_mpi;

bool launcherPresent()
{
    for (const char* v : {"OMPI_COMM_WORLD_SIZE", "PMI_SIZE", "PMIX_RANK", "PMI_RANK"})
        if (const char* s = std::getenv(v); s && *s)
            return true;
    return false;
}

} // namespace

int joinCluster(int* argc, char*** argv)
{
    // A process no launcher started stays on its own: no MPI_Init, exactly as without MPI.
    if (g_mpi || !launcherPresent())
        return g_mpi ? g_mpi->size() : 1;
    int provided = 0;
    // Only the main thread calls MPI; TBB's workers never do.
    if (MPI_Init_thread(argc, argv, MPI_THREAD_FUNNELED, &provided) != MPI_SUCCESS)
        throw Error(ErrorKind::Io, "MPI_Init failed; check the launcher (mpirun, srun) and its host list");
    g_mpi = std::make_unique<MpiCluster>();
    setJoinedCluster(g_mpi.get());
    return g_mpi->size();
}

void leaveCluster() noexcept
{
    if (!g_mpi)
        return;
    try {
        g_mpi->flush(nullptr);
    } catch (...) {
    }
    MPI_Finalize();
    setJoinedCluster(nullptr);
    g_mpi.reset();
}

} // namespace novaq
