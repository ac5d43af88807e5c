// Eq 1's synaptic input x[t] = sum_j w_ji S_j[t] and its weight gradient for 0/1 spikes held as CSR indices,
// on the CPU, compiled on first use by kernels.py. A spike only selects a row to add: no multiplications.
#include <torch/extension.h>
#include <algorithm>
#include <cstring>
#include <type_traits>
#include <vector>
#if defined(__AVX512F__)
#include <immintrin.h>
#endif

// 64-byte vectors of T (GCC vector extensions) and partial loads and stores of their first k lanes
// (AVX-512 masked moves where the CPU has them, element by element elsewhere).
template <typename T>
struct Vec {
  typedef T type __attribute__((vector_size(64), aligned(sizeof(T))));
  static constexpr int64_t lanes = 64 / sizeof(T);

  static type load_part(const T* p, int64_t k) {
#if defined(__AVX512F__)
    if constexpr (std::is_same<T, float>::value) return (type)_mm512_maskz_loadu_ps((__mmask16)((1u << k) - 1), p);
    else return (type)_mm512_maskz_loadu_pd((__mmask8)((1u << k) - 1), p);
#else
    type v = {};
    for (int64_t i = 0; i < k; ++i) v[i] = p[i];
    return v;
#endif
  }

  static void store_part(T* p, type v, int64_t k) {
#if defined(__AVX512F__)
    if constexpr (std::is_same<T, float>::value) _mm512_mask_storeu_ps(p, (__mmask16)((1u << k) - 1), (__m512)v);
    else _mm512_mask_storeu_pd(p, (__mmask8)((1u << k) - 1), (__m512d)v);
#else
    for (int64_t i = 0; i < k; ++i) p[i] = v[i];
#endif
  }
};

// Columns are taken in chunks of up to 4 vectors (NV whole ones and, when PART, one partial of `part` lanes)
// so that the rows touched at random (of W^T in forward, of the weight gradient's accumulator in backward)
// stay in the core's L2 cache, and sums live in vector registers. f.template operator()<NV, PART>() runs
// the chunk's code for its shape.
template <typename F>
static void with_chunk_shape(int64_t nv, bool part, F&& f) {
  switch (nv * 2 + (part ? 1 : 0)) {
    case 1: f.template operator()<0, true>(); break;
    case 2: f.template operator()<1, false>(); break;
    case 3: f.template operator()<1, true>(); break;
    case 4: f.template operator()<2, false>(); break;
    case 5: f.template operator()<2, true>(); break;
    case 6: f.template operator()<3, false>(); break;
    case 7: f.template operator()<3, true>(); break;
    case 8: f.template operator()<4, false>(); break;
    default: TORCH_CHECK(false, "bad chunk shape");
  }
}

static constexpr int64_t L2_BUDGET = 640 * 1024;

// Values per column chunk: 4 vectors when n rows of them fit the L2 budget, else 1.
template <typename T>
static int64_t chunk_width(int64_t n) {
  const int64_t wide = 4 * Vec<T>::lanes;
  return n * wide * (int64_t)sizeof(T) <= L2_BUDGET ? wide : Vec<T>::lanes;
}

// acc[0..NV+PART) = sum over the spikes k0..k1 of table[idx[k], c0:c0+w], in the spikes' order.
template <typename T, int NV, bool PART>
static inline void gather_sum(typename Vec<T>::type* acc, const int32_t* idx, int64_t k0, int64_t k1, const T* table,
                              int64_t width, int64_t c0, int64_t part) {
  typedef typename Vec<T>::type V;
  constexpr int64_t L = Vec<T>::lanes;
  for (int q = 0; q < NV + PART; ++q) acc[q] = V{};
  for (int64_t k = k0; k < k1; ++k) {
    const T* row = table + (int64_t)idx[k] * width + c0;
    for (int q = 0; q < NV; ++q) acc[q] += *(const V*)(row + q * L);
    if (PART) acc[NV] += Vec<T>::load_part(row + NV * L, part);
  }
}

// out[r, c0:c0+w] = sum over the spikes k of row r of table[idx[k], c0:c0+w], rows lo..hi.
template <typename T, int NV, bool PART>
static void gather_rows(const int64_t* ptr, const int32_t* idx, const T* table, T* out, int64_t lo, int64_t hi,
                        int64_t width, int64_t c0, int64_t part) {
  typedef typename Vec<T>::type V;
  constexpr int64_t L = Vec<T>::lanes;
  for (int64_t r = lo; r < hi; ++r) {
    V acc[NV + 1];
    gather_sum<T, NV, PART>(acc, idx, ptr[r], ptr[r + 1], table, width, c0, part);
    T* o = out + r * width + c0;
    for (int q = 0; q < NV; ++q) *(V*)(o + q * L) = acc[q];
    if (PART) Vec<T>::store_part(o + NV * L, acc[NV], part);
  }
}

// acc[idx[k], c0:c0+w] += grad[r, c0:c0+w] for every spike k of every row r (rows in ascending order).
template <typename T, int NV, bool PART>
static void scatter_rows(const int64_t* ptr, const int32_t* idx, const T* grad, T* acc, int64_t rows, int64_t width,
                         int64_t c0, int64_t part) {
  typedef typename Vec<T>::type V;
  constexpr int64_t L = Vec<T>::lanes;
  for (int64_t r = 0; r < rows; ++r) {
    if (ptr[r] == ptr[r + 1]) continue;
    V g[NV + 1];
    const T* gp = grad + r * width + c0;
    for (int q = 0; q < NV; ++q) g[q] = *(const V*)(gp + q * L);
    if (PART) g[NV] = Vec<T>::load_part(gp + NV * L, part);
    for (int64_t k = ptr[r]; k < ptr[r + 1]; ++k) {
      T* a = acc + (int64_t)idx[k] * width + c0;
      for (int q = 0; q < NV; ++q) *(V*)(a + q * L) += g[q];
      if (PART) Vec<T>::store_part(a + NV * L, Vec<T>::load_part(a + NV * L, part) + g[NV], part);
    }
  }
}

// x = S @ table for the 0/1 CSR matrix S (ptr, idx) and a dense (n, width) table: forward's x = S W^T with
// table = W^T (a spike adds a row of W^T). Shape (rows, width).
torch::Tensor spike_product(torch::Tensor ptr, torch::Tensor idx, torch::Tensor table) {
  const int64_t rows = ptr.numel() - 1, n = table.size(0), width = table.size(1);
  auto out = torch::empty({rows, width}, table.options());
  AT_DISPATCH_FLOATING_TYPES(table.scalar_type(), "spike_product", [&] {
    using T = scalar_t;
    const int64_t* pp = ptr.data_ptr<int64_t>();
    const int32_t* ip = idx.data_ptr<int32_t>();
    const T* tp = table.data_ptr<T>();
    T* op = out.data_ptr<T>();
    const int64_t cw = chunk_width<T>(n), L = Vec<T>::lanes;
    at::parallel_for(0, rows, 64, [&](int64_t lo, int64_t hi) {
      for (int64_t c0 = 0; c0 < width; c0 += cw) {
        const int64_t w = std::min(cw, width - c0);
        with_chunk_shape(w / L, w % L != 0, [&]<int NV, bool PART>() {
          gather_rows<T, NV, PART>(pp, ip, tp, op, lo, hi, width, c0, w % L);
        });
      }
    });
  });
  return out;
}

// S^T @ grad for the 0/1 CSR matrix S (ptr, idx) with n columns and a dense (rows, width) grad: the weight
// gradient (dL/dW)^T = S^T dL/dx, shape (n, width). Each spike adds a row of dL/dx.
torch::Tensor spike_weight_grad(torch::Tensor ptr, torch::Tensor idx, torch::Tensor grad, int64_t n) {
  const int64_t rows = ptr.numel() - 1, width = grad.size(1);
  auto acc = torch::zeros({n, width}, grad.options());
  AT_DISPATCH_FLOATING_TYPES(grad.scalar_type(), "spike_weight_grad", [&] {
    using T = scalar_t;
    const int64_t* pp = ptr.data_ptr<int64_t>();
    const int32_t* ip = idx.data_ptr<int32_t>();
    const T* gp = grad.data_ptr<T>();
    T* ap = acc.data_ptr<T>();
    const int64_t cw = chunk_width<T>(n), chunks = (width + cw - 1) / cw, L = Vec<T>::lanes;
    at::parallel_for(0, chunks, 1, [&](int64_t lo, int64_t hi) {
      for (int64_t c = lo; c < hi; ++c) {
        const int64_t c0 = c * cw, w = std::min(cw, width - c0);
        with_chunk_shape(w / L, w % L != 0, [&]<int NV, bool PART>() {
          scatter_rows<T, NV, PART>(pp, ip, gp, ap, rows, width, c0, w % L);
        });
      }
    });
  });
  return acc;
}

// Column indices of the nonzeros of row[0..n) written at out (which has room for n + 16), ascending; their count.
template <typename T>
static int64_t row_nonzeros(const T* row, int64_t n, int32_t* out) {
  int64_t c = 0, j = 0;
#if defined(__AVX512F__)
  constexpr int64_t L = Vec<T>::lanes;
  const __m512i iota = _mm512_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15);
  for (; j + L <= n; j += L) {
    __m512i at = _mm512_add_epi32(iota, _mm512_set1_epi32((int)j));
    unsigned m;
    if constexpr (std::is_same<T, float>::value) m = _mm512_cmp_ps_mask(_mm512_loadu_ps(row + j), _mm512_setzero_ps(), _CMP_NEQ_OQ);
    else m = _mm512_cmp_pd_mask(_mm512_loadu_pd(row + j), _mm512_setzero_pd(), _CMP_NEQ_OQ);
    if (m == 0) continue;
    _mm512_storeu_si512((void*)(out + c), _mm512_maskz_compress_epi32((__mmask16)m, at));
    c += __builtin_popcount(m);
  }
#endif
  for (; j < n; ++j) {  // branch-free: always write, advance only past a nonzero
    out[c] = (int32_t)j;
    c += row[j] != T(0);
  }
  return c;
}

// CSR indices of the nonzeros of a dense (rows, n) matrix, columns ascending in each row: {ptr, idx}.
// One pass: blocks of rows collect their indices apart, then are copied into place.
std::vector<torch::Tensor> dense_to_csr(torch::Tensor spikes) {
  const int64_t rows = spikes.size(0), n = spikes.size(1);
  const int64_t parts = std::max<int64_t>(1, std::min<int64_t>(rows, 64));
  auto ptr = torch::empty({rows + 1}, torch::kInt64);
  int64_t* pp = ptr.data_ptr<int64_t>();
  std::vector<std::vector<int32_t>> found(parts);
  AT_DISPATCH_FLOATING_TYPES(spikes.scalar_type(), "dense_to_csr", [&] {
    const scalar_t* s = spikes.data_ptr<scalar_t>();
    at::parallel_for(0, parts, 1, [&](int64_t lo, int64_t hi) {
      std::vector<int32_t> scratch(n + 16);
      for (int64_t p = lo; p < hi; ++p) {
        std::vector<int32_t>& mine = found[p];
        for (int64_t r = p * rows / parts; r < (p + 1) * rows / parts; ++r) {
          const int64_t c = row_nonzeros<scalar_t>(s + r * n, n, scratch.data());
          mine.insert(mine.end(), scratch.begin(), scratch.begin() + c);
          pp[r + 1] = c;
        }
      }
    });
  });
  pp[0] = 0;
  for (int64_t r = 0; r < rows; ++r) pp[r + 1] += pp[r];
  auto idx = torch::empty({pp[rows]}, torch::kInt32);
  int32_t* ip = idx.data_ptr<int32_t>();
  at::parallel_for(0, parts, 1, [&](int64_t lo, int64_t hi) {
    for (int64_t p = lo; p < hi; ++p)
      if (!found[p].empty()) std::memcpy(ip + pp[p * rows / parts], found[p].data(), found[p].size() * sizeof(int32_t));
  });
  return {ptr, idx};
}

// CSR indices from (row, column) pairs by a stable counting sort on the row: columns keep their order in a row.
std::vector<torch::Tensor> pairs_to_csr(torch::Tensor major, torch::Tensor minor, int64_t count) {
  auto ptr = torch::zeros({count + 1}, torch::kInt64);
  auto idx = torch::empty({major.numel()}, torch::kInt32);
  int64_t* pp = ptr.data_ptr<int64_t>();
  int32_t* ip = idx.data_ptr<int32_t>();
  const int64_t nnz = major.numel();
  auto run = [&](const auto* mj, const auto* mn) {
    for (int64_t k = 0; k < nnz; ++k) ++pp[mj[k] + 1];
    for (int64_t r = 0; r < count; ++r) pp[r + 1] += pp[r];
    std::vector<int64_t> fill(pp, pp + count);
    for (int64_t k = 0; k < nnz; ++k) ip[fill[mj[k]]++] = (int32_t)mn[k];
  };
  TORCH_CHECK(major.scalar_type() == minor.scalar_type(), "pairs_to_csr: index types differ");
  if (major.scalar_type() == torch::kInt32) run(major.data_ptr<int32_t>(), minor.data_ptr<int32_t>());
  else run(major.data_ptr<int64_t>(), minor.data_ptr<int64_t>());
  return {ptr, idx};
}
