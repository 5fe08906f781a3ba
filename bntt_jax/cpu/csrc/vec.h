// Shared by the compiled sources: the target's native vector of float32 or float64 lanes, written
// with the compiler's vector extensions, its unaligned loads and stores, and the register blocking
// of every kernel, chosen at compile time from the vector width and the number of vector
// registers of the target the library is built for (BNTT_JAX_MARCH, default -march=native):
//
//   target                          width  registers  FMA
//   AVX-512 (x86-64-v4)             64 B   32 zmm     yes
//   AVX, AVX2 (x86-64-v3)           32 B   16 ymm     with AVX2 (v3), not with AVX alone
//   SSE2 ... SSE4.2 (x86-64-v1/v2)  16 B   16 xmm     no
//   aarch64 (NEON)                  16 B   32 q       yes
//
// A vector wider than the target's registers is split by GCC into halves that live on the stack
// (every operation a load and a store), and a register block larger than the register file
// spills: either makes the inner loops several times longer (benchmarks/README.md, "The kernels
// on every ISA", has the assembly of each hot loop per target).
#pragma once

#include <cstdint>
#include <cstring>
#include <type_traits>

#if defined(__SSE2__)
#include <immintrin.h>
#elif defined(__aarch64__)
#include <arm_neon.h>
#endif

namespace bntt_jax {

#if defined(__AVX512F__)
inline constexpr int kVectorBytes = 64;
inline constexpr int kVectorRegisters = 32;
#elif defined(__AVX__)
inline constexpr int kVectorBytes = 32;
inline constexpr int kVectorRegisters = 16;
#elif defined(__aarch64__)
inline constexpr int kVectorBytes = 16;
inline constexpr int kVectorRegisters = 32;
#else
inline constexpr int kVectorBytes = 16;
inline constexpr int kVectorRegisters = 16;
#endif

// The instruction set whose vectors the kernels use, as bntt_jax.cpu.ffi.target() reports it.
#if defined(__AVX512F__)
#define BNTT_JAX_ISA "AVX-512"
#elif defined(__AVX2__)
#define BNTT_JAX_ISA "AVX2"
#elif defined(__AVX__)
#define BNTT_JAX_ISA "AVX"
#elif defined(__aarch64__)
#define BNTT_JAX_ISA "NEON"
#elif defined(__SSE4_2__)
#define BNTT_JAX_ISA "SSE4.2"
#else
#define BNTT_JAX_ISA "SSE2"
#endif

#if defined(__FMA__) || defined(__aarch64__)
inline constexpr bool kFusedMultiplyAdd = true;
#else
inline constexpr bool kFusedMultiplyAdd = false;  // a product needs a register of its own
#endif

template <typename F>
struct VecType;
template <>
struct VecType<float> {
  typedef float type __attribute__((vector_size(kVectorBytes)));
};
template <>
struct VecType<double> {
  typedef double type __attribute__((vector_size(kVectorBytes)));
};
template <typename F>
using Vec = typename VecType<F>::type;

template <typename F>
constexpr int64_t Lanes() {
  return kVectorBytes / sizeof(F);
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

// A vector of x in every lane. (Vec<F>{} + x is not the same: 0 + x is not an identity for
// x = -0, so the compiler adds, and on NEON it keeps the sum in a register of its own.)
template <typename F>
inline Vec<F> Splat(F x) {
  return x - Vec<F>{};  // x - 0 = x for every x, -0 included: a plain broadcast
}

// The sum of a vector's lanes: its halves added, until one lane is left (extracts and adds in
// registers; through memory, the 64-byte vector's halves made the masked input gradient 1.7x
// slower).
#if defined(__SSE2__)
inline float Sum128(__m128 q) {
  q = _mm_add_ps(q, _mm_movehl_ps(q, q));
  return _mm_cvtss_f32(_mm_add_ss(q, _mm_shuffle_ps(q, q, 1)));
}
inline double Sum128(__m128d q) { return _mm_cvtsd_f64(_mm_add_sd(q, _mm_unpackhi_pd(q, q))); }
#endif
#if defined(__AVX__)
inline float Sum256(__m256 h) {
  return Sum128(_mm_add_ps(_mm256_castps256_ps128(h), _mm256_extractf128_ps(h, 1)));
}
inline double Sum256(__m256d h) {
  return Sum128(_mm_add_pd(_mm256_castpd256_pd128(h), _mm256_extractf128_pd(h, 1)));
}
#endif

template <typename F>
inline F Sum(Vec<F> v) {
#if defined(__AVX512F__) && defined(__AVX512DQ__)
  if constexpr (std::is_same_v<F, float>) {
    // extracts both halves: GCC 12's _mm512_castps512_ps256 warns under -Wall (an undefined
    // vector inside it)
    const __m512 x = reinterpret_cast<__m512>(v);
    return Sum256(_mm256_add_ps(_mm512_extractf32x8_ps(x, 0), _mm512_extractf32x8_ps(x, 1)));
  } else {
    const __m512 x = reinterpret_cast<__m512>(v);
    return Sum256(_mm256_add_pd(_mm256_castps_pd(_mm512_extractf32x8_ps(x, 0)),
                                _mm256_castps_pd(_mm512_extractf32x8_ps(x, 1))));
  }
#elif defined(__AVX__) && !defined(__AVX512F__)
  if constexpr (std::is_same_v<F, float>) return Sum256(reinterpret_cast<__m256>(v));
  else return Sum256(reinterpret_cast<__m256d>(v));
#elif defined(__SSE2__) && !defined(__AVX__)
  if constexpr (std::is_same_v<F, float>) return Sum128(reinterpret_cast<__m128>(v));
  else return Sum128(reinterpret_cast<__m128d>(v));
#elif defined(__aarch64__)
  if constexpr (std::is_same_v<F, float>) return vaddvq_f32(reinterpret_cast<float32x4_t>(v));
  else return vaddvq_f64(reinterpret_cast<float64x2_t>(v));
#else
  F total = 0;
  for (int64_t l = 0; l < Lanes<F>(); ++l) total += v[l];
  return total;
#endif
}

// Register blocking, in vectors (each kernel's comment says what it holds in registers).
//
// The event-driven forward's output chunk and the per-pixel filter gradient's output-gradient
// chunk: one accumulator or gradient vector each, the rows read as memory operands (64 float32
// features on AVX-512 and AVX2, 32 with 16-byte vectors: SSE, whose products without FMA need a
// register each, and NEON, where 16 made GCC spill the per-pixel filter gradient's addresses).
inline constexpr int kChunkVectors = kVectorBytes == 64 ? 4 : 8;
// The 3x3 filter gradient's accumulators: 9 taps x kGradVectors vectors, plus the broadcast
// value (9 x 2 = 18 of 32 registers; 9 x 1 of 16).
inline constexpr int kGradVectors = kVectorRegisters >= 32 ? 2 : 1;
// The dense input gradient's block: kBlockPixels pixels x kBlockVectors vectors of channels
// accumulated, kBlockVectors weight vectors, and the broadcast output gradient: one register
// on x86 (and one for a product without FMA), one per pixel on NEON, whose FMA reads a lane of
// a register (6 x 4 + 4 + 1 = 29 of 32 zmm; 6 x 2 + 2 + 1 = 15 of 16 ymm; without FMA 6 x 2 +
// 2 + 1 + 1 = 16 of 16 xmm; NEON 5 x 4 + 4 + 5 = 29 of 32).
inline constexpr int kBlockVectors = kVectorRegisters >= 32 ? 4 : 2;
constexpr int BlockPixels() {
#if defined(__aarch64__)
  const int pixels = (kVectorRegisters - kBlockVectors) / (kBlockVectors + 1);
#else
  const int pixels =
      (kVectorRegisters - kBlockVectors - 1 - (kFusedMultiplyAdd ? 0 : 1)) / kBlockVectors;
#endif
  return pixels < 6 ? pixels : 6;
}
inline constexpr int kBlockPixels = BlockPixels();
// The input gradient on the support: one accumulator per pixel of a group sharing each weight
// load, plus the weight vector (and a product without FMA): 16 + 1 of 32 registers, 12 of 16.
inline constexpr int kPixelGroup = kVectorRegisters >= 32 ? 16 : 12;

static_assert(kBlockPixels * kBlockVectors + kBlockVectors + 1 <= kVectorRegisters);
static_assert(9 * kGradVectors + 1 <= kVectorRegisters);
static_assert(kPixelGroup + 2 <= kVectorRegisters);

}  // namespace bntt_jax
