// The input gradient of a 3x3 "same" convolution, dense (every output gradient value is
// visited): conv3x3's input gradient on CPU where bntt_jax.cpu.choice picks the compiled kernel
// for the map. Register-blocked for the target (vec.h).
#include <omp.h>

#include <algorithm>
#include <cstdint>
#include <vector>

#include "by_dtype.h"
#include "vec.h"
#include "xla/ffi/api/ffi.h"

namespace ffi = xla::ffi;

namespace {

// The input gradient of a 3x3 "same" convolution, dense, on all threads:
//   dx[n, i, j, c] = sum_{a, b} sum_d dy[n, i + 1 - a, j + 1 - b, d] * w[a, b, c, d]
// with the weights given transposed, wt[a, b, d, c] (channels contiguous, padded with zeros to
// `padded` channels, a whole number of vectors). Each image's output gradient is first copied
// into a zero-bordered buffer (no bounds checks). A register block of kBlockPixels consecutive
// pixels of the image (in row-major order, so a block may run on into the next row: narrow maps
// waste nothing at their rows' ends) x kBlockVectors vectors of channels is accumulated over the
// 9 taps and every feature d: per d, kBlockVectors weight vectors and kBlockPixels broadcast
// gradient values make their product's FMAs (vec.h: 6 x 4 with 32 vector registers, 6 x 2 with
// 16). Images are split between the OpenMP threads.
constexpr int64_t kPixels = bntt_jax::kBlockPixels;
using bntt_jax::kBlockVectors;
using bntt_jax::Lanes;
using bntt_jax::Load;
using bntt_jax::Store;
using bntt_jax::Vec;

template <typename F, int64_t V>
inline void InputGradBlock(const F* const* centre, const F* wt, F* out, int64_t pad_cols,
                           int64_t features, int64_t padded, int64_t c0, int64_t channels,
                           int64_t valid) {
  constexpr int64_t lanes = Lanes<F>();
  Vec<F> acc[kPixels][V];
  for (int64_t p = 0; p < kPixels; ++p)
    for (int64_t v = 0; v < V; ++v) acc[p][v] = Vec<F>{};
  for (int64_t a = 0; a < 3; ++a)
    for (int64_t b = 0; b < 3; ++b) {
      // pixel (i, j) reads dy pixel (i + 1 - a, j + 1 - b): its centre's (i + 1, j + 1) in the
      // bordered buffer, moved by (1 - a, 1 - b)
      const int64_t shift = ((1 - a) * pad_cols + 1 - b) * features;
      const F* src[kPixels];
      for (int64_t p = 0; p < kPixels; ++p) src[p] = centre[p] + shift;
      const F* w = wt + (a * 3 + b) * features * padded + c0;
      for (int64_t d = 0; d < features; ++d) {
        Vec<F> wv[V];
        for (int64_t v = 0; v < V; ++v) wv[v] = Load<F>(w + d * padded + v * lanes);
#pragma GCC unroll 6
        for (int64_t p = 0; p < kPixels; ++p) {
          const Vec<F> s = bntt_jax::Splat<F>(src[p][d]);
          for (int64_t v = 0; v < V; ++v) acc[p][v] += s * wv[v];
        }
      }
    }
  const int64_t len = std::min<int64_t>(V * lanes, channels - c0);
  for (int64_t p = 0; p < valid; ++p) {
    F* o = out + p * channels + c0;
    if (len == V * lanes) {
      for (int64_t v = 0; v < V; ++v) Store<F>(o + v * lanes, acc[p][v]);
    } else {
      F buffer[V * lanes];
      for (int64_t v = 0; v < V; ++v) Store<F>(buffer + v * lanes, acc[p][v]);
      std::copy(buffer, buffer + len, o);
    }
  }
}

template <typename F>
void InputGrad3x3(const F* dy, const F* wt, F* dx, int64_t images, int64_t height,
                  int64_t width, int64_t channels, int64_t features, int64_t padded) {
  constexpr int64_t lanes = Lanes<F>();
  const int64_t pixels = height * width;
  const int64_t pad_rows = height + 2, pad_cols = width + 2;
#pragma omp parallel
  {
    std::vector<F> pad(pad_rows * pad_cols * features, F(0));
#pragma omp for schedule(static)
    for (int64_t n = 0; n < images; ++n) {
      const F* g = dy + n * pixels * features;
      for (int64_t r = 0; r < height; ++r)
        std::copy(g + r * width * features, g + (r + 1) * width * features,
                  pad.data() + ((r + 1) * pad_cols + 1) * features);
      F* out = dx + n * pixels * channels;
      for (int64_t q0 = 0; q0 < pixels; q0 += kPixels) {
        const int64_t valid = std::min(kPixels, pixels - q0);
        const F* centre[kPixels];
        for (int64_t p = 0; p < kPixels; ++p) {
          const int64_t q = std::min(q0 + p, pixels - 1);  // past the end: a real pixel, unused
          centre[p] = pad.data() + ((q / width + 1) * pad_cols + q % width + 1) * features;
        }
        F* o = out + q0 * channels;
        // whole vectors up to the last channel (wt is padded further, to 64 bytes)
        const int64_t used = std::min(padded, (channels + lanes - 1) / lanes * lanes);
        int64_t c0 = 0;
        for (; c0 + kBlockVectors * lanes <= used; c0 += kBlockVectors * lanes)
          InputGradBlock<F, kBlockVectors>(centre, wt, o, pad_cols, features, padded, c0, channels, valid);
        for (; c0 < used; c0 += lanes)
          InputGradBlock<F, 1>(centre, wt, o, pad_cols, features, padded, c0, channels, valid);
      }
    }
  }
}

ffi::Error InputGradImpl(ffi::AnyBuffer dy, ffi::AnyBuffer wt, ffi::Result<ffi::AnyBuffer> dx) {
  auto gd = dy.dimensions();
  auto wd = wt.dimensions();
  auto xd = dx->dimensions();
  if (gd.size() != 4 || wd.size() != 4 || xd.size() != 4 || wd[0] != 3 || wd[1] != 3 ||
      wd[2] != gd[3] || xd[0] != gd[0] || xd[1] != gd[1] || xd[2] != gd[2] || wd[3] < xd[3] ||
      wd[3] % (bntt_jax::kVectorBytes / ffi::ByteWidth(dy.element_type())) != 0)
    return ffi::Error::InvalidArgument(
        "dense_input_grad: need dy [N, H, W, D], wt [3, 3, D, C'] with C' >= C a whole "
        "number of vectors, dx [N, H, W, C]");
  if (dy.element_type() != wt.element_type())
    return ffi::Error::InvalidArgument("dense_input_grad: dy and wt must share a dtype");
  return bntt_jax::ByDtype(dy.element_type(), "dense_input_grad", [&](auto zero) {
    using F = decltype(zero);
    InputGrad3x3<F>(dy.typed_data<F>(), wt.typed_data<F>(), dx->typed_data<F>(), gd[0], gd[1],
                    gd[2], xd[3], gd[3], wd[3]);
  });
}

}  // namespace

XLA_FFI_DEFINE_HANDLER_SYMBOL(DenseInputGrad, InputGradImpl,
                              ffi::Ffi::Bind()
                                  .Arg<ffi::AnyBuffer>()
                                  .Arg<ffi::AnyBuffer>()
                                  .Ret<ffi::AnyBuffer>());
