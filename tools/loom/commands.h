// The loom subcommands, one file each. Each takes the arguments after its name and returns the exit status;
// usage mistakes throw UsageError (status 2), runtime failures throw loom::Error (status 1).
//   int rc = loom::cli::cmd_info({});
#pragma once
#include <string>
#include <vector>

namespace loom::cli {

using Argv = std::vector<std::string>;

int cmd_train(const Argv& args);
int cmd_eval(const Argv& args);
int cmd_predict(const Argv& args);
int cmd_summary(const Argv& args);
int cmd_info(const Argv& args);

// Peak resident memory of this process so far, in MiB.
double peak_rss_mb();

}  // namespace loom::cli
