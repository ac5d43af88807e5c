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
    if (t > 0) {
      const int64_t r = (t - 1) * batch + b;
      gather_sum<T, NV, PART>(x, idx, ptr[r], ptr[r + 1], wt, n, c0, part);  // x[t-1] (eq 1's input)
      for (int q = 0; q < Q; ++q) {
        V vn = v[q] * a_v;           // V[t] = a_v V[t-1] + I[t-1] - Th S[t-1]   (eq 2)
        vn = vn + cur[q];
        vn = vn - s[q] * h[q];
        V cn = cur[q] * a_i;         // I[t] = a_i I[t-1] + x[t-1]              (eq 1)
        cur[q] = cn + x[q];
        v[q] = vn;
      }
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

// Backward from the input spikes: each work item reruns eqs 1-3 (x included) into a buffer of its own, then
// runs backward_block on it. {grad_x (steps, batch, n), per-(sample, neuron) threshold gradient (batch * n)}.
std::vector<torch::Tensor> lif_backward_spikes(torch::Tensor ptr, torch::Tensor idx, torch::Tensor wt, torch::Tensor th,
                                               torch::Tensor gs, c10::optional<torch::Tensor> gv, int64_t steps,
                                               int64_t batch, double ai, double av, double tau, double scale,
                                               bool detach) {
  const int64_t n = wt.size(1), rows = batch * n;
  auto gx = torch::empty({steps, batch, n}, wt.options());
  auto gth = torch::empty({rows}, wt.options());
  AT_DISPATCH_FLOATING_TYPES(wt.scalar_type(), "lif_backward_spikes", [&] {
    using T = scalar_t;
    const int64_t* pp = ptr.data_ptr<int64_t>();
    const int32_t* ip = idx.data_ptr<int32_t>();
    const T* wp = wt.data_ptr<T>();
    const T* hp = th.data_ptr<T>();
    const T* g = gv ? gv->data_ptr<T>() : nullptr;
    const T* gsp = gs.data_ptr<T>();
    T* gxp = gx.data_ptr<T>();
    T* gthp = gth.data_ptr<T>();
    const T a_i = (T)ai, a_v = (T)av, steep = (T)tau, k = (T)(scale / tau);
    const int64_t cw = 4 * Vec<T>::lanes;
    for_items<T>(batch, n, 1, [&]<int NV, bool PART>(int64_t b, int64_t c0, int64_t w) {
      thread_local std::vector<T> buf;
      buf.resize(steps * cw);
      spike_scan_item<T, NV, PART>(pp, ip, wp, hp, buf.data(), cw, nullptr, 0, steps, batch, n, b, c0,
                                   w % Vec<T>::lanes, a_i, a_v);
      const int64_t lo = b * n + c0;
      if (g && detach) backward_block<T, true, true>(buf.data(), cw, hp, gsp, g, gxp, gthp, steps, rows, n, lo, w, a_i, a_v, steep, k);
      else if (g) backward_block<T, true, false>(buf.data(), cw, hp, gsp, g, gxp, gthp, steps, rows, n, lo, w, a_i, a_v, steep, k);
      else if (detach) backward_block<T, false, true>(buf.data(), cw, hp, gsp, g, gxp, gthp, steps, rows, n, lo, w, a_i, a_v, steep, k);
      else backward_block<T, false, false>(buf.data(), cw, hp, gsp, g, gxp, gthp, steps, rows, n, lo, w, a_i, a_v, steep, k);
    });
  });
  return {gx, gth};
}
