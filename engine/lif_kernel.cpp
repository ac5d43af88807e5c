// The LIF scan of the Rouser paper (eqs 1-5) on the CPU, compiled on first use by kernels.py.
#include <torch/extension.h>
#include <cmath>
#include <type_traits>
#include <vector>

// glibc's vector exp (libmvec, within 4 ulp) for the surrogate in the vectorised backward loop.
extern "C" {
__attribute__((simd("notinbranch"))) float expf(float);
__attribute__((simd("notinbranch"))) double exp(double);
}
static inline float vexp(float x) { return expf(x); }
static inline double vexp(double x) { return exp(x); }

// Each block of neurons runs the whole time loop; the inner loops run over the block's neurons so the
// compiler can vectorise them. Arithmetic order matches the PyTorch loop in neuron.py.
template <typename T>
static void forward_impl(const T* x, const T* th, T* v_out, int64_t steps, int64_t rows, int64_t n,
                         double ai, double av) {
  const T a_i = (T)ai, a_v = (T)av;
  at::parallel_for(0, rows, 2048, [&](int64_t lo, int64_t hi) {
    const int64_t m = hi - lo;
    std::vector<T> h(m), cur(m, T(0)), v(m, T(0)), s(m, T(0));
    for (int64_t j = 0; j < m; ++j) h[j] = th[(lo + j) % n];
    for (int64_t t = 0; t < steps; ++t) {
      T* vo = v_out + t * rows + lo;
      if (t > 0) {
        const T* xp = x + (t - 1) * rows + lo;
        for (int64_t j = 0; j < m; ++j) {
          T vn = v[j] * a_v;          // V[t] = a_v V[t-1] + I[t-1] - Th S[t-1]   (eq 2)
          vn = vn + cur[j];
          vn = vn - s[j] * h[j];
          T cn = cur[j] * a_i;        // I[t] = a_i I[t-1] + x[t-1]              (eq 1)
          cur[j] = cn + xp[j];
          v[j] = vn;
        }
      }
      for (int64_t j = 0; j < m; ++j) {
        vo[j] = v[j];
        s[j] = v[j] >= h[j] ? T(1) : T(0);  // eq 3
      }
    }
  });
}

// Backward of eqs 1-3 with the surrogate of eq 4 computed in place (vectorised exp: within a few ulp).
// Detach: S[t] does not feed V[t+1]'s reset term in backward (reset_grad="detach"); Th keeps -S[t].
template <typename T, bool HasGV, bool Detach>
static void backward_impl(const T* v_in, const T* th, const T* gs_out, const T* gv_out, T* gx, T* gth,
                          int64_t steps, int64_t rows, int64_t n, double ai, double av, double tau, double scale) {
  const T a_i = (T)ai, a_v = (T)av, steep = (T)tau, k = (T)(scale / tau);
  at::parallel_for(0, rows, 2048, [&](int64_t lo, int64_t hi) {
    const int64_t m = hi - lo;
    std::vector<T> h(m), gv_next(m, T(0)), gi_next(m, T(0)), acc(m, T(0));
    for (int64_t j = 0; j < m; ++j) h[j] = th[(lo + j) % n];
    T* hp = h.data(); T* gvn = gv_next.data(); T* gin = gi_next.data(); T* ap = acc.data();
    for (int64_t t = steps - 1; t >= 0; --t) {
      const T* vp = v_in + t * rows + lo;
      const T* gsp = gs_out + t * rows + lo;
      const T* gvp = HasGV ? gv_out + t * rows + lo : nullptr;
      T* gxp = gx + t * rows + lo;
#pragma omp simd
      for (int64_t j = 0; j < m; ++j) {
        const T v = vp[j];
        const T g = vexp(-std::abs(v - hp[j]) / steep) * k;     // eq 4
        const T s = v >= hp[j] ? T(1) : T(0);
        const T gs = Detach ? gsp[j] : gsp[j] + (-hp[j]) * gvn[j];  // S[t] -> output, V[t+1] (reset)
        const T gi = gvn[j] + a_i * gin[j];                      // I[t] -> V[t+1], I[t+1]
        gxp[j] = gin[j];                                         // x[t] -> I[t+1]
        T gv = (HasGV ? gvp[j] : T(0)) + g * gs;                 // V[t] -> output, S[t]
        gv = gv + a_v * gvn[j];                                  //        and V[t+1]
        ap[j] += -(g * gs) - s * gvn[j];                         // eq 5 and the reset term
        gvn[j] = gv;
        gin[j] = gi;
      }
    }
    for (int64_t j = 0; j < m; ++j) gth[lo + j] = ap[j];
  });
}

torch::Tensor lif_forward(torch::Tensor x, torch::Tensor th, double ai, double av) {
  auto v = torch::empty_like(x);
  const int64_t steps = x.size(0), n = th.numel(), rows = x.numel() / std::max<int64_t>(steps, 1);
  AT_DISPATCH_FLOATING_TYPES(x.scalar_type(), "lif_forward", [&] {
    forward_impl<scalar_t>(x.data_ptr<scalar_t>(), th.data_ptr<scalar_t>(), v.data_ptr<scalar_t>(), steps, rows, n, ai, av);
  });
  return v;
}

std::vector<torch::Tensor> lif_backward(torch::Tensor v, torch::Tensor th, torch::Tensor gs,
                                        c10::optional<torch::Tensor> gv, double ai, double av, double tau, double scale,
                                        bool detach) {
  auto gx = torch::empty_like(v);
  const int64_t steps = v.size(0), n = th.numel(), rows = v.numel() / std::max<int64_t>(steps, 1);
  auto gth = torch::empty({rows}, v.options());
  AT_DISPATCH_FLOATING_TYPES(v.scalar_type(), "lif_backward", [&] {
    const scalar_t* g = gv ? gv->data_ptr<scalar_t>() : nullptr;
    auto run = [&](auto has_gv, auto detach_reset) {
      backward_impl<scalar_t, decltype(has_gv)::value, decltype(detach_reset)::value>(
          v.data_ptr<scalar_t>(), th.data_ptr<scalar_t>(), gs.data_ptr<scalar_t>(), g, gx.data_ptr<scalar_t>(),
          gth.data_ptr<scalar_t>(), steps, rows, n, ai, av, tau, scale);
    };
    using T_ = std::true_type;
    using F_ = std::false_type;
    if (g && detach) run(T_{}, T_{});
    else if (g) run(T_{}, F_{});
    else if (detach) run(F_{}, T_{});
    else run(F_{}, F_{});
  });
  return {gx, gth};
}
