#include "novaq/pipeline/cluster.h"

#include "novaq/io/error.h"

#include <unistd.h>

#include <algorithm>
#include <cstdlib>
#include <cstring>
#include <numeric>

namespace novaq {

namespace {

// The single-rank cluster: a process on its own (no launcher, or a build without MPI).
class SingleRank final : public Cluster {
public:
    int rank() const noexcept override { return 0; }
    int size() const noexcept override { return 1; }
    void broadcast(std::span<std::byte>, int, const CancelToken*) override {}
    void send(std::vector<std::byte>, int to, const CancelToken*) override
    {
        internalError("send to rank " + std::to_string(to) + " of a single rank");
    }
    std::vector<std::byte> receive(int from, const CancelToken*) override
    {
        internalError("receive from rank " + std::to_string(from) + " of a single rank");
    }
    void flush(const CancelToken*) override {}
    [[noreturn]] void abort(int exitCode) noexcept override { std::_Exit(exitCode); }
};

int envInt(const std::function<const char*(const char*)>& env, const char* name, int fallback)
{
    const char* v = env(name);
    if (!v || !*v)
        return fallback;
    char* end = nullptr;
    const long n = std::strtol(v, &end, 10);
    return end && *end == '\0' && n >= 0 && n < (1 << 24) ? static_cast<int>(n) : fallback;
}

// A fixed buffer, so that the signal handler only reads memory (no allocation, no locks).
char g_scratch[4096] = {};

} // namespace

namespace {
Cluster* g_joined = nullptr; // set by joinCluster (cluster_mpi.cpp)
} // namespace

void setJoinedCluster(Cluster* joined) noexcept { g_joined = joined; }

#ifdef NOVAQ_WITH_MPI
bool builtWithMpi() noexcept { return true; }
#else
bool builtWithMpi() noexcept { return false; }
int joinCluster(int*, char***) { return 1; }
void leaveCluster() noexcept {}
#endif

Cluster& cluster()
{
    static SingleRank single;
    return g_joined ? *g_joined : single;
}

std::vector<std::string> rankHosts(const CancelToken* cancel)
{
    char host[256] = {};
    gethostname(host, sizeof host - 1);
    std::vector<std::string> hosts;
    Cluster& ranks = cluster();
    for (int r = 0; r < ranks.size(); ++r) { // each rank's name, from that rank, in rank order
        std::string name = r == ranks.rank() ? std::string(host) : std::string();
        ranks.broadcastString(name, r, cancel);
        hosts.push_back(r == ranks.rank() ? std::string(host) : name);
    }
    return hosts;
}

void Cluster::broadcastBytes(std::vector<std::byte>& bytes, int root, const CancelToken* cancel)
{
    if (single())
        return;
    uint64_t n = bytes.size();
    broadcast({reinterpret_cast<std::byte*>(&n), sizeof n}, root, cancel);
    bytes.resize(n);
    broadcast(bytes, root, cancel);
}

void Cluster::broadcastString(std::string& text, int root, const CancelToken* cancel)
{
    std::vector<std::byte> bytes(text.size());
    std::memcpy(bytes.data(), text.data(), text.size());
    broadcastBytes(bytes, root, cancel);
    text.assign(reinterpret_cast<const char*>(bytes.data()), bytes.size());
}

int launcherRanks(const std::function<const char*(const char*)>& env)
{
    int ranks = std::max(envInt(env, "OMPI_COMM_WORLD_SIZE", 1), envInt(env, "PMI_SIZE", 1));
    for (const char* rankVar : {"PMIX_RANK", "OMPI_COMM_WORLD_RANK", "PMI_RANK"})
        ranks = std::max(ranks, envInt(env, rankVar, 0) + 1);
    return std::max(ranks, 1);
}

std::string launchWithoutMpiProblem(const std::function<const char*(const char*)>& env, bool withMpi)
{
    if (withMpi)
        return {};
    const int ranks = launcherRanks(env);
    if (ranks <= 1)
        return {};
    return "an MPI launcher started " + std::to_string(ranks) +
           " ranks, but this novaq was built without MPI support, so every rank would compress the whole "
           "model on its own; run one process without mpirun/srun, or build with Open MPI "
           "(Debian: apt-get install libopenmpi-dev openmpi-bin, then cmake -DNOVAQ_WITH_MPI=ON)";
}

std::string rankLabel()
{
    const Cluster& c = cluster();
    char host[256] = {};
    gethostname(host, sizeof host - 1);
    return "rank " + std::to_string(c.rank()) + " of " + std::to_string(c.size()) + " on " + host;
}

void setScratchFile(const std::filesystem::path& path) noexcept
{
    const std::string& s = path.native();
    if (s.size() >= sizeof g_scratch) {
        g_scratch[0] = '\0';
        return;
    }
    std::memcpy(g_scratch, s.c_str(), s.size() + 1);
}

void removeScratchFile() noexcept
{
    if (g_scratch[0] != '\0')
        ::unlink(g_scratch);
}

void testFailurePoint()
{
    const Cluster& c = cluster();
    const char* v = std::getenv("NOVAQ_TEST_MPI_FAIL_RANK");
    if (c.single() || !v || std::to_string(c.rank()) != v)
        return;
    throw Error(ErrorKind::Io, "NOVAQ_TEST_MPI_FAIL_RANK=" + std::string(v) + ": " + rankLabel() +
                                   " fails on purpose after its first tensor (a test)");
}

std::vector<int> splitByCost(std::span<const double> costs, std::vector<double>& load)
{
    const int ranks = static_cast<int>(load.size());
    std::vector<size_t> byCost(costs.size());
    std::iota(byCost.begin(), byCost.end(), size_t(0));
    std::stable_sort(byCost.begin(), byCost.end(), [&](size_t a, size_t b) { return costs[a] > costs[b]; });
    std::vector<double> step(static_cast<size_t>(ranks), 0.0);
    std::vector<int> owner(costs.size(), 0);
    for (const size_t item : byCost) {
        int best = 0;
        for (int r = 1; r < ranks; ++r) {
            const auto ur = static_cast<size_t>(r), ub = static_cast<size_t>(best);
            if (step[ur] < step[ub] || (step[ur] == step[ub] && load[ur] < load[ub]))
                best = r;
        }
        owner[item] = best;
        step[static_cast<size_t>(best)] += costs[item];
        load[static_cast<size_t>(best)] += costs[item];
    }
    return owner;
}

} // namespace novaq
