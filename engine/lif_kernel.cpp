// The LIF scan of the Rouser paper (eqs 1-5) on the CPU, compiled on first use by kernels.py.
#include <torch/extension.h>
#include <algorithm>
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

// One step of eqs 1-2 for a neuron (T) or a vector of neurons (a GCC vector type), in the PyTorch loop's
// arithmetic order (neuron.py) so that every scan reproduces its V bit for bit.
template <typename V, typename T>
static inline void lif_step(V& v, V& cur, V s, V h, V x, T a_i, T a_v) {
  V vn = v * a_v;    // V[t] = a_v V[t-1] + I[t-1] - Th S[t-1]   (eq 2)
  vn = vn + cur;
  vn = vn - s * h;
  V cn = cur * a_i;  // I[t] = a_i I[t-1] + x[t-1]              (eq 1)
  cur = cn + x;
  v = vn;
}

// Eqs 1-3 for neurons lo..lo+m of each step: V[t] (stride vs) and, when s_out is set, S[t] (stride rows).
// Each block of neurons runs the whole time loop; the inner loops run over the block's neurons so the
// compiler can vectorise them. Arithmetic order matches the PyTorch loop in neuron.py, and backward's
// recomputation runs this same function, so it reproduces forward's V bit for bit.
template <typename T>
static void scan_block(const T* x, const T* th, T* v_out, int64_t vs, T* s_out, int64_t steps, int64_t rows,
                       int64_t n, int64_t lo, int64_t m, T a_i, T a_v) {
  std::vector<T> h(m), cur(m, T(0)), v(m, T(0)), s(m, T(0));
  for (int64_t j = 0; j < m; ++j) h[j] = th[(lo + j) % n];
  for (int64_t t = 0; t < steps; ++t) {
    if (t > 0) {
      const T* xp = x + (t - 1) * rows + lo;
      for (int64_t j = 0; j < m; ++j) lif_step(v[j], cur[j], s[j], h[j], xp[j], a_i, a_v);
    }
    T* vo = v_out + t * vs;
    for (int64_t j = 0; j < m; ++j) {
      vo[j] = v[j];
      s[j] = v[j] >= h[j] ? T(1) : T(0);  // eq 3
    }
    if (s_out) std::copy(s.begin(), s.end(), s_out + t * rows + lo);
  }
}

// Blocks of at most PREFETCH_BYTES per step fetch the gradients PREFETCH_STEPS steps ahead themselves.
static constexpr int64_t PREFETCH_BYTES = 1024, PREFETCH_STEPS = 6;

// Backward of eqs 1-3 for neurons lo..lo+m, V[t] read at vp + t * vs and dL/dx[t] written at gx + t * gxs,
// with the surrogate of eq 4 computed in place (vectorised exp: within a few ulp). Detach: S[t] does not feed
// V[t+1]'s reset term in backward (reset_grad="detach"); Th keeps its reset derivative -S[t].
template <typename T, bool HasGV, bool Detach>
static void backward_block(const T* vp, int64_t vs, const T* th, const T* gs_out, const T* gv_out, T* gx, int64_t gxs,
                           T* gth, int64_t steps, int64_t rows, int64_t n, int64_t lo, int64_t m, T a_i, T a_v, T steep,
                           T k) {
  std::vector<T> h(m), gv_next(m, T(0)), gi_next(m, T(0)), acc(m, T(0));
  for (int64_t j = 0; j < m; ++j) h[j] = th[(lo + j) % n];
  T* hp = h.data(); T* gvn = gv_next.data(); T* gin = gi_next.data(); T* ap = acc.data();
  const bool narrow = m * (int64_t)sizeof(T) <= PREFETCH_BYTES;
  for (int64_t t = steps - 1; t >= 0; --t) {
    const T* v_t = vp + t * vs;
    const T* gsp = gs_out + t * rows + lo;
    const T* gvp = HasGV ? gv_out + t * rows + lo : nullptr;
    T* gxp = gx + t * gxs;
    if (narrow && t >= PREFETCH_STEPS) {  // a narrow block's rows lie a page apart: no hardware prefetch
      for (int64_t j = 0; j < m; j += 64 / (int64_t)sizeof(T)) {
        __builtin_prefetch(gsp - PREFETCH_STEPS * rows + j);
        if (HasGV) __builtin_prefetch(gvp - PREFETCH_STEPS * rows + j);
      }
    }
#pragma omp simd
    for (int64_t j = 0; j < m; ++j) {
      const T v = v_t[j];
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
}

// Rows per block when backward recomputes V: T x RECOMPUTE_BLOCK values stay in the core's L2 cache.
static constexpr int64_t RECOMPUTE_BLOCK = 256;

std::vector<torch::Tensor> lif_forward(torch::Tensor x, torch::Tensor th, double ai, double av) {
  auto v = torch::empty_like(x);
  auto s = torch::empty_like(x);
  const int64_t steps = x.size(0), n = th.numel(), rows = x.numel() / std::max<int64_t>(steps, 1);
  AT_DISPATCH_FLOATING_TYPES(x.scalar_type(), "lif_forward", [&] {
    const scalar_t* xp = x.data_ptr<scalar_t>();
    const scalar_t* hp = th.data_ptr<scalar_t>();
    scalar_t* vp = v.data_ptr<scalar_t>();
    scalar_t* sp = s.data_ptr<scalar_t>();
    at::parallel_for(0, rows, 2048, [&](int64_t lo, int64_t hi) {
      scan_block<scalar_t>(xp, hp, vp + lo, rows, sp, steps, rows, n, lo, hi - lo, (scalar_t)ai, (scalar_t)av);
    });
  });
  return {s, v};
}

// Calls f(has_gv, detach) with both flags as std::bool_constant, for backward_block's template arguments.
template <typename F>
static inline void with_backward_flags(bool has_gv, bool detach, F&& f) {
  using T_ = std::true_type;
  using F_ = std::false_type;
  if (has_gv && detach) f(T_{}, T_{});
  else if (has_gv) f(T_{}, F_{});
  else if (detach) f(F_{}, T_{});
  else f(F_{}, F_{});
}

// Backward from the stored V (recompute=false, `src` is V) or from the synaptic input x (recompute=true):
// then each block of neurons first reruns eqs 1-3 into a buffer of its own, so V is never stored.
std::vector<torch::Tensor> lif_backward(torch::Tensor src, torch::Tensor th, torch::Tensor gs,
                                        c10::optional<torch::Tensor> gv, double ai, double av, double tau, double scale,
                                        bool detach, bool recompute) {
  auto gx = torch::empty_like(src);
  const int64_t steps = src.size(0), n = th.numel(), rows = src.numel() / std::max<int64_t>(steps, 1);
  auto gth = torch::empty({rows}, src.options());
  AT_DISPATCH_FLOATING_TYPES(src.scalar_type(), "lif_backward", [&] {
    using T = scalar_t;
    const T* g = gv ? gv->data_ptr<T>() : nullptr;
    const T* sp = src.data_ptr<T>();
    const T* hp = th.data_ptr<T>();
    const T* gsp = gs.data_ptr<T>();
    T* gxp = gx.data_ptr<T>();
    T* gthp = gth.data_ptr<T>();
    const T a_i = (T)ai, a_v = (T)av, steep = (T)tau, k = (T)(scale / tau);
    auto run = [&](auto has_gv, auto detach_reset) {
      constexpr bool HG = decltype(has_gv)::value, DR = decltype(detach_reset)::value;
      at::parallel_for(0, rows, recompute ? RECOMPUTE_BLOCK : 2048, [&](int64_t lo, int64_t hi) {
        if (!recompute) {
          backward_block<T, HG, DR>(sp + lo, rows, hp, gsp, g, gxp + lo, rows, gthp, steps, rows, n, lo, hi - lo, a_i, a_v,
                                    steep, k);
          return;
        }
        std::vector<T> buf(steps * std::min<int64_t>(RECOMPUTE_BLOCK, hi - lo));
        for (int64_t b = lo; b < hi; b += RECOMPUTE_BLOCK) {
          const int64_t m = std::min<int64_t>(RECOMPUTE_BLOCK, hi - b);
          scan_block<T>(sp, hp, buf.data(), m, nullptr, steps, rows, n, b, m, a_i, a_v);
          backward_block<T, HG, DR>(buf.data(), m, hp, gsp, g, gxp + b, rows, gthp, steps, rows, n, b, m, a_i, a_v, steep, k);
        }
      });
    };
    with_backward_flags(g != nullptr, detach, run);
  });
  return {gx, gth};
}
