// The network commands' runners in `novaq`: each hands the whole command line to novaq-net
// (net_helper.h), which runs it with the network libraries linked. Their table, and so their
// help and argument checks, are the same in both programs.

#include "commands.h"
#include "net_helper.h"

#include "novaq/pipeline/cluster.h"

namespace novaq::cli {

int runSearch(const Context& context, const ParsedArgs&) { execNetHelper(context.executable, context.argv); }
int runHf(const Context& context, const ParsedArgs&) { execNetHelper(context.executable, context.argv); }
int runOllama(const Context& context, const ParsedArgs&) { execNetHelper(context.executable, context.argv); }
int runUrl(const Context& context, const ParsedArgs&) { execNetHelper(context.executable, context.argv); }
int runServe(const Context& context, const ParsedArgs&) { execNetHelper(context.executable, context.argv); }

} // namespace novaq::cli

#ifdef NOVAQ_WITH_MPI
namespace novaq {
// The cluster side (cluster_mpi.cpp, Open MPI) is linked by novaq-net; `novaq` hands a run an
// MPI launcher started to it before joining (main.cpp), so here a process is always one rank.
int joinCluster(int*, char***) { return 1; }
void leaveCluster() noexcept {}
} // namespace novaq
#endif
