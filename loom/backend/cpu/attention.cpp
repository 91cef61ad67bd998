// Backend::attention_forward / _backward on the CPU: the flash-attention kernels of flash_attention.cpp, with
// the op's mask description turned into the raw view they read in place.
#include "loom/backend/cpu/cpu_backend.h"
#include "loom/backend/cpu/flash_attention.h"
#include "loom/core/dispatch.h"

namespace loom::cpu {

namespace {

template <class T>
AttnMask<T> kernel_mask(const AttentionMask& km) {
  AttnMask<T> m;
  if (!km.t.defined()) return m;
  // Offsets are in elements from the storage's base, so the base pointer excludes the view's offset.
  const char* base = static_cast<const char*>(km.t.raw_data()) - km.t.offset() * int64_t(itemsize(km.t.dtype()));
  if (km.t.dtype() == DType::boolean) m.keep = reinterpret_cast<const bool*>(base);
  else m.add = reinterpret_cast<const T*>(base);
  m.bh_offset = km.bh_offset.data();
  m.si = km.si;
  m.sj = km.sj;
  return m;
}

template <class T>
const T* cp(const Tensor& t) { return static_cast<const T*>(t.raw_data()); }
template <class T>
T* mp(const Tensor& t) { return static_cast<T*>(t.raw_data()); }

}  // namespace

void CpuBackend::attention_forward(const AttnShape& s, Tensor& out, Tensor& lse, const Tensor& q, const Tensor& k,
                                   const Tensor& v, const AttentionMask& mask) {
  // Heads in place (AttnShape's layouts) replace the packed addressing; the slot and k/v-stride forms keep it.
  const bool layouts = s.q_layout.heads || s.k_layout.heads || s.v_layout.heads || s.o_layout.heads;
  LOOM_CHECK(!layouts || (s.kv_bh_offset.empty() && s.k_bh_stride == 0 && s.v_bh_stride == 0),
             "attention_forward: AttnShape layouts cannot be combined with slotted caches or k/v (b, h) strides");
  dispatch_float(q.dtype(), "fused_attention", [&]<class T>() {
    flash_attention_forward<T>(s, cp<T>(q), cp<T>(k), cp<T>(v), kernel_mask<T>(mask), mp<T>(out), mp<T>(lse));
  });
}

void CpuBackend::attention_backward(const AttnShape& s, Tensor& dq, Tensor& dk, Tensor& dv, const Tensor& q,
                                    const Tensor& k, const Tensor& v, const AttentionMask& mask, const Tensor& out,
                                    const Tensor& lse, const Tensor& dout) {
  dispatch_float(q.dtype(), "fused_attention backward", [&]<class T>() {
    flash_attention_backward<T>(s, cp<T>(q), cp<T>(k), cp<T>(v), kernel_mask<T>(mask), cp<T>(out), cp<T>(lse),
                                cp<T>(dout), mp<T>(dq), mp<T>(dk), mp<T>(dv));
  });
}

}  // namespace loom::cpu
