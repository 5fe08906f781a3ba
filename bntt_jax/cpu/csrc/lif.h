// The LIF neuron's equations, written once for every compiled source that must agree with the
// others bit for bit (BNTT paper Eq. 4 and 8):
//
//   * the soft-reset update of one neuron at one step, u = leak * m + (y - mean) * scale,
//     spike = 1[u > threshold], m <- u - threshold * spike (the fused evaluation layer of
//     event_conv.cc and the training forward of bntt_lif.cc);
//   * the triangular surrogate alpha * max(0, 1 - |u / threshold - 1| / width) and its support,
//     |u / threshold - 1| / width < 1 (the LIF backward of bntt_lif.cc and the support lists of
//     lists.h, which the masked input gradient visits).
//
// Each is one expression, so that every caller's compiler contracts it into the same fused
// multiply-adds; inlined into the callers' `omp simd` loops, it vectorises as before.
#pragma once

#include <algorithm>
#include <cmath>

namespace bntt_jax {

// One soft-reset LIF step (Eq. 4) of a neuron with membrane m and normalised input
// (y - mean) * scale: returns the pre-reset membrane u; spike is 1[u > threshold] and m becomes
// u - threshold * spike.
template <typename F>
inline F LifStep(F& m, F y, F mean, F scale, F leak, F threshold, F& spike) {
  const F u = leak * m + (y - mean) * scale;
  spike = static_cast<F>(u > threshold);
  m = u - threshold * spike;
  return u;
}

// |u / threshold - 1| / width: the surrogate's distance from its peak at the threshold (Eq. 8).
template <typename F>
inline F SurrogateDistance(F u, F threshold, F width) {
  return std::abs(u / threshold - F(1)) / width;
}

// The triangular surrogate gradient of Eq. 8, alpha * max(0, 1 - distance).
template <typename F>
inline F Surrogate(F u, F threshold, F alpha, F width) {
  return alpha * std::max(F(0), F(1) - SurrogateDistance(u, threshold, width));
}

// Whether u lies in the surrogate's support: exactly where Surrogate is non-zero.
template <typename F>
inline bool InSupport(F u, F threshold, F width) {
  return SurrogateDistance(u, threshold, width) < F(1);
}

}  // namespace bntt_jax
