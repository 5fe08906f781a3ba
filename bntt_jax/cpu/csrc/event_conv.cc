// Event-driven k x k "same" convolution (stride 1, zero padding (k-1)/2) for sparse inputs
// such as binary spikes or their 2x2 averages, on XLA:CPU.
//
//   y[n, i, j, :] = sum_{a, b} sum_{c : x[n, i+a-p, j+b-p, c] != 0} x[...] * w[a, b, c, :]
//   dw[a, b, c, :] = sum_{n, i, j} x[n, i+a-p, j+b-p, c] * dy[n, i, j, :]
//
// Only the non-zero inputs are visited: each image's non-zeros are first listed per pixel
// (channel index and value), then every output pixel sums the weight rows of the non-zeros
// in its k x k window, tap by tap (ImageByTaps). A dense layer is the case k = 1, H = W = 1.
// Work is split over images between the OpenMP threads; the filter gradient is summed per
// thread in chunks of pixels (float) into a double total, then over threads. A 3x3 filter
// gradient turns the loops around (FilterGrad3x3, its own target): per input channel, its
// gradient rows summed in registers. The evaluation layer ForwardLifEval fuses this forward
// with the per-step affine map and the LIF neurons (bntt_jax.cpu.fused).
#include <omp.h>

#include <algorithm>
#include <cstdint>
#include <cstring>
#include <string>
#include <type_traits>
#include <vector>

#include "by_dtype.h"
#include "lif.h"
#include "lists.h"
#include "vec.h"
#include "xla/ffi/api/ffi.h"

namespace ffi = xla::ffi;

namespace {

template <typename F>
struct NonZeros {
  std::vector<int32_t> start;  // [H*W + 1] offsets into channel/value
  std::vector<int32_t> channel;
  std::vector<F> value;

  void Build(const F* image, int64_t pixels, int64_t channels) {
    start.resize(pixels + 1);
    channel.resize(pixels * channels + 16);  // + 16: whole-vector stores past the last entry
    value.resize(pixels * channels + 16);
    int32_t count = 0;
    for (int64_t p = 0; p < pixels; ++p) {
      start[p] = count;
      count += static_cast<int32_t>(bntt_jax::ListNonZeros<F>(
          image + p * channels, channels, channel.data() + count, value.data() + count));
    }
    start[pixels] = count;
  }
};

// Features are processed in chunks of kChunkVectors vectors (vec.h: 64 float32 features on
// AVX-512 and AVX2, 32 with 16-byte vectors on x86), so that a chunk's accumulators (forward) or
// output-gradient values (filter gradient) stay in vector registers across all non-zeros of a
// window.
using bntt_jax::kChunkVectors;

using bntt_jax::Lanes;
using bntt_jax::Load;
using bntt_jax::Store;
using bntt_jax::Vec;

// Calls body(tap, begin, end) for every tap (a, b) of output pixel (i, j)'s k x k window
// that lies inside the image: tap = a * k + b, and [begin, end) the input pixel's non-zeros.
template <typename F, typename Body>
inline void ForEachTap(const NonZeros<F>& nz, int64_t i, int64_t j, int64_t height,
                       int64_t width, int64_t k, Body body) {
  const int64_t pad = (k - 1) / 2;
  for (int64_t di = 0; di < k; ++di) {
    const int64_t ii = i + di - pad;
    if (ii < 0 || ii >= height) continue;
    for (int64_t dj = 0; dj < k; ++dj) {
      const int64_t jj = j + dj - pad;
      if (jj < 0 || jj >= width) continue;
      const int64_t p = ii * width + jj;
      body(di * k + dj, nz.start[p], nz.start[p + 1]);
    }
  }
}

// One image's forward, tap by tap: out[i, j, :] += sum over the non-zeros of input pixel
// (i + a - pad, j + b - pad) of v * w[a, b, c, :], for each tap (a, b) in turn and each chunk
// of features. Summing each pixel's whole window at once reads rows of all k*k taps'
// weights, k*k*C*D floats (147 KB for 64 -> 64 channels), which live in L2; taken tap by tap
// the weights in use are one tap's C rows of the chunk (16 KB), in L1, and the output chunk's
// accumulators are loaded and stored once per tap instead. A tail of fewer than a chunk's
// features uses a scalar loop.
template <typename F>
void ImageByTaps(const NonZeros<F>& nz, const F* w, F* out, int64_t height, int64_t width,
                 int64_t channels, int64_t features, int64_t k) {
  constexpr int64_t chunk = kChunkVectors * Lanes<F>();
  const int64_t pad = (k - 1) / 2;
  std::fill(out, out + height * width * features, F(0));
  for (int64_t d0 = 0; d0 < features; d0 += chunk) {
    const int64_t len = std::min(chunk, features - d0);
    for (int64_t a = 0; a < k; ++a)
      for (int64_t b = 0; b < k; ++b) {
        const F* tap = w + (a * k + b) * channels * features + d0;
        // the output pixels whose input pixel (i + a - pad, j + b - pad) is inside the image
        const int64_t i0 = std::max<int64_t>(0, pad - a), i1 = std::min(height, height + pad - a);
        const int64_t j0 = std::max<int64_t>(0, pad - b), j1 = std::min(width, width + pad - b);
        for (int64_t i = i0; i < i1; ++i) {
          // start[j - j0]: where input pixel (i + a - pad, j + b - pad)'s non-zeros begin
          const int32_t* start = nz.start.data() + (i + a - pad) * width + (j0 + b - pad);
          for (int64_t j = j0; j < j1; ++j) {
            const int32_t begin = start[j - j0], end = start[j - j0 + 1];
            F* o = out + (i * width + j) * features + d0;
            if (len != chunk) {
              for (int32_t e = begin; e < end; ++e) {
                const F v = nz.value[e];
                const F* row = tap + static_cast<int64_t>(nz.channel[e]) * features;
                for (int64_t d = 0; d < len; ++d) o[d] += v * row[d];
              }
              continue;
            }
            if (begin == end) continue;
            Vec<F> acc[kChunkVectors];
#pragma GCC unroll 16
            for (int q = 0; q < kChunkVectors; ++q) acc[q] = Load<F>(o + q * Lanes<F>());
            for (int32_t e = begin; e < end; ++e) {
              const F v = nz.value[e];
              const F* row = tap + static_cast<int64_t>(nz.channel[e]) * features;
#pragma GCC unroll 16
              for (int q = 0; q < kChunkVectors; ++q) acc[q] += v * Load<F>(row + q * Lanes<F>());
            }
#pragma GCC unroll 16
            for (int q = 0; q < kChunkVectors; ++q) Store<F>(o + q * Lanes<F>(), acc[q]);
          }
        }
      }
  }
}

template <typename F>
void Forward(const F* x, const F* w, F* y, int64_t images, int64_t height, int64_t width,
             int64_t channels, int64_t features, int64_t k) {
  const int64_t pixels = height * width;
#pragma omp parallel
  {
    NonZeros<F> nz;
#pragma omp for schedule(static)
    for (int64_t n = 0; n < images; ++n) {
      nz.Build(x + n * pixels * channels, pixels, channels);
      ImageByTaps<F>(nz, w, y + n * pixels * features, height, width, channels, features, k);
    }
  }
}

// One image's contribution to the filter gradient, output pixel by output pixel: every
// non-zero in a pixel's window adds v * dy[pixel] into the partial gradient's row of its tap
// and channel (dy held in registers, the partial gradient loaded and stored).
template <typename F>
void AddImageByPixels(const NonZeros<F>& nz, const F* dy, F* part, int64_t height,
                      int64_t width, int64_t channels, int64_t features, int64_t k) {
  constexpr int64_t width_v = kChunkVectors * Lanes<F>();
  for (int64_t i = 0; i < height; ++i)
    for (int64_t j = 0; j < width; ++j) {
      const F* g_pixel = dy + (i * width + j) * features;
      for (int64_t d0 = 0; d0 < features; d0 += width_v) {
        const int64_t len = std::min(width_v, features - d0);
        Vec<F> g[kChunkVectors] = {};
        if (len == width_v)
#pragma GCC unroll 16
          for (int64_t q = 0; q < kChunkVectors; ++q) g[q] = Load<F>(g_pixel + d0 + q * Lanes<F>());
        ForEachTap(nz, i, j, height, width, k, [&](int64_t tap_index, int32_t begin, int32_t end) {
          F* tap = part + tap_index * channels * features + d0;
          if (len == width_v) {
            for (int32_t e = begin; e < end; ++e) {
              const F v = nz.value[e];
              F* row = tap + static_cast<int64_t>(nz.channel[e]) * features;
#pragma GCC unroll 16
              for (int64_t q = 0; q < kChunkVectors; ++q) {
                F* r = row + q * Lanes<F>();
                Store<F>(r, Load<F>(r) + v * g[q]);
              }
            }
            return;
          }
          for (int32_t e = begin; e < end; ++e) {
            const F v = nz.value[e];
            F* row = tap + static_cast<int64_t>(nz.channel[e]) * features;
            for (int64_t d = 0; d < len; ++d) row[d] += v * g_pixel[d0 + d];
          }
        });
      }
    }
}

// Runs add_image(state, n, part) for every image n, split between the OpenMP threads, each
// thread with its own state = make_state() and float partial sums part[size]. A thread
// flushes its partial sums into its double totals once the work since the last flush is
// comparable to the flush itself (at least `flush` pixels); dw is the totals summed over the
// threads.
template <typename F, typename MakeState, typename AddImage>
void SumOverImages(F* dw, int64_t images, int64_t pixels, int64_t size, int64_t flush,
                   MakeState make_state, AddImage add_image) {
  std::vector<std::vector<double>> totals(omp_get_max_threads());
#pragma omp parallel
  {
    auto state = make_state();
    std::vector<F> part(size, F(0));
    std::vector<double>& total = totals[omp_get_thread_num()];
    total.assign(size, 0.0);
    int64_t pending = 0;
#pragma omp for schedule(static)
    for (int64_t n = 0; n < images; ++n) {
      add_image(state, n, part.data());
      pending += pixels;
      if (pending >= flush) {
        for (int64_t q = 0; q < size; ++q) total[q] += part[q];
        std::fill(part.begin(), part.end(), F(0));
        pending = 0;
      }
    }
    for (int64_t q = 0; q < size; ++q) total[q] += part[q];
  }
  for (int64_t q = 0; q < size; ++q) {
    double s = 0.0;
    for (const auto& t : totals)
      if (!t.empty()) s += t[q];
    dw[q] = static_cast<F>(s);
  }
}

template <typename F>
void FilterGrad(const F* x, const F* dy, F* dw, int64_t images, int64_t height,
                int64_t width, int64_t channels, int64_t features, int64_t k, int64_t chunk) {
  const int64_t pixels = height * width;
  SumOverImages<F>(
      dw, images, pixels, k * k * channels * features,
      std::max(chunk * pixels, 8 * k * k * channels), [] { return NonZeros<F>(); },
      [&](NonZeros<F>& nz, int64_t n, F* part) {
        nz.Build(x + n * pixels * channels, pixels, channels);
        AddImageByPixels<F>(nz, dy + n * pixels * features, part, height, width, channels,
                            features, k);
      });
}

// The filter gradient of a 3x3 convolution with its accumulators in registers.
//
// dw[a, b, c, :] = sum_n sum_{q : x[n, q, c] != 0} x[n, q, c] * dy[n, q - (a, b) + 1, :]
//
// FilterGrad above adds v * dy[p] into the partial gradient's rows for every non-zero: a load
// and a store of the partial gradient per vector of features, and that partial gradient
// (9*C*D floats) lives in L2, not L1. Here the loops are turned around so that the partial
// gradient's rows stay in registers while the non-zeros stream past:
//   * each image's non-zeros are listed per channel, in pixel order, with where each row of
//     the image starts (ChannelLists);
//   * the image's output rows are taken in strips, as many rows as keep the strip's tile in
//     L1; for each strip and each chunk of kGradVectors vectors of features, the strip's
//     output gradient is copied into that zero-bordered tile, so no tap needs a bounds check;
//   * for each input channel, the 9 taps x kGradVectors accumulators sum v * tile[...] over
//     the channel's non-zeros in the input rows the strip reads (its rows and one either
//     side), a vector load and an FMA per tap and vector, and are added to the partial
//     gradient once per channel.
// An image too sparse for the per-channel additions to pay takes FilterGrad's loop instead.
// The partial sums are flushed into double totals per thread (SumOverImages).
template <typename F>
struct ChannelLists {
  std::vector<int32_t> start;  // [C * (H + 1)]: channel c's first entry at row >= r
  std::vector<int32_t> pixel;  // each entry's pixel (r, s) as r * (W + 2) + s
  std::vector<F> value;
  std::vector<int32_t> count;

  // The lists of an image whose non-zeros nz lists per pixel: O(non-zeros + C * H).
  void Build(const NonZeros<F>& nz, int64_t height, int64_t width, int64_t channels) {
    const int32_t total = nz.start[height * width];
    count.assign(channels, 0);
    for (int32_t e = 0; e < total; ++e) ++count[nz.channel[e]];
    start.resize(channels * (height + 1));
    std::vector<int32_t> fill(channels);
    int32_t offset = 0;
    for (int64_t c = 0; c < channels; ++c) {
      fill[c] = offset;
      offset += count[c];
    }
    pixel.resize(total);
    value.resize(total);
    for (int64_t r = 0; r < height; ++r) {
      for (int64_t c = 0; c < channels; ++c) start[c * (height + 1) + r] = fill[c];
      for (int64_t s = 0; s < width; ++s) {
        const int64_t p = r * width + s;
        for (int32_t e = nz.start[p]; e < nz.start[p + 1]; ++e) {
          const int32_t c = nz.channel[e];
          pixel[fill[c]] = static_cast<int32_t>(r * (width + 2) + s);
          value[fill[c]++] = nz.value[e];
        }
      }
    }
    for (int64_t c = 0; c < channels; ++c) start[c * (height + 1) + height] = fill[c];
  }
};

// vec.h: 9 taps x kGradVectors vectors of accumulators (2 with 32 vector registers, 1 with 16).
using bntt_jax::kGradVectors;
// The tile is kept within this many bytes (L1), which sets the strip's rows.
constexpr int64_t kTileBytes = 64 * 1024;
// Below this many non-zeros per channel and strip (over a group of images, below), the
// per-channel addition of the accumulators costs more than it saves: such images take
// FilterGrad's loop.
constexpr double kMinPerChannelStrip = 6.0;

// Maps whose whole image is one strip are taken kGroupPixels pixels of images at a time (2
// images of 16x16, 8 of 8x8, 32 of 4x4), each with its tile: each channel's accumulators then
// sum over the group's images before the one addition to the partial gradient, which for 256
// or 512 channels is larger than L2 (9 * 512 * 512 floats: 9.4 MB). N = 800, 26 % inputs:
// 8x8 256 -> 256 0.220 -> 0.150 s, 16x16 128 -> 128 0.172 -> 0.147 s, 4x4 512 -> 512 0.266 ->
// 0.227 s (groups of 256 pixels: 0.189, 0.168, 0.246 s; of 1024: 0.155, 0.157, 0.243 s).
constexpr int64_t kGroupPixels = 512;
constexpr int64_t kMaxGroup = 32;

template <typename F>
void FilterGrad3x3(const F* x, const F* dy, F* dw, int64_t images, int64_t height,
                   int64_t width, int64_t channels, int64_t features, int64_t chunk) {
  constexpr int64_t lanes = Lanes<F>();
  constexpr int64_t span = kGradVectors * lanes;  // features per chunk
  const int64_t pixels = height * width;
  const int64_t size = 9 * channels * features;
  // the tile: output rows i0 - 2 ... i0 + strip + 1, columns -1 ... W, zero outside the
  // strip and the image: tile[(p_row - i0 + 2) * cols + p_col + 1][span]
  const int64_t cols = width + 2;
  const int64_t row = cols * span;  // one tile row
  const int64_t fits = kTileBytes / (cols * span * static_cast<int64_t>(sizeof(F))) - 4;
  const int64_t strip = std::min(height, std::max<int64_t>(2, fits));
  const int64_t strips = (height + strip - 1) / strip;
  const int64_t rows = strip + 4;
  const int64_t group =
      strips == 1 ? std::clamp<int64_t>(kGroupPixels / pixels, 1, kMaxGroup) : int64_t{1};
  const int64_t groups = (images + group - 1) / group;
  struct State {
    std::vector<NonZeros<F>> nz;
    std::vector<ChannelLists<F>> lists;
    std::vector<std::vector<F>> tile;
  };
  SumOverImages<F>(
      dw, groups, group * pixels, size, std::max(chunk * pixels, 8 * 9 * channels),
      [&] {
        return State{std::vector<NonZeros<F>>(group), std::vector<ChannelLists<F>>(group),
                     std::vector<std::vector<F>>(group, std::vector<F>(rows * cols * span))};
      },
      [&](State& state, int64_t k, F* part) {
        const int64_t n0 = k * group, members = std::min(group, images - n0);
        int64_t total = 0;
        for (int64_t m = 0; m < members; ++m) {
          state.nz[m].Build(x + (n0 + m) * pixels * channels, pixels, channels);
          total += state.nz[m].start[pixels];
        }
        if (total < kMinPerChannelStrip * channels * strips) {
          for (int64_t m = 0; m < members; ++m)
            AddImageByPixels<F>(state.nz[m], dy + (n0 + m) * pixels * features, part, height,
                                width, channels, features, 3);
          return;
        }
        for (int64_t m = 0; m < members; ++m)
          state.lists[m].Build(state.nz[m], height, width, channels);
        for (int64_t i0 = 0; i0 < height; i0 += strip) {
          const int64_t i1 = std::min(height, i0 + strip);
          const int64_t q0 = std::max<int64_t>(0, i0 - 1), q1 = std::min(height, i1 + 1);
          for (int64_t d0 = 0; d0 < features; d0 += span) {
            const int64_t len = std::min(span, features - d0);
            const F* origin[kMaxGroup];
            for (int64_t m = 0; m < members; ++m) {
              const F* g = dy + (n0 + m) * pixels * features;
              std::vector<F>& tile = state.tile[m];
              std::fill(tile.begin(), tile.end(), F(0));
              for (int64_t r = i0; r < i1; ++r)
                for (int64_t s = 0; s < width; ++s)
                  std::copy(g + (r * width + s) * features + d0,
                            g + (r * width + s) * features + d0 + len,
                            tile.data() + ((r - i0 + 2) * cols + s + 1) * span);
              // entry (qi, qj) at qi * cols + qj; tap (a, b) reads output pixel
              // (qi + 1 - a, qj + 1 - b): tile row qi - i0 + 3 - a, column qj + 2 - b
              origin[m] = tile.data() + ((3 - i0) * cols + 2) * span;
            }
            for (int64_t c = 0; c < channels; ++c) {
              Vec<F> acc[9][kGradVectors];
              for (int64_t tap = 0; tap < 9; ++tap)
                for (int64_t q = 0; q < kGradVectors; ++q) acc[tap][q] = Vec<F>{};
              bool any = false;
              for (int64_t m = 0; m < members; ++m) {
                const ChannelLists<F>& lists = state.lists[m];
                const int32_t begin = lists.start[c * (height + 1) + q0];
                const int32_t end = lists.start[c * (height + 1) + q1];
                any |= begin != end;
                const F* values = lists.value.data();
                const int32_t* pixel = lists.pixel.data();
                const F* tile = origin[m];
                for (int32_t e = begin; e < end; ++e) {
                  const Vec<F> v = bntt_jax::Splat<F>(values[e]);
                  // tap (a, b) reads the tile at base - a * row - b * span: one pointer per
                  // tap row, the taps of a row at constant offsets from it
                  const F* rows[3];
                  rows[0] = tile + static_cast<int64_t>(pixel[e]) * span;
                  rows[1] = rows[0] - row;
                  rows[2] = rows[1] - row;
#pragma GCC unroll 3
                  for (int64_t a = 0; a < 3; ++a)
#pragma GCC unroll 3
                    for (int64_t b = 0; b < 3; ++b)
#pragma GCC unroll 4
                      for (int64_t q = 0; q < kGradVectors; ++q)
                        acc[a * 3 + b][q] += v * Load<F>(rows[a] - b * span + q * lanes);
                }
              }
              if (!any) continue;
              for (int64_t tap = 0; tap < 9; ++tap) {
                F* out = part + (tap * channels + c) * features + d0;
                if (len == span) {
                  for (int64_t q = 0; q < kGradVectors; ++q)
                    Store<F>(out + q * lanes, Load<F>(out + q * lanes) + acc[tap][q]);
                } else {
                  F buffer[span];
                  for (int64_t q = 0; q < kGradVectors; ++q)
                    Store<F>(buffer + q * lanes, acc[tap][q]);
                  for (int64_t d = 0; d < len; ++d) out[d] += buffer[d];
                }
              }
            }
          }
        }
      });
}

// Evaluation-mode layer fused end to end (BNTT paper Eq. 4, 8, 9 with running statistics):
// for the layer-major input x [T*B, H, W, C] (image n = t*B + b) and per-step mean_t,
// scale_t = gamma_t / sqrt(var_t + eps) [T, D]:
//   y = conv(x, w);  u_t = leak * m_{t-1} + (y - mean_t) * scale_t;
//   o_t = 1[u_t > threshold];  m_t = u_t - threshold * o_t
// writing only the spikes o [T*B, H, W, D] and their count per (t, b). Samples b are split
// between the threads; each walks its samples' steps in order with the membrane in a buffer.
template <typename F>
void ForwardLifEval(const F* x, const F* w, const F* mean, const F* scale, F* spikes,
                    int32_t* counts, int64_t steps, int64_t batch, int64_t height,
                    int64_t width, int64_t channels, int64_t features, int64_t k, F leak,
                    F threshold) {
  const int64_t pixels = height * width;
#pragma omp parallel
  {
    NonZeros<F> nz;
    std::vector<F> membrane(pixels * features), y(pixels * features);
#pragma omp for schedule(static)
    for (int64_t b = 0; b < batch; ++b) {
      std::fill(membrane.begin(), membrane.end(), F(0));
      for (int64_t t = 0; t < steps; ++t) {
        const int64_t n = t * batch + b;
        nz.Build(x + n * pixels * channels, pixels, channels);
        const F* mu = mean + t * features;
        const F* sc = scale + t * features;
        ImageByTaps<F>(nz, w, y.data(), height, width, channels, features, k);
        int64_t fired = 0;
        for (int64_t p = 0; p < pixels; ++p) {
          F* m = membrane.data() + p * features;
          F* o = spikes + (n * pixels + p) * features;
          const F* yp = y.data() + p * features;
#pragma omp simd reduction(+ : fired)
          for (int64_t d = 0; d < features; ++d) {
            F spike;
            bntt_jax::LifStep(m[d], yp[d], mu[d], sc[d], leak, threshold, spike);
            o[d] = spike;
            fired += static_cast<int64_t>(spike);
          }
        }
        counts[n] = static_cast<int32_t>(fired);
      }
    }
  }
}

ffi::Error CheckConv(const ffi::AnyBuffer& x, const ffi::AnyBuffer& w, int64_t* dims) {
  auto xd = x.dimensions();
  auto wd = w.dimensions();
  if (xd.size() != 4 || wd.size() != 4 || wd[0] != wd[1] || wd[0] % 2 != 1 || wd[2] != xd[3])
    return ffi::Error::InvalidArgument(
        "event_conv: need x [N, H, W, C] and w [k, k, C, D] with odd k");
  if (x.element_type() != w.element_type())
    return ffi::Error::InvalidArgument("event_conv: x and w must share a dtype");
  dims[0] = xd[0], dims[1] = xd[1], dims[2] = xd[2], dims[3] = xd[3], dims[4] = wd[3],
  dims[5] = wd[0];
  return ffi::Error::Success();
}

ffi::Error ForwardImpl(ffi::AnyBuffer x, ffi::AnyBuffer w, ffi::Result<ffi::AnyBuffer> y) {
  int64_t d[6];
  if (auto err = CheckConv(x, w, d); err.failure()) return err;
  return bntt_jax::ByDtype(x.element_type(), "event_conv", [&](auto zero) {
    using F = decltype(zero);
    Forward<F>(x.typed_data<F>(), w.typed_data<F>(), y->typed_data<F>(), d[0], d[1], d[2], d[3],
               d[4], d[5]);
  });
}

// The filter gradient, pixel by pixel (every kernel size) or, kByChannel, a 3x3 kernel's
// channel by channel (FilterGrad3x3).
template <bool kByChannel>
ffi::Error FilterGradImpl(ffi::AnyBuffer x, ffi::AnyBuffer w, ffi::AnyBuffer dy,
                          ffi::Result<ffi::AnyBuffer> dw, int64_t chunk) {
  constexpr const char* name =
      kByChannel ? "event_conv_filter_grad_3x3" : "event_conv_filter_grad";
  int64_t d[6];
  if (auto err = CheckConv(x, w, d); err.failure()) return err;
  if (kByChannel && d[5] != 3) return ffi::Error::InvalidArgument(std::string(name) + ": k != 3");
  return bntt_jax::ByDtype(x.element_type(), name, [&](auto zero) {
    using F = decltype(zero);
    if constexpr (kByChannel)
      FilterGrad3x3<F>(x.typed_data<F>(), dy.typed_data<F>(), dw->typed_data<F>(), d[0], d[1],
                       d[2], d[3], d[4], chunk);
    else
      FilterGrad<F>(x.typed_data<F>(), dy.typed_data<F>(), dw->typed_data<F>(), d[0], d[1],
                    d[2], d[3], d[4], d[5], chunk);
  });
}

ffi::Error LifEvalImpl(ffi::AnyBuffer x, ffi::AnyBuffer w, ffi::AnyBuffer mean,
                       ffi::AnyBuffer scale, ffi::Result<ffi::AnyBuffer> spikes,
                       ffi::Result<ffi::Buffer<ffi::S32>> counts, int64_t steps, double leak,
                       double threshold) {
  int64_t d[6];
  if (auto err = CheckConv(x, w, d); err.failure()) return err;
  if (steps < 1 || d[0] % steps != 0)
    return ffi::Error::InvalidArgument("event_conv_lif_eval: images must be T * B");
  const int64_t batch = d[0] / steps;
  return bntt_jax::ByDtype(x.element_type(), "event_conv", [&](auto zero) {
    using F = decltype(zero);
    ForwardLifEval<F>(x.typed_data<F>(), w.typed_data<F>(), mean.typed_data<F>(),
                      scale.typed_data<F>(), spikes->typed_data<F>(), counts->typed_data(),
                      steps, batch, d[1], d[2], d[3], d[4], d[5], leak, threshold);
  });
}

}  // namespace

// What this build was compiled for (bntt_jax.cpu.ffi.target): the vector ISA, and in out[8] the
// vector width in bytes, the vector registers, FMA (0/1) and the register blocking of vec.h.
extern "C" const char* BnttTarget(int64_t* out) {
  const int64_t values[8] = {bntt_jax::kVectorBytes,  bntt_jax::kVectorRegisters,
                             bntt_jax::kFusedMultiplyAdd, bntt_jax::kChunkVectors,
                             bntt_jax::kGradVectors,  bntt_jax::kBlockPixels,
                             bntt_jax::kBlockVectors, bntt_jax::kPixelGroup};
  std::copy(values, values + 8, out);
  return BNTT_JAX_ISA;
}

XLA_FFI_DEFINE_HANDLER_SYMBOL(EventConvForward, ForwardImpl,
                              ffi::Ffi::Bind()
                                  .Arg<ffi::AnyBuffer>()
                                  .Arg<ffi::AnyBuffer>()
                                  .Ret<ffi::AnyBuffer>());

// x, w, dy -> dw; chunk: at least this many images of pixels between flushes of the partial
// sums (SumOverImages).
#define BNTT_FILTER_GRAD_BINDING                                                          \
  ffi::Ffi::Bind()                                                                        \
      .Arg<ffi::AnyBuffer>()                                                              \
      .Arg<ffi::AnyBuffer>()                                                              \
      .Arg<ffi::AnyBuffer>()                                                              \
      .Ret<ffi::AnyBuffer>()                                                              \
      .Attr<int64_t>("chunk")

XLA_FFI_DEFINE_HANDLER_SYMBOL(EventConvFilterGrad, FilterGradImpl<false>,
                              BNTT_FILTER_GRAD_BINDING);
XLA_FFI_DEFINE_HANDLER_SYMBOL(EventConvFilterGrad3x3, FilterGradImpl<true>,
                              BNTT_FILTER_GRAD_BINDING);

XLA_FFI_DEFINE_HANDLER_SYMBOL(EventConvLifEval, LifEvalImpl,
                              ffi::Ffi::Bind()
                                  .Arg<ffi::AnyBuffer>()
                                  .Arg<ffi::AnyBuffer>()
                                  .Arg<ffi::AnyBuffer>()
                                  .Arg<ffi::AnyBuffer>()
                                  .Ret<ffi::AnyBuffer>()
                                  .Ret<ffi::Buffer<ffi::S32>>()
                                  .Attr<int64_t>("steps")
                                  .Attr<double>("leak")
                                  .Attr<double>("threshold"));
