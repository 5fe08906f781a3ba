// Shared by the compiled sources: listing the positions of a row where a test holds (the
// non-zero inputs of an image's pixel; the channels of a pixel inside the surrogate's support),
// in three forms chosen by the target:
//
//   * AVX-512, float32: 16 lanes compared at once, the mask compressing the lanes' values and
//     indices in registers (vcompress), whole vectors stored;
//   * AVX2, float32: 8 lanes compared at once, the 8-bit movemask picking a permutation from a
//     256-entry table that moves the selected lanes to the front (vpermps), whole vectors stored;
//   * anything else (float64, SSE, NEON): one element at a time, without a branch: the entry is
//     written at the end of the list and the count advanced by the test's 0 or 1.
//
// Storing whole vectors writes up to 15 entries past the last one listed: the lists need room
// for n + 16 entries. Every form lists the same positions in the same order.
#pragma once

#include <cmath>
#include <cstdint>
#include <type_traits>

#include "lif.h"

#if defined(__AVX512F__) || defined(__AVX2__)
#include <immintrin.h>
#endif

namespace bntt_jax {

#if defined(__AVX2__) && !defined(__AVX512F__)
// kPermutations[mask]: the indices of mask's set bits in increasing order, then zeros (8 bytes).
struct Permutations {
  uint8_t lanes[256][8];
  constexpr Permutations() : lanes() {
    for (int mask = 0; mask < 256; ++mask) {
      int count = 0;
      for (int lane = 0; lane < 8; ++lane)
        if (mask & (1 << lane)) lanes[mask][count++] = static_cast<uint8_t>(lane);
    }
  }
};
static constexpr Permutations kPermutations{};  // one copy per source: PC-relative loads

// The permutation that moves mask's lanes to the front, as 8 32-bit lane indices.
inline __m256i Permutation(int mask) {
  return _mm256_cvtepu8_epi32(_mm_loadl_epi64(
      reinterpret_cast<const __m128i*>(kPermutations.lanes[mask])));
}
#endif

// Lists the indices i of x[0..n) with x[i] != 0 (NaN included) and their values into index and
// value (room for n + 16 entries each); returns their number.
template <typename F>
inline int64_t ListNonZeros(const F* x, int64_t n, int32_t* index, F* value) {
  int64_t count = 0, i = 0;
  if constexpr (std::is_same_v<F, float>) {
#if defined(__AVX512F__)
    // Compressing in registers, then storing: vpcompress with a memory operand is microcoded on
    // Zen 4 and made the listing ~6x slower.
    __m512i lanes = _mm512_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15);
    for (; i + 16 <= n; i += 16) {
      const __m512 v = _mm512_loadu_ps(x + i);
      const __mmask16 mask = _mm512_cmp_ps_mask(v, _mm512_setzero_ps(), _CMP_NEQ_UQ);
      if (mask) {
        _mm512_storeu_ps(value + count, _mm512_maskz_compress_ps(mask, v));
        _mm512_storeu_si512(index + count, _mm512_maskz_compress_epi32(mask, lanes));
        count += __builtin_popcount(mask);
      }
      lanes = _mm512_add_epi32(lanes, _mm512_set1_epi32(16));
    }
#elif defined(__AVX2__)
    for (; i + 8 <= n; i += 8) {
      const __m256 v = _mm256_loadu_ps(x + i);
      const int mask = _mm256_movemask_ps(_mm256_cmp_ps(v, _mm256_setzero_ps(), _CMP_NEQ_UQ));
      if (mask) {
        const __m256i permutation = Permutation(mask);
        _mm256_storeu_ps(value + count, _mm256_permutevar8x32_ps(v, permutation));
        _mm256_storeu_si256(reinterpret_cast<__m256i*>(index + count),
                            _mm256_add_epi32(permutation, _mm256_set1_epi32(static_cast<int>(i))));
        count += __builtin_popcount(mask);
      }
    }
#endif
  }
  for (; i < n; ++i) {
    index[count] = static_cast<int32_t>(i);
    value[count] = x[i];
    count += x[i] != F(0);
  }
  return count;
}

// Lists the indices i of u[0..n) in the surrogate's support (InSupport) into index (room for
// n + 16 entries); returns their number. The vector forms compute each lane with the same
// exactly rounded IEEE operations as InSupport.
template <typename F>
inline int64_t ListSupport(const F* u, int64_t n, F threshold, F width, int32_t* index) {
  int64_t count = 0, i = 0;
  if constexpr (std::is_same_v<F, float>) {
#if defined(__AVX512F__)
    const __m512 th = _mm512_set1_ps(threshold), w = _mm512_set1_ps(width);
    const __m512 one = _mm512_set1_ps(1.0f);
    __m512i lanes = _mm512_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15);
    for (; i + 16 <= n; i += 16) {
      const __m512 v = _mm512_sub_ps(_mm512_div_ps(_mm512_loadu_ps(u + i), th), one);
      const __m512 distance = _mm512_div_ps(_mm512_abs_ps(v), w);
      const __mmask16 inside = _mm512_cmp_ps_mask(distance, one, _CMP_LT_OQ);
      _mm512_storeu_si512(index + count, _mm512_maskz_compress_epi32(inside, lanes));
      count += __builtin_popcount(inside);
      lanes = _mm512_add_epi32(lanes, _mm512_set1_epi32(16));
    }
#elif defined(__AVX2__)
    const __m256 th = _mm256_set1_ps(threshold), w = _mm256_set1_ps(width);
    const __m256 one = _mm256_set1_ps(1.0f);
    const __m256 magnitude = _mm256_castsi256_ps(_mm256_set1_epi32(0x7fffffff));
    for (; i + 8 <= n; i += 8) {
      const __m256 v = _mm256_sub_ps(_mm256_div_ps(_mm256_loadu_ps(u + i), th), one);
      const __m256 distance = _mm256_div_ps(_mm256_and_ps(v, magnitude), w);
      const int inside = _mm256_movemask_ps(_mm256_cmp_ps(distance, one, _CMP_LT_OQ));
      _mm256_storeu_si256(reinterpret_cast<__m256i*>(index + count),
                          _mm256_add_epi32(Permutation(inside),
                                           _mm256_set1_epi32(static_cast<int>(i))));
      count += __builtin_popcount(inside);
    }
#endif
  }
  for (; i < n; ++i) {
    index[count] = static_cast<int32_t>(i);
    count += InSupport(u[i], threshold, width);
  }
  return count;
}

}  // namespace bntt_jax
