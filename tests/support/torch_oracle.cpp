#include "torch_oracle.h"

#include <cmath>
#include <cstdio>
#include <iomanip>
#include <sstream>
#include <sys/wait.h>
#include <unistd.h>

#include <nlohmann/json.hpp>

namespace loom::test {

namespace {

// One python process per test binary, started on first use and fed requests over pipes.
class Oracle {
 public:
  static Oracle& get() {
    static Oracle o;
    return o;
  }
  std::string ask(const std::string& req) {
    LOOM_CHECK(pid_ > 0, "torch oracle: /usr/bin/python3 with torch could not be started");
    std::string line = req + "\n";
    LOOM_CHECK(fwrite(line.data(), 1, line.size(), to_) == line.size() && fflush(to_) == 0,
               "torch oracle: writing the request failed (did python exit? is python3-torch installed?)");
    std::string resp;
    char buf[65536];
    while (fgets(buf, sizeof buf, from_)) {
      resp += buf;
      if (!resp.empty() && resp.back() == '\n') break;
    }
    LOOM_CHECK(!resp.empty(), "torch oracle: no answer from python (is python3-torch installed?)");
    return resp;
  }
  ~Oracle() {
    if (to_) fclose(to_);
    if (from_) fclose(from_);
    if (pid_ > 0) waitpid(pid_, nullptr, 0);
  }

 private:
  Oracle() {
    int in[2], out[2];
    if (pipe(in) || pipe(out)) return;
    pid_ = fork();
    if (pid_ == 0) {
      dup2(in[0], 0);
      dup2(out[1], 1);
      close(in[1]);
      close(out[0]);
      std::string script = std::string(LOOM_TEST_DIR) + "/support/oracle.py";
      execl("/usr/bin/python3", "python3", script.c_str(), (char*)nullptr);
      _exit(127);
    }
    close(in[0]);
    close(out[1]);
    to_ = fdopen(in[1], "w");
    from_ = fdopen(out[0], "r");
  }
  pid_t pid_ = -1;
  FILE* to_ = nullptr;
  FILE* from_ = nullptr;
};

DType dtype_from(const std::string& s) {
  if (s == "float32") return DType::f32;
  if (s == "float64") return DType::f64;
  if (s == "int64") return DType::i64;
  if (s == "int32") return DType::i32;
  if (s == "uint8") return DType::u8;
  if (s == "bool") return DType::boolean;
  LOOM_FAIL("torch oracle: unsupported dtype ", s);
}

}  // namespace

std::map<std::string, Tensor> torch_run(const std::string& code, const std::vector<Arg>& inputs) {
  nlohmann::json req;
  req["code"] = code;
  req["inputs"] = nlohmann::json::object();
  for (const auto& a : inputs) {
    nlohmann::json spec;
    spec["dtype"] = dtype_name(a.value.dtype());
    spec["shape"] = a.value.shape();
    std::vector<double> vals = a.value.tolist();
    if (is_floating(a.value.dtype())) spec["data"] = vals;
    else {
      std::vector<int64_t> iv(vals.begin(), vals.end());
      if (a.value.dtype() == DType::boolean) spec["data"] = std::vector<bool>(vals.begin(), vals.end());
      else spec["data"] = iv;
    }
    spec["requires_grad"] = a.requires_grad;
    req["inputs"][a.name] = spec;
  }
  nlohmann::json res = nlohmann::json::parse(Oracle::get().ask(req.dump()));
  LOOM_CHECK(!res.contains("error"), "torch oracle: the PyTorch snippet failed:\n", res.value("error", std::string()));
  std::map<std::string, Tensor> out;
  for (auto& [k, v] : res["out"].items()) {
    DType dt = dtype_from(v["dtype"].get<std::string>());
    Shape shape = v["shape"].get<Shape>();
    std::vector<double> data;
    for (auto& x : v["data"]) data.push_back(x.is_boolean() ? double(x.get<bool>()) : x.get<double>());
    out[k] = tensor(data, shape.empty() ? Shape{} : shape, {.dtype = DType::f64}).to(dt);
    if (shape.empty()) out[k] = out[k].reshape({});
  }
  return out;
}

::testing::AssertionResult parity_close(const Tensor& a, const Tensor& b, double rtol) {
  if (!a.defined() || !b.defined()) return ::testing::AssertionFailure() << "undefined tensor (ours " << a.defined() << ", torch " << b.defined() << ")";
  if (a.shape() != b.shape()) {
    std::ostringstream os;
    os << "shape mismatch: ours " << a.shape() << " vs torch " << b.shape();
    return ::testing::AssertionFailure() << os.str();
  }
  std::vector<double> va = a.tolist(), vb = b.tolist();
  double maxabs = 0;
  for (double v : vb) maxabs = std::max(maxabs, std::abs(v));
  double worst = 0;
  size_t wi = 0;
  for (size_t i = 0; i < va.size(); ++i) {
    const double err = std::abs(va[i] - vb[i]), tol = rtol * (std::abs(vb[i]) + maxabs);
    const bool both_nan = std::isnan(va[i]) && std::isnan(vb[i]);
    const bool same_inf = std::isinf(va[i]) && va[i] == vb[i];
    if (both_nan || same_inf) continue;
    if (!(err <= tol)) {
      if (!(err / std::max(tol, 1e-300) < worst)) { worst = err / std::max(tol, 1e-300); wi = i; }
    }
  }
  if (worst > 0)
    return ::testing::AssertionFailure() << std::setprecision(9) << "element " << wi << ": ours " << va[wi] << " vs torch "
                                         << vb[wi] << " (" << worst << "x the tolerance " << rtol << " relative; max|torch| "
                                         << maxabs << ")";
  return ::testing::AssertionSuccess();
}

}  // namespace loom::test
