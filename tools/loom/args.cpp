#include "args.h"

#include <cerrno>
#include <cmath>
#include <cstdlib>
#include <sstream>

namespace loom::cli {

namespace {

std::string fmt_range(const Range& r) {
  std::ostringstream os;
  os.precision(12);  // bounds such as 16777216 print whole, not as 1.67772e+07
  const bool lo = std::isfinite(r.min), hi = std::isfinite(r.max);
  if (lo && hi)
    os << "in " << (r.exclusive_min ? "(" : "[") << r.min << ", " << r.max << "]";
  else if (lo)
    os << (r.exclusive_min ? "> " : ">= ") << r.min;
  else if (hi)
    os << "<= " << r.max;
  return os.str();
}

void check_range(double v, const Range& r, const std::string& name, const std::string& raw) {
  const bool ok = (r.exclusive_min ? v > r.min : v >= r.min) && v <= r.max;
  if (!ok) throw UsageError(name + ": " + raw + " is out of range (must be " + fmt_range(r) + ")");
}

}  // namespace

int64_t parse_int(const std::string& s, const std::string& what) {
  errno = 0;
  char* end = nullptr;
  const long long v = std::strtoll(s.c_str(), &end, 10);
  if (s.empty() || end != s.c_str() + s.size() || errno == ERANGE)
    throw UsageError(what + ": expected an integer, got '" + s + "'");
  return v;
}

double parse_double(const std::string& s, const std::string& what) {
  errno = 0;
  char* end = nullptr;
  const double v = std::strtod(s.c_str(), &end);
  if (s.empty() || end != s.c_str() + s.size() || errno == ERANGE || !std::isfinite(v))
    throw UsageError(what + ": expected a number, got '" + s + "'");
  return v;
}

std::string fmt_number(double v) {
  std::ostringstream os;
  os << v;
  return os.str();
}

Args::Args(std::string command, std::string description)
    : command_(std::move(command)), description_(std::move(description)) {}

void Args::add(Opt o) {
  for (const auto& e : opts_)
    if (e.name == o.name) throw std::logic_error("Args: option " + o.name + " declared twice");
  opts_.push_back(std::move(o));
}

void Args::flag(const std::string& name, bool* out, const std::string& help) {
  add({name, "", help, true, [out](const std::string&) { *out = true; }});
}

void Args::option(const std::string& name, std::string* out, const std::string& metavar, const std::string& help) {
  add({name, metavar, help, false, [out, name](const std::string& v) {
         if (v.empty()) throw UsageError(name + ": the value is empty");
         *out = v;
       }});
}

void Args::option(const std::string& name, int64_t* out, const std::string& metavar, const std::string& help, Range r) {
  std::string h = help;
  add({name, metavar, h, false, [out, name, r](const std::string& v) {
         const int64_t x = parse_int(v, name);
         check_range(double(x), r, name, v);
         *out = x;
       }});
}

void Args::option(const std::string& name, double* out, const std::string& metavar, const std::string& help, Range r) {
  add({name, metavar, help, false, [out, name, r](const std::string& v) {
         const double x = parse_double(v, name);
         check_range(x, r, name, v);
         *out = x;
       }});
}

void Args::choice(const std::string& name, std::string* out, std::vector<std::string> choices,
                  const std::string& help) {
  std::string meta = "{";
  for (size_t i = 0; i < choices.size(); ++i) meta += (i ? "," : "") + choices[i];
  meta += "}";
  add({name, meta, help, false, [out, name, choices, meta](const std::string& v) {
         for (const auto& c : choices)
           if (c == v) {
             *out = v;
             return;
           }
         throw UsageError(name + ": invalid choice '" + v + "' (choose from " + meta + ")");
       }});
}

void Args::positionals(std::vector<std::string>* out, const std::string& metavar, const std::string& help, size_t min) {
  positional_ = out;
  positional_metavar_ = metavar;
  positional_help_ = help;
  positional_min_ = min;
}

void Args::parse(const std::vector<std::string>& args) {
  for (size_t i = 0; i < args.size(); ++i) {
    const std::string& a = args[i];
    if (a == "--help" || a == "-h") throw HelpRequested{help()};
    if (!a.starts_with("-") || a == "-") {
      if (!positional_) throw UsageError("unexpected argument '" + a + "'");
      positional_->push_back(a);
      continue;
    }
    if (a == "--") {  // everything after is positional
      for (++i; i < args.size(); ++i) {
        if (!positional_) throw UsageError("unexpected argument '" + args[i] + "'");
        positional_->push_back(args[i]);
      }
      break;
    }
    const size_t eq = a.find('=');
    const std::string name = a.substr(0, eq);
    const Opt* opt = nullptr;
    for (const auto& o : opts_)
      if (o.name == name) opt = &o;
    if (!opt) throw UsageError("unknown option '" + name + "'");
    if (given_.count(name)) throw UsageError(name + ": given more than once");
    given_.insert(name);
    if (opt->is_flag) {
      if (eq != std::string::npos) throw UsageError(name + ": takes no value");
      opt->set("");
      continue;
    }
    std::string value;
    if (eq != std::string::npos) {
      value = a.substr(eq + 1);
    } else {
      if (i + 1 >= args.size()) throw UsageError(name + ": missing value (" + opt->metavar + ")");
      value = args[++i];
    }
    opt->set(value);
  }
  if (positional_ && positional_->size() < positional_min_)
    throw UsageError("expected at least " + std::to_string(positional_min_) + " " + positional_metavar_ + " argument" +
                     (positional_min_ == 1 ? "" : "s"));
}

std::vector<std::string> Args::given_options() const {
  std::vector<std::string> out;
  for (const auto& o : opts_)
    if (given_.count(o.name)) out.push_back(o.name);
  return out;
}

namespace {
void help_line(std::ostringstream& os, const std::string& left, const std::string& h) {
  os << "  " << left;
  if (left.size() < 30)
    os << std::string(30 - left.size(), ' ');
  else
    os << "\n" << std::string(32, ' ');
  os << h << "\n";
}
}  // namespace

std::string Args::options_help() const {
  std::ostringstream os;
  for (const auto& o : opts_) help_line(os, o.name + (o.metavar.empty() ? "" : " " + o.metavar), o.help);
  return os.str();
}

std::string Args::help() const {
  std::ostringstream os;
  os << "usage: " << command_ << " [options]" << (positional_ ? " " + positional_metavar_ + "..." : "") << "\n\n"
     << description_ << "\n\noptions:\n"
     << options_help();
  help_line(os, "-h, --help", "show this help");
  if (positional_) help_line(os, positional_metavar_, positional_help_);
  return os.str();
}

std::string find_option_value(const std::vector<std::string>& args, const std::string& name) {
  for (size_t i = 0; i < args.size(); ++i) {
    if (args[i] == "--") break;
    if (args[i] == name) return i + 1 < args.size() ? args[i + 1] : "";
    if (args[i].starts_with(name + "=")) return args[i].substr(name.size() + 1);
  }
  return "";
}

}  // namespace loom::cli
