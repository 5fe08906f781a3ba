// The input gradient of a k x k "same" convolution (stride 1; k = 3, or k = 1 for a dense layer
// whose rows are given as the pixels of [N, 1, R, D] images), only where it is used: the input x is the spikes of a LIF layer, whose backward multiplies their
// gradient by the surrogate of BNTT Eq. 8, alpha * max(0, 1 - |u / threshold - 1| / width),
// zero wherever |u / threshold - 1| / width >= 1. So
//
//   dx[n, i, j, c] = sum_{a, b, d} dy[n, i + p - a, j + p - b, d] * w[a, b, c, d]
//                    where |u[n, i, j, c] / threshold - 1| / width < 1 (p = (k - 1) / 2),
//   dx[n, i, j, c] = 0 elsewhere,
//
// with u the LIF layer's pre-reset membrane, x's shape, and the support tested with the same
// floating-point operations as that backward (bntt_lif.cc), so that it is exactly the set where
// the surrogate is non-zero. The support is per element: ~30-45 % of a BNTT VGG9's neurons, but
// a group of 16 channels lies wholly outside it with probability ~0.3 % or less, so no vector
// of channels can be skipped. Each selected (pixel, channel) is one dot product of length
// k * k * D, vectorised over d. Loaded once per pixel, a channel's 9 * D weights come from L2
// (a VGG layer's weights do not fit L1) and made computing per element run at ~40 % of the
// dense kernel's rate; so a tile of kTile consecutive pixels is processed together, each
// channel's weights loaded once for all the tile's pixels that need it (about a third of
// them), up to kGroup at a time: 51-68 % of the dense rate per element on VGG9's layers.
//
// The weights come as wm[c, a, b', d] = w[a, k - 1 - b', c, d], so that row a of pixel (i, j)'s
// window is k * D contiguous values of the zero-bordered output gradient, from bordered pixel
// (i + 2p - a, j) on, against k * D contiguous weights of channel c. Images are split between
// the OpenMP threads; for k = 3 each copies its image's output gradient into a 64-byte aligned
// bordered buffer.
#include <omp.h>

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <type_traits>
#include <vector>

#include "by_dtype.h"
#include "lists.h"
#include "vec.h"
#include "xla/ffi/api/ffi.h"

namespace ffi = xla::ffi;

namespace {

using bntt_jax::Lanes;
using bntt_jax::Load;
using bntt_jax::Sum;
using bntt_jax::Vec;

// A tile's output-gradient windows, the rows it spans and one either side (32 pixels: 26 KB on
// VGG9's 32x32x64 maps, 37 KB on 16x16x128), stay in or near L1 while each channel's weights
// stream from L2; tiles of 8 and 16 pixels measured slower, 24 and 32 alike.
constexpr int kTile = 32;
// Pixels sharing each weight load, one accumulator each (vec.h: 16 with 32 vector registers, 12
// with 16).
constexpr int kGroup = bntt_jax::kPixelGroup;

// Channel c's dot products for G pixels: pixel g's window row a starts at src[g] - a * row_stride
// (rows x len values, len contiguous per row), the channel's weights at w (rows x len
// contiguous); each weight load serves G FMAs.
template <typename F, int G>
inline void PixelGroup(const F* const* src, int64_t row_stride, int64_t rows, int64_t len,
                       const F* w, F* const* out, int64_t c) {
  constexpr int64_t lanes = Lanes<F>();
  Vec<F> acc[G];
  for (int g = 0; g < G; ++g) acc[g] = Vec<F>{};
  for (int64_t a = 0; a < rows; ++a)
    for (int64_t e = 0; e < len; e += lanes) {
      const Vec<F> wv = Load<F>(w + a * len + e);
      for (int g = 0; g < G; ++g) acc[g] += Load<F>(src[g] - a * row_stride + e) * wv;
    }
  for (int g = 0; g < G; ++g) out[g][c] = Sum<F>(acc[g]);
}

// PixelGroup for count <= G pixels.
template <typename F, int G = kGroup>
inline void PixelGroups(int count, const F* const* src, int64_t row_stride, int64_t rows,
                        int64_t len, const F* w, F* const* out, int64_t c) {
  if constexpr (G > 0) {
    if (count == G)
      PixelGroup<F, G>(src, row_stride, rows, len, w, out, c);
    else
      PixelGroups<F, G - 1>(count, src, row_stride, rows, len, w, out, c);
  }
}

template <typename F>
void InputGradOnSupport(const F* dy, const F* wm, const F* u, F* dx, int64_t images,
                        int64_t height, int64_t width, int64_t channels, int64_t features,
                        int64_t k, F threshold, F surrogate_width) {
  const int64_t pixels = height * width, p = (k - 1) / 2;
  const int64_t pad_rows = height + 2 * p, pad_cols = width + 2 * p;
  const int64_t len = k * features, row_stride = pad_cols * features;
  constexpr int64_t lanes = Lanes<F>();
#pragma omp parallel
  {
    std::vector<F> storage(p > 0 ? pad_rows * pad_cols * features + lanes : 0, F(0));
    // 64-byte aligned: the dot products' loads then never split a cache line
    F* pad = storage.data() + (lanes - reinterpret_cast<uintptr_t>(storage.data()) / sizeof(F) %
                                           lanes) % lanes;
    std::vector<int32_t> list(channels + 16);
    std::vector<uint32_t> pixels_of(channels);  // bit s: the tile's pixel s needs channel c
#pragma omp for schedule(static)
    for (int64_t n = 0; n < images; ++n) {
      const F* g = dy + n * pixels * features;
      if (p > 0)
        for (int64_t r = 0; r < height; ++r)
          std::copy(g + r * width * features, g + (r + 1) * width * features,
                    pad + ((r + p) * pad_cols + p) * features);
      const F* bordered = p > 0 ? pad : g;  // k = 1: no border, the rows as they are
      F* out = dx + n * pixels * channels;
      std::fill(out, out + pixels * channels, F(0));
      for (int64_t q0 = 0; q0 < pixels; q0 += kTile) {
        const int64_t tile = std::min<int64_t>(kTile, pixels - q0);
        const F* tile_src[kTile];
        F* tile_out[kTile];
        std::fill(pixels_of.begin(), pixels_of.end(), 0u);
        for (int64_t s = 0; s < tile; ++s) {
          const int64_t q = q0 + s, i = q / width, j = q % width;
          tile_src[s] = bordered + ((i + 2 * p) * pad_cols + j) * features;
          tile_out[s] = out + q * channels;
          const int64_t count = bntt_jax::ListSupport<F>(u + (n * pixels + q) * channels, channels,
                                                         threshold, surrogate_width, list.data());
          for (int64_t e = 0; e < count; ++e) pixels_of[list[e]] |= 1u << s;
        }
        for (int64_t c = 0; c < channels; ++c) {
          const F* src[kTile];
          F* o[kTile];
          int count = 0;
          for (uint32_t bits = pixels_of[c]; bits; bits &= bits - 1) {
            const int s = __builtin_ctz(bits);
            src[count] = tile_src[s], o[count] = tile_out[s], ++count;
          }
          const F* w = wm + c * k * len;
          int done = 0;
          for (; count - done > kGroup; done += kGroup)
            PixelGroup<F, kGroup>(src + done, row_stride, k, len, w, o + done, c);
          PixelGroups<F>(count - done, src + done, row_stride, k, len, w, o + done, c);
        }
      }
    }
  }
}

ffi::Error MaskedInputGradImpl(ffi::AnyBuffer dy, ffi::AnyBuffer wm, ffi::AnyBuffer u,
                               ffi::Result<ffi::AnyBuffer> dx, double threshold, double width) {
  auto gd = dy.dimensions();
  auto wd = wm.dimensions();
  auto ud = u.dimensions();
  auto xd = dx->dimensions();
  const int64_t lanes = bntt_jax::kVectorBytes / ffi::ByteWidth(dy.element_type());
  if (gd.size() != 4 || wd.size() != 4 || ud.size() != 4 || xd.size() != 4 ||
      (wd[1] != 3 && wd[1] != 1) || wd[2] != wd[1] || wd[3] != gd[3] || gd[3] % lanes != 0 ||
      wd[0] != xd[3] || gd[0] != xd[0] || gd[1] != xd[1] || gd[2] != xd[2])
    return ffi::Error::InvalidArgument(
        "conv_input_grad_masked: need dy [N, H, W, D] with D a whole number of vectors, "
        "wm [C, k, k, D] with k = 3 or 1, u and dx [N, H, W, C]");
  for (int64_t a = 0; a < 4; ++a)
    if (ud[a] != xd[a])
      return ffi::Error::InvalidArgument("conv_input_grad_masked: u must have dx's shape");
  if (dy.element_type() != wm.element_type() || dy.element_type() != u.element_type())
    return ffi::Error::InvalidArgument("conv_input_grad_masked: dy, wm and u must share a dtype");
  return bntt_jax::ByDtype(dy.element_type(), "conv_input_grad_masked", [&](auto zero) {
    using F = decltype(zero);
    InputGradOnSupport<F>(dy.typed_data<F>(), wm.typed_data<F>(), u.typed_data<F>(),
                          dx->typed_data<F>(), gd[0], gd[1], gd[2], xd[3], gd[3], wd[1],
                          static_cast<F>(threshold), static_cast<F>(width));
  });
}

}  // namespace

XLA_FFI_DEFINE_HANDLER_SYMBOL(MaskedInputGrad, MaskedInputGradImpl,
                              ffi::Ffi::Bind()
                                  .Arg<ffi::AnyBuffer>()
                                  .Arg<ffi::AnyBuffer>()
                                  .Arg<ffi::AnyBuffer>()
                                  .Ret<ffi::AnyBuffer>()
                                  .Attr<double>("threshold")
                                  .Attr<double>("width"));
