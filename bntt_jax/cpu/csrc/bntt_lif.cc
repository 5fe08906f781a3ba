// A training-mode BNTT layer's normalisation and LIF neurons in one pass each way (BNTT paper
// Eq. 4, 8, 9 and Algorithm 1), for the layer-major synaptic input y [T, M, C] (M = batch x
// space) with its per-step batch statistics already known:
//
//   forward:  u_t = leak * m_{t-1} + (y_t - mean_t) * scale_t,  scale_t = gamma_t * inv_t,
//             inv_t = 1 / sqrt(var_t + eps),  o_t = 1[u_t > threshold],
//             m_t = u_t - threshold * o_t   (soft reset, m_{-1} = 0)
//   backward: g_t = do_t * alpha * max(0, 1 - |u_t / threshold - 1| / width) + leak * g_{t+1}
//             s1[t, c] = sum_M g_t,  s2[t, c] = sum_M g_t * xhat_t,
//             xhat_t = (y_t - mean_t) * inv_t
//             dgamma_t = s2,  dy_t = gamma_t * inv_t * (g_t - s1 / M - xhat_t * s2 / M)
//
// g_t is the gradient of the normalised input (the reset carries no gradient through the
// spike, as in the authors' code) and dy the batch norm's backward (Algorithm 1). The forward
// writes the spikes and the pre-reset membrane u (the backward's residual); XLA's composition
// of the same equations writes the normalised input, a zero-filled scan output and the
// membrane in separate passes. Rows are split into blocks of at most kBlockElems neurons,
// between the OpenMP threads; each block walks the steps (forward in order, backward in
// reverse) with its membrane or gradient carry in a buffer that stays in L1. The backward
// writes g, sums s1 and s2 in double per thread (then over the threads, in thread order) and
// overwrites g with dy in a second pass.
#include <omp.h>

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <vector>

#include "by_dtype.h"
#include "lif.h"
#include "xla/ffi/api/ffi.h"

namespace ffi = xla::ffi;

namespace {

constexpr int64_t kBlockElems = 2048;

int64_t BlockRows(int64_t channels) { return std::max<int64_t>(1, kBlockElems / channels); }

template <typename F>
void LifTrainForward(const F* y, const F* mean, const F* scale, F* spikes, F* membrane,
                     int64_t steps, int64_t rows, int64_t channels, F leak, F threshold) {
  const int64_t block = BlockRows(channels);
  const int64_t blocks = (rows + block - 1) / block;
#pragma omp parallel
  {
    std::vector<F> m(block * channels);
#pragma omp for schedule(static)
    for (int64_t k = 0; k < blocks; ++k) {
      const int64_t r0 = k * block, r1 = std::min(rows, r0 + block);
      const int64_t n = (r1 - r0) * channels;
      std::fill(m.begin(), m.begin() + n, F(0));
      for (int64_t t = 0; t < steps; ++t) {
        const int64_t base = (t * rows + r0) * channels;
        const F* mu = mean + t * channels;
        const F* sc = scale + t * channels;
        for (int64_t r = 0; r < r1 - r0; ++r) {
          const int64_t at = base + r * channels;
          F* mr = m.data() + r * channels;
#pragma omp simd
          for (int64_t c = 0; c < channels; ++c) {
            F o;
            const F u = bntt_jax::LifStep(mr[c], y[at + c], mu[c], sc[c], leak, threshold, o);
            spikes[at + c] = o;
            membrane[at + c] = u;
          }
        }
      }
    }
  }
}

template <typename F>
void LifTrainBackward(const F* dspikes, const F* membrane, const F* y, const F* mean,
                      const F* inv, const F* gamma, F* g, F* s2, int64_t steps, int64_t rows,
                      int64_t channels, F leak, F threshold, F alpha, F width) {
  const int64_t block = BlockRows(channels);
  const int64_t blocks = (rows + block - 1) / block;
  const int64_t stats = steps * channels;
  const int threads = omp_get_max_threads();
  std::vector<double> sums(static_cast<size_t>(threads) * 2 * stats, 0.0);
#pragma omp parallel num_threads(threads)
  {
    double* t1 = sums.data() + static_cast<size_t>(omp_get_thread_num()) * 2 * stats;
    double* t2 = t1 + stats;
    std::vector<F> carry(block * channels);
#pragma omp for schedule(static)
    for (int64_t k = 0; k < blocks; ++k) {
      const int64_t r0 = k * block, r1 = std::min(rows, r0 + block);
      std::fill(carry.begin(), carry.begin() + (r1 - r0) * channels, F(0));
      for (int64_t t = steps - 1; t >= 0; --t) {
        const int64_t base = (t * rows + r0) * channels;
        const F* mu = mean + t * channels;
        const F* iv = inv + t * channels;
        double* a1 = t1 + t * channels;
        double* a2 = t2 + t * channels;
        for (int64_t r = 0; r < r1 - r0; ++r) {
          const int64_t at = base + r * channels;
          F* gr = carry.data() + r * channels;
#pragma omp simd
          for (int64_t c = 0; c < channels; ++c) {
            const F surrogate = bntt_jax::Surrogate(membrane[at + c], threshold, alpha, width);
            const F grad = dspikes[at + c] * surrogate + leak * gr[c];
            gr[c] = grad;
            g[at + c] = grad;
            a1[c] += static_cast<double>(grad);
            a2[c] += static_cast<double>(grad * ((y[at + c] - mu[c]) * iv[c]));
          }
        }
      }
    }
  }
  // The sums over the threads, then the batch norm's input gradient in place of g.
  std::vector<F> centre(stats), slope(stats), gain(stats);
  for (int64_t i = 0; i < stats; ++i) {
    double total1 = 0.0, total2 = 0.0;
    for (int th = 0; th < threads; ++th) {
      total1 += sums[static_cast<size_t>(th) * 2 * stats + i];
      total2 += sums[static_cast<size_t>(th) * 2 * stats + stats + i];
    }
    s2[i] = static_cast<F>(total2);
    centre[i] = static_cast<F>(total1 / static_cast<double>(rows));
    slope[i] = static_cast<F>(total2 / static_cast<double>(rows));
    gain[i] = gamma[i] * inv[i];
  }
#pragma omp parallel for schedule(static)
  for (int64_t k = 0; k < blocks; ++k) {
    const int64_t r0 = k * block, r1 = std::min(rows, r0 + block);
    for (int64_t t = 0; t < steps; ++t) {
      const int64_t base = (t * rows + r0) * channels;
      const F* mu = mean + t * channels;
      const F* iv = inv + t * channels;
      const F* ce = centre.data() + t * channels;
      const F* sl = slope.data() + t * channels;
      const F* ga = gain.data() + t * channels;
      for (int64_t r = 0; r < r1 - r0; ++r) {
        const int64_t at = base + r * channels;
#pragma omp simd
        for (int64_t c = 0; c < channels; ++c) {
          const F xhat = (y[at + c] - mu[c]) * iv[c];
          g[at + c] = ga[c] * (g[at + c] - ce[c] - xhat * sl[c]);
        }
      }
    }
  }
}

// Checks y [T, M, C] against the statistics' [T, C] and returns T, M, C in dims.
ffi::Error CheckLayer(const ffi::AnyBuffer& y, const ffi::AnyBuffer& stat, int64_t* dims) {
  auto yd = y.dimensions();
  auto sd = stat.dimensions();
  if (yd.size() != 3 || sd.size() != 2 || sd[0] != yd[0] || sd[1] != yd[2])
    return ffi::Error::InvalidArgument(
        "bntt_lif_train: need y [T, M, C] and per-step statistics [T, C]");
  if (y.element_type() != stat.element_type())
    return ffi::Error::InvalidArgument("bntt_lif_train: y and statistics must share a dtype");
  dims[0] = yd[0], dims[1] = yd[1], dims[2] = yd[2];
  return ffi::Error::Success();
}

ffi::Error ForwardImpl(ffi::AnyBuffer y, ffi::AnyBuffer mean, ffi::AnyBuffer scale,
                       ffi::Result<ffi::AnyBuffer> spikes, ffi::Result<ffi::AnyBuffer> membrane,
                       double leak, double threshold) {
  int64_t d[3];
  if (auto err = CheckLayer(y, mean, d); err.failure()) return err;
  return bntt_jax::ByDtype(y.element_type(), "bntt_lif_train", [&](auto zero) {
    using F = decltype(zero);
    LifTrainForward<F>(y.typed_data<F>(), mean.typed_data<F>(), scale.typed_data<F>(),
                       spikes->typed_data<F>(), membrane->typed_data<F>(), d[0], d[1], d[2],
                       static_cast<F>(leak), static_cast<F>(threshold));
  });
}

ffi::Error BackwardImpl(ffi::AnyBuffer dspikes, ffi::AnyBuffer membrane, ffi::AnyBuffer y,
                        ffi::AnyBuffer mean, ffi::AnyBuffer inv, ffi::AnyBuffer gamma,
                        ffi::Result<ffi::AnyBuffer> dy, ffi::Result<ffi::AnyBuffer> dgamma,
                        double leak, double threshold, double alpha, double width) {
  int64_t d[3];
  if (auto err = CheckLayer(y, mean, d); err.failure()) return err;
  return bntt_jax::ByDtype(y.element_type(), "bntt_lif_train", [&](auto zero) {
    using F = decltype(zero);
    LifTrainBackward<F>(dspikes.typed_data<F>(), membrane.typed_data<F>(), y.typed_data<F>(),
                        mean.typed_data<F>(), inv.typed_data<F>(), gamma.typed_data<F>(),
                        dy->typed_data<F>(), dgamma->typed_data<F>(), d[0], d[1], d[2],
                        static_cast<F>(leak), static_cast<F>(threshold), static_cast<F>(alpha),
                        static_cast<F>(width));
  });
}

}  // namespace

XLA_FFI_DEFINE_HANDLER_SYMBOL(BnttLifTrainFwd, ForwardImpl,
                              ffi::Ffi::Bind()
                                  .Arg<ffi::AnyBuffer>()
                                  .Arg<ffi::AnyBuffer>()
                                  .Arg<ffi::AnyBuffer>()
                                  .Ret<ffi::AnyBuffer>()
                                  .Ret<ffi::AnyBuffer>()
                                  .Attr<double>("leak")
                                  .Attr<double>("threshold"));

XLA_FFI_DEFINE_HANDLER_SYMBOL(BnttLifTrainBwd, BackwardImpl,
                              ffi::Ffi::Bind()
                                  .Arg<ffi::AnyBuffer>()
                                  .Arg<ffi::AnyBuffer>()
                                  .Arg<ffi::AnyBuffer>()
                                  .Arg<ffi::AnyBuffer>()
                                  .Arg<ffi::AnyBuffer>()
                                  .Arg<ffi::AnyBuffer>()
                                  .Ret<ffi::AnyBuffer>()
                                  .Ret<ffi::AnyBuffer>()
                                  .Attr<double>("leak")
                                  .Attr<double>("threshold")
                                  .Attr<double>("alpha")
                                  .Attr<double>("width"));
