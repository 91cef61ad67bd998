// W6: single-precision GEMM throughput at square sizes, one JSON line per size; then f32 vs bf16 GEMM
// (f32 operands rounded to bf16, f32 accumulation: loom's autocast path) at the shapes of W3/W5 training,
// forward (x W^T) and the two backward products (dY W, dY^T X), plus square 1024/2048.
//   build-x/bench/gemm_bench 2        # threads; bench/gemm_torch.py 2 prints the PyTorch side
#include <algorithm>
#include <cstdlib>
#include <string>

#include "bench_util.h"
#include "loom/backend/cpu/gemm_bf16.h"
#include "loom/backend/cpu/isa.h"
#include "loom/loom.h"

using namespace loom;

int main(int argc, char** argv) {
  const int threads = argc > 1 ? std::atoi(argv[1]) : 2;
  set_num_threads(threads);
  for (int64_t n : {512, 1024, 2048}) {
    Tensor a = randn({n, n}), b = randn({n, n});
    Tensor c;
    const double s = bench::best_seconds(n >= 2048 ? 3 : 8, [&] { c = mm(a, b); });
    std::printf("{\"bench\":\"gemm\",\"impl\":\"loom\",\"n\":%lld,\"gflops\":%.1f}\n", (long long)n, 2.0 * n * n * n / s / 1e9);
  }
  // loom's AVX-512 sgemm against OpenBLAS (what the backend runs with the AVX-512 kernels switched off) on
  // square sizes and the workloads' layer shapes, interleaved, best of each.
  {
    struct Shape { const char* name; bool ta, tb; int64_t M, N, K; };
    const Shape shapes[] = {{"sq512", false, false, 512, 512, 512}, {"sq1024", false, false, 1024, 1024, 1024},
                            {"w1_fc1_fwd", false, true, 64, 512, 784}, {"w1_fc1_dx", false, false, 64, 784, 512},
                            {"w1_fc1_dw", true, false, 512, 784, 64}, {"w1_fc2_fwd", false, true, 64, 256, 512},
                            {"w3_qkv_fwd", false, true, 2048, 384, 128}, {"w3_mlp_dw", true, false, 512, 128, 2048},
                            {"w3_fc2_fwd", false, true, 2048, 128, 512}, {"w3_fc1_dx", false, false, 2048, 128, 512},
                            {"w3_fc2_dx", false, false, 2048, 512, 128}, {"w3_proj_dw", true, false, 128, 128, 2048},
                            {"w5_qkv_fwd", false, true, 256, 2304, 768}, {"w5_mlp_dx", false, false, 256, 768, 3072},
                            {"gpt2_prompt_fc", false, true, 128, 3072, 768}};
    for (const Shape& sh : shapes) {
      Tensor a = randn({sh.ta ? sh.K : sh.M, sh.ta ? sh.M : sh.K}), b = randn({sh.tb ? sh.N : sh.K, sh.tb ? sh.K : sh.N});
      Tensor c = zeros({sh.M, sh.N});
      Backend& be = backend_for(a);
      const double flops = 2.0 * double(sh.M) * double(sh.N) * double(sh.K);
      const int reps = flops > 1e9 ? 5 : 20;
      double s_loom = 1e30, s_blas = 1e30;
      auto run = [&] {
        be.gemm(sh.ta, sh.tb, sh.M, sh.N, sh.K, 1.0, a.data<float>(), a.size(1), b.data<float>(), b.size(1), 0.0,
                c.data<float>(), sh.N, DType::f32);
      };
      for (int r = 0; r < reps; ++r) {
        cpu::force_baseline_for_testing(true);
        s_blas = std::min(s_blas, bench::best_seconds(1, run));
        cpu::force_baseline_for_testing(false);
        s_loom = std::min(s_loom, bench::best_seconds(1, run));
      }
      std::printf("{\"bench\":\"sgemm_kernel\",\"shape\":\"%s\",\"M\":%lld,\"N\":%lld,\"K\":%lld,\"loom_gflops\":%.1f,"
                  "\"openblas_gflops\":%.1f,\"ratio\":%.2f}\n",
                  sh.name, (long long)sh.M, (long long)sh.N, (long long)sh.K, flops / s_loom / 1e9, flops / s_blas / 1e9,
                  s_blas / s_loom);
    }
  }
  // Linear layer (rows x in -> out): forward M=rows N=out K=in; dX M=rows N=in K=out; dW M=out N=in K=rows.
  struct Lin { const char* name; int64_t rows, in, out; };
  const Lin lins[] = {{"w3_qkv", 2048, 128, 384}, {"w3_mlp", 2048, 128, 512}, {"w5_qkv", 256, 768, 2304},
                      {"w5_mlp", 256, 768, 3072}, {"w5_head", 256, 768, 50257}, {"sq1024", 1024, 1024, 1024},
                      {"sq2048", 2048, 2048, 2048}};
  const std::string kernel = cpu::bf16_kernel_name(cpu::bf16_kernel());
  for (const Lin& l : lins) {
    Tensor x = randn({l.rows, l.in}), w = randn({l.out, l.in}), g = randn({l.rows, l.out});
    Tensor y = zeros({l.rows, l.out}), dx = zeros({l.rows, l.in}), dw = zeros({l.out, l.in});
    const float *px = x.data<float>(), *pw = w.data<float>(), *pg = g.data<float>();
    float *py = y.data<float>(), *pdx = dx.data<float>(), *pdw = dw.data<float>();
    const double flops = 2.0 * double(l.rows) * double(l.in) * double(l.out);
    const int reps = flops > 2e10 ? 2 : flops > 2e9 ? 4 : 10;
    Backend& be = backend_for(x);
    struct Prod { const char* pass; bool ta, tb; int64_t M, N, K; const float *A, *B; int64_t lda, ldb; float* C; };
    const Prod prods[] = {{"fwd", false, true, l.rows, l.out, l.in, px, pw, l.in, l.in, py},
                          {"bwd_dx", false, false, l.rows, l.in, l.out, pg, pw, l.out, l.in, pdx},
                          {"bwd_dw", true, false, l.out, l.in, l.rows, pg, px, l.out, l.in, pdw}};
    for (const Prod& p : prods) {
      // Interleaved, best of each: on a shared machine a load spike then hits both kernels alike.
      double s32 = 1e30, s16 = 1e30;
      for (int r = 0; r < reps; ++r) {
        s32 = std::min(s32, bench::best_seconds(1, [&] {
          be.gemm(p.ta, p.tb, p.M, p.N, p.K, 1.0, p.A, p.lda, p.B, p.ldb, 0.0, p.C, p.N, DType::f32);
        }));
        s16 = std::min(s16, bench::best_seconds(1, [&] {
          cpu::gemm_bf16(p.ta, p.tb, p.M, p.N, p.K, 1.0f, p.A, p.lda, p.B, p.ldb, 0.0f, p.C, p.N);
        }));
      }
      std::printf("{\"bench\":\"gemm_bf16\",\"impl\":\"loom\",\"shape\":\"%s\",\"pass\":\"%s\",\"M\":%lld,\"N\":%lld,\"K\":%lld,"
                  "\"f32_gflops\":%.1f,\"bf16_gflops\":%.1f,\"kernel\":\"%s\"}\n",
                  l.name, p.pass, (long long)p.M, (long long)p.N, (long long)p.K, flops / s32 / 1e9, flops / s16 / 1e9,
                  kernel.c_str());
    }
  }
}
