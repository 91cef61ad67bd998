// A small command-line parser for the loom subcommands: --name value, --name=value, flags and positionals.
//   Args a("loom train", "Train a model on a dataset.");
//   a.option("--epochs", &epochs, "N", "passes over the training data", {.min = 1});
//   a.choice("--optimizer", &opt, {"sgd", "adam", "adamw"}, "the update rule");
//   a.parse(argc, argv);   // throws UsageError naming the bad option; a.help() is the usage text
#pragma once
#include <cstdint>
#include <functional>
#include <limits>
#include <set>
#include <stdexcept>
#include <string>
#include <vector>

namespace loom::cli {

// A mistake in the command line: the tool prints it with the usage and exits with status 2.
class UsageError : public std::runtime_error {
 public:
  using std::runtime_error::runtime_error;
};

// Thrown by parse() for --help / -h: the tool prints the text and exits with status 0.
struct HelpRequested {
  std::string text;
};

struct Range {
  double min = -std::numeric_limits<double>::infinity();
  double max = std::numeric_limits<double>::infinity();
  bool exclusive_min = false;  // value must be > min rather than >= min
};

class Args {
 public:
  Args(std::string command, std::string description);

  void flag(const std::string& name, bool* out, const std::string& help);
  void option(const std::string& name, std::string* out, const std::string& metavar, const std::string& help);
  void option(const std::string& name, int64_t* out, const std::string& metavar, const std::string& help, Range r = {});
  void option(const std::string& name, double* out, const std::string& metavar, const std::string& help, Range r = {});
  void choice(const std::string& name, std::string* out, std::vector<std::string> choices, const std::string& help);
  // Arguments that do not start with "--" (at least `min` of them).
  void positionals(std::vector<std::string>* out, const std::string& metavar, const std::string& help, size_t min = 0);

  // argv without the program and command names.
  void parse(const std::vector<std::string>& args);
  bool given(const std::string& name) const { return given_.count(name) != 0; }
  // The options given on the command line, in declaration order (for "this option does not apply" checks).
  std::vector<std::string> given_options() const;
  std::string help() const;
  // Only the option lines of help() (no usage, description or --help line), for help texts made of sections.
  std::string options_help() const;
  const std::string& command() const { return command_; }

 private:
  struct Opt {
    std::string name, metavar, help;
    bool is_flag = false;
    std::function<void(const std::string&)> set;
  };
  void add(Opt o);

  std::string command_, description_;
  std::vector<Opt> opts_;
  std::vector<std::string>* positional_ = nullptr;
  std::string positional_metavar_, positional_help_;
  size_t positional_min_ = 0;
  std::set<std::string> given_;
};

// The value of option `name` in argv (--name V or --name=V; the first occurrence), "" when absent. For a
// command whose other options depend on one of them (loom train --model), before the full parse.
std::string find_option_value(const std::vector<std::string>& args, const std::string& name);

// Parses a whole decimal integer / finite number, or throws UsageError naming `what`.
int64_t parse_int(const std::string& s, const std::string& what);
double parse_double(const std::string& s, const std::string& what);
// A number as a user would write it (1e-3, 0.5), for messages.
std::string fmt_number(double v);

}  // namespace loom::cli
