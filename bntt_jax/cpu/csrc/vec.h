// Shared by the compiled sources: one 64-byte vector of float32 or float64 lanes, written with
// the compiler's vector extensions (AVX-512 registers under -march=native where the CPU has
// them, two or four narrower ones elsewhere), and unaligned loads and stores of it.
#pragma once

#include <cstdint>
#include <cstring>

namespace bntt_jax {

template <typename F>
struct VecType;
template <>
struct VecType<float> {
  typedef float type __attribute__((vector_size(64)));
};
template <>
struct VecType<double> {
  typedef double type __attribute__((vector_size(64)));
};
template <typename F>
using Vec = typename VecType<F>::type;

template <typename F>
constexpr int64_t Lanes() {
  return 64 / sizeof(F);
}

template <typename F>
inline Vec<F> Load(const F* p) {
  Vec<F> v;
  std::memcpy(&v, p, sizeof(v));
  return v;
}

template <typename F>
inline void Store(F* p, Vec<F> v) {
  std::memcpy(p, &v, sizeof(v));
}

}  // namespace bntt_jax
