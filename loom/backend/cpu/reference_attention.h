// Plain reference attention (llm.c style raw-pointer loops, double accumulation) that tests compare the
// fused flash-attention kernel against. Same layout and contract as cpu/flash_attention.h.
//   loom::ref::attention_forward(shape, q, k, v, mask, out, lse);
//   loom::ref::attention_backward(shape, q, k, v, mask, out, lse, dout, dq, dk, dv);
#pragma once
#include <cmath>
#include <limits>
#include <vector>

#include "loom/backend/cpu/flash_attention.h"

namespace loom::ref {

// The score of (row i, key j) after scale and masks, or -inf when masked.
template <class T>
double attention_score(const cpu::AttnShape& s, const T* qi, const T* kj, const cpu::AttnMask<T>& m, int64_t bh,
                       int64_t i, int64_t j) {
  if (s.causal && j > i) return -std::numeric_limits<double>::infinity();
  double acc = 0;
  for (int64_t d = 0; d < s.D; ++d) acc += double(qi[d]) * double(kj[d]);
  acc *= s.scale;
  if (m.keep && !m.keep[m.bh_offset[bh] + i * m.si + j * m.sj]) return -std::numeric_limits<double>::infinity();
  if (m.add) acc += double(m.add[m.bh_offset[bh] + i * m.si + j * m.sj]);
  return acc;
}

template <class T>
void attention_forward(const cpu::AttnShape& s, const T* q, const T* k, const T* v, const cpu::AttnMask<T>& m, T* out,
                       T* lse) {
  std::vector<double> p(s.Tk);
  for (int64_t bh = 0; bh < s.BH; ++bh)
    for (int64_t i = 0; i < s.Tq; ++i) {
      const T* qi = q + (bh * s.Tq + i) * s.D;
      double mx = -std::numeric_limits<double>::infinity();
      for (int64_t j = 0; j < s.Tk; ++j) {
        p[j] = attention_score(s, qi, k + (bh * s.Tk + j) * s.D, m, bh, i, j);
        if (p[j] > mx) mx = p[j];
      }
      double z = 0;
      for (int64_t j = 0; j < s.Tk; ++j) {
        p[j] = std::isinf(mx) ? 0.0 : std::exp(p[j] - mx);
        z += p[j];
      }
      T* oi = out + (bh * s.Tq + i) * s.Dv;
      for (int64_t d = 0; d < s.Dv; ++d) {
        double acc = 0;
        for (int64_t j = 0; j < s.Tk; ++j) acc += p[j] * double(v[(bh * s.Tk + j) * s.Dv + d]);
        oi[d] = T(z > 0 ? acc / z : 0.0);
      }
      lse[bh * s.Tq + i] = T(z > 0 ? mx + std::log(z) : -std::numeric_limits<double>::infinity());
    }
}

// dq, dk, dv are overwritten.
template <class T>
void attention_backward(const cpu::AttnShape& s, const T* q, const T* k, const T* v, const cpu::AttnMask<T>& m,
                        const T* out, const T* lse, const T* dout, T* dq, T* dk, T* dv) {
  std::vector<double> gq(s.D), gk(s.BH * s.Tk * s.D, 0.0), gv(s.BH * s.Tk * s.Dv, 0.0), p(s.Tk), ds(s.Tk);
  for (int64_t bh = 0; bh < s.BH; ++bh)
    for (int64_t i = 0; i < s.Tq; ++i) {
      const T* qi = q + (bh * s.Tq + i) * s.D;
      const T* doi = dout + (bh * s.Tq + i) * s.Dv;
      const T* oi = out + (bh * s.Tq + i) * s.Dv;
      const double L = double(lse[bh * s.Tq + i]);
      double Di = 0;  // sum_j p_j dp_j = dout_i . out_i
      for (int64_t d = 0; d < s.Dv; ++d) Di += double(doi[d]) * double(oi[d]);
      for (int64_t j = 0; j < s.Tk; ++j) {
        const double sc = attention_score(s, qi, k + (bh * s.Tk + j) * s.D, m, bh, i, j);
        p[j] = std::isinf(L) || std::isinf(sc) ? 0.0 : std::exp(sc - L);
        double dp = 0;
        for (int64_t d = 0; d < s.Dv; ++d) dp += double(doi[d]) * double(v[(bh * s.Tk + j) * s.Dv + d]);
        ds[j] = p[j] * (dp - Di);
      }
      for (int64_t d = 0; d < s.D; ++d) gq[d] = 0;
      for (int64_t j = 0; j < s.Tk; ++j) {
        const T* kj = k + (bh * s.Tk + j) * s.D;
        for (int64_t d = 0; d < s.D; ++d) {
          gq[d] += ds[j] * double(kj[d]) * s.scale;
          gk[(bh * s.Tk + j) * s.D + d] += ds[j] * double(qi[d]) * s.scale;
        }
        for (int64_t d = 0; d < s.Dv; ++d) gv[(bh * s.Tk + j) * s.Dv + d] += p[j] * double(doi[d]);
      }
      for (int64_t d = 0; d < s.D; ++d) dq[(bh * s.Tq + i) * s.D + d] = T(gq[d]);
    }
  for (size_t x = 0; x < gk.size(); ++x) dk[x] = T(gk[x]);
  for (size_t x = 0; x < gv.size(); ++x) dv[x] = T(gv[x]);
}

}  // namespace loom::ref
