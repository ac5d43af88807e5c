// The LIF scan (eqs 1-5) driven straight by 0/1 input spikes as CSR indices: eq 1's synaptic input
// x[t-1] = sum_j w_ji S_j[t-1] is summed into vector registers at the step that uses it and never stored.
// Compiled by kernels.py after lif_kernel.cpp (backward_block) and spike_kernel.cpp (Vec, gather_sum).
//
// Work items are (column chunk of neurons, sample), chunk-major, so one thread's consecutive items share the
// chunk's columns of W^T in its L2 cache. The arithmetic is scan_block's, in the same order, and x sums the
// spikes in the order spike_product does, so V, spikes and gradients equal the unfused path's bit for bit.

// Eqs 1-3 for sample b, neurons c0..c0+w: V[t] at v_out + t * vs, and S[t] at s_out + t * ss when s_out is set.
template <typename T, int NV, bool PART>
static void spike_scan_item(const int64_t* ptr, const int32_t* idx, const T* wt, const T* th, T* v_out, int64_t vs,
                            T* s_out, int64_t ss, int64_t steps, int64_t batch, int64_t n, int64_t b, int64_t c0,
                            int64_t part, T a_i, T a_v) {
  typedef typename Vec<T>::type V;
  constexpr int64_t L = Vec<T>::lanes;
  constexpr int Q = NV + (PART ? 1 : 0);
  V h[Q], cur[Q], v[Q], s[Q], x[Q + 1];
  const V one = V{} + T(1), zero = V{};
  for (int q = 0; q < Q; ++q) {
    h[q] = (PART && q == NV) ? Vec<T>::load_part(th + c0 + q * L, part) : *(const V*)(th + c0 + q * L);
    cur[q] = zero;
    v[q] = zero;
  }
  for (int64_t t = 0; t < steps; ++t) {
    if (t + PREFETCH_STEPS < steps) {  // this sample's rows of the CSR matrix lie batch rows apart
      const int64_t ahead = (t + PREFETCH_STEPS - 1) * batch + b;
      __builtin_prefetch(ptr + ahead);
      if (t >= 2) __builtin_prefetch(idx + ptr[ahead - 2 * batch]);
    }
    if (t > 0) {
      const int64_t r = (t - 1) * batch + b;
      gather_sum<T, NV, PART>(x, idx, ptr[r], ptr[r + 1], wt, n, c0, part);  // x[t-1] (eq 1's input)
      for (int q = 0; q < Q; ++q) lif_step(v[q], cur[q], s[q], h[q], x[q], a_i, a_v);  // eqs 1-2
    }
    for (int q = 0; q < Q; ++q) {
      s[q] = v[q] >= h[q] ? one : zero;  // eq 3
      T* vo = v_out + t * vs + q * L;
      T* so = s_out ? s_out + t * ss + q * L : nullptr;
      if (PART && q == NV) {
        Vec<T>::store_part(vo, v[q], part);
        if (so) Vec<T>::store_part(so, s[q], part);
      } else {
        *(V*)vo = v[q];
        if (so) *(V*)so = s[q];
      }
    }
  }
}

// Runs f(b, c0, w, NV, PART) over all work items (chunk, sample) in parallel.
template <typename T, typename F>
static void for_items(int64_t batch, int64_t n, int64_t grain, F&& f) {
  const int64_t cw = 4 * Vec<T>::lanes, chunks = (n + cw - 1) / cw, L = Vec<T>::lanes;
  at::parallel_for(0, chunks * batch, grain, [&](int64_t lo, int64_t hi) {
    for (int64_t item = lo; item < hi; ++item) {
      const int64_t c0 = (item / batch) * cw, b = item % batch, w = std::min(cw, n - c0);
      with_chunk_shape(w / L, w % L != 0, [&]<int NV, bool PART>() { f.template operator()<NV, PART>(b, c0, w); });
    }
  });
}

// Forward: {S, V}, each (steps, batch, n), from input spikes (ptr, idx) over rows t * batch + b and wt = W^T.
std::vector<torch::Tensor> lif_forward_spikes(torch::Tensor ptr, torch::Tensor idx, torch::Tensor wt, torch::Tensor th,
                                              int64_t steps, int64_t batch, double ai, double av) {
  const int64_t n = wt.size(1), rows = batch * n;
  auto v = torch::empty({steps, batch, n}, wt.options());
  auto s = torch::empty({steps, batch, n}, wt.options());
  AT_DISPATCH_FLOATING_TYPES(wt.scalar_type(), "lif_forward_spikes", [&] {
    using T = scalar_t;
    const int64_t* pp = ptr.data_ptr<int64_t>();
    const int32_t* ip = idx.data_ptr<int32_t>();
    const T* wp = wt.data_ptr<T>();
    const T* hp = th.data_ptr<T>();
    T* vp = v.data_ptr<T>();
    T* sp = s.data_ptr<T>();
    for_items<T>(batch, n, 1, [&]<int NV, bool PART>(int64_t b, int64_t c0, int64_t w) {
      spike_scan_item<T, NV, PART>(pp, ip, wp, hp, vp + b * n + c0, rows, sp + b * n + c0, rows, steps, batch, n, b,
                                   c0, w % Vec<T>::lanes, (T)ai, (T)av);
    });
  });
  return {s, v};
}

// acc[idx[k], 0:w] += g[0:w] for the spikes k0..k1 (one row of the input's CSR matrix).
template <typename T, int NV, bool PART>
static inline void scatter_row(T* acc, int64_t width, const int32_t* idx, int64_t k0, int64_t k1, const T* g, int64_t part) {
  typedef typename Vec<T>::type V;
  constexpr int64_t L = Vec<T>::lanes;
  V gv[NV + 1];
  for (int q = 0; q < NV; ++q) gv[q] = *(const V*)(g + q * L);
  if (PART) gv[NV] = Vec<T>::load_part(g + NV * L, part);
  for (int64_t k = k0; k < k1; ++k) {
    T* a = acc + (int64_t)idx[k] * width;
    for (int q = 0; q < NV; ++q) *(V*)(a + q * L) += gv[q];
    if (PART) Vec<T>::store_part(a + NV * L, Vec<T>::load_part(a + NV * L, part) + gv[NV], part);
  }
}

// Backward from the input spikes. Threads take column chunks of neurons (and parts of the batch when there are
// fewer chunks than threads); for each sample a chunk reruns eqs 1-3
// (x included) into a buffer, runs backward_block into a second one, then adds dL/dx[t] into the weight
// gradient's rows of the spikes of step t (dL/dW^T = S^T dL/dx) while it is in cache, and copies it out only
// when asked (hidden layers need it for dL/dS_in). {grad_x or empty, per-(sample, neuron) dL/dTh (batch * n),
// (dL/dW)^T (in, n) or empty}.
std::vector<torch::Tensor> lif_backward_spikes(torch::Tensor ptr, torch::Tensor idx, torch::Tensor wt, torch::Tensor th,
                                               torch::Tensor gs, c10::optional<torch::Tensor> gv, int64_t steps,
                                               int64_t batch, double ai, double av, double tau, double scale,
                                               bool detach, bool want_gx, bool want_gw) {
  const int64_t n_in = wt.size(0), n = wt.size(1), rows = batch * n;
  auto gx = want_gx ? torch::empty({steps, batch, n}, wt.options()) : torch::empty({0}, wt.options());
  auto gw = want_gw ? torch::zeros({n_in, n}, wt.options()) : torch::empty({0}, wt.options());
  auto gth = torch::empty({rows}, wt.options());
  AT_DISPATCH_FLOATING_TYPES(wt.scalar_type(), "lif_backward_spikes", [&] {
    using T = scalar_t;
    const int64_t* pp = ptr.data_ptr<int64_t>();
    const int32_t* ip = idx.data_ptr<int32_t>();
    const T* wp = wt.data_ptr<T>();
    const T* hp = th.data_ptr<T>();
    const T* g = gv ? gv->data_ptr<T>() : nullptr;
    const T* gsp = gs.data_ptr<T>();
    T* gxp = want_gx ? gx.data_ptr<T>() : nullptr;
    T* gwp = want_gw ? gw.data_ptr<T>() : nullptr;
    T* gthp = gth.data_ptr<T>();
    const T a_i = (T)ai, a_v = (T)av, steep = (T)tau, k = (T)(scale / tau);
    constexpr int64_t L = Vec<T>::lanes, cw = 4 * L;
    const int64_t chunks = (n + cw - 1) / cw, threads = at::get_num_threads();
    // Fewer chunks than threads (narrow layers): the samples are split too, each part summing dL/dW on its own.
    const int64_t parts = chunks >= threads ? 1 : std::min<int64_t>(batch, (threads + chunks - 1) / chunks);
    std::vector<T> own(gwp && parts > 1 ? (parts - 1) * n_in * n : 0, T(0));
    at::parallel_for(0, chunks * parts, 1, [&](int64_t lo_u, int64_t hi_u) {
      std::vector<T> vbuf(steps * cw), gbuf(steps * cw);
      for (int64_t u = lo_u; u < hi_u; ++u) {
        const int64_t c = u / parts, part = u % parts, c0 = c * cw, w = std::min(cw, n - c0);
        T* acc = part == 0 ? gwp : own.data() + (part - 1) * n_in * n;
        with_chunk_shape(w / L, w % L != 0, [&]<int NV, bool PART>() {
          for (int64_t b = part * batch / parts; b < (part + 1) * batch / parts; ++b) {
            spike_scan_item<T, NV, PART>(pp, ip, wp, hp, vbuf.data(), cw, nullptr, 0, steps, batch, n, b, c0, w % L, a_i,
                                         a_v);
            const int64_t lo = b * n + c0;
            T* gb = gbuf.data();
            with_backward_flags(g != nullptr, detach, [&](auto has_gv, auto detach_reset) {
              backward_block<T, decltype(has_gv)::value, decltype(detach_reset)::value>(
                  vbuf.data(), cw, hp, gsp, g, gb, cw, gthp, steps, rows, n, lo, w, a_i, a_v, steep, k);
            });
            for (int64_t t = 0; t < steps; ++t) {
              if (gxp) std::copy(gb + t * cw, gb + t * cw + w, gxp + t * rows + lo);
              const int64_t r = t * batch + b;
              if (gwp && pp[r] != pp[r + 1])
                scatter_row<T, NV, PART>(acc + c0, n, ip, pp[r], pp[r + 1], gb + t * cw, w % L);
            }
          }
        });
      }
    });
    for (int64_t part = 1; part < parts && gwp; ++part)  // the parts' sums, in a fixed order
      at::parallel_for(0, n_in * n, 4096, [&](int64_t lo, int64_t hi) {
        const T* o = own.data() + (part - 1) * n_in * n;
        for (int64_t i = lo; i < hi; ++i) gwp[i] += o[i];
      });
  });
  return {gx, gth, gw};
}
