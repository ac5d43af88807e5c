// Eq 1's synaptic input x[t] = sum_j w_ji S_j[t] and its weight gradient for 0/1 spikes held as CSR indices,
// on the CPU, compiled on first use by kernels.py. A spike only selects a row to add: no multiplications.
#include <torch/extension.h>
#include <algorithm>
#include <vector>

// Both products run over column chunks of the dense operand in the outer loop, so the rows they touch at
// random (of W^T in forward, of the gradient's accumulator in backward) stay in the core's L2 cache: chunks
// of 4 vectors of 64 bytes, or of 1 when the table is too tall for that. The sums live in vector registers
// (GCC vector extensions; the scalar tail is the few columns past the last whole vector).
template <typename T>
struct Vec {
  typedef T type __attribute__((vector_size(64), aligned(sizeof(T))));
  static constexpr int64_t lanes = 64 / sizeof(T);
};
static constexpr int64_t L2_BUDGET = 640 * 1024;

// out[r, c0:c0+NV*L] = sum over the spikes k of row r of table[idx[k], c0:...], rows lo..hi.
template <typename T, int NV>
static void gather_vectors(const int64_t* ptr, const int32_t* idx, const T* table, T* out, int64_t lo, int64_t hi,
                           int64_t width, int64_t c0) {
  typedef typename Vec<T>::type V;
  for (int64_t r = lo; r < hi; ++r) {
    V acc[NV];
    for (int q = 0; q < NV; ++q) acc[q] = V{};
    for (int64_t k = ptr[r]; k < ptr[r + 1]; ++k) {
      const V* row = (const V*)(table + (int64_t)idx[k] * width + c0);
      for (int q = 0; q < NV; ++q) acc[q] += row[q];
    }
    V* o = (V*)(out + r * width + c0);
    for (int q = 0; q < NV; ++q) o[q] = acc[q];
  }
}

// acc[idx[k], c0:c0+NV*L] += grad[r, c0:...] for every spike k of every row r (rows in ascending order).
template <typename T, int NV>
static void scatter_vectors(const int64_t* ptr, const int32_t* idx, const T* grad, T* acc, int64_t rows,
                            int64_t width, int64_t c0) {
  typedef typename Vec<T>::type V;
  for (int64_t r = 0; r < rows; ++r) {
    if (ptr[r] == ptr[r + 1]) continue;
    V g[NV];
    const V* gp = (const V*)(grad + r * width + c0);
    for (int q = 0; q < NV; ++q) g[q] = gp[q];
    for (int64_t k = ptr[r]; k < ptr[r + 1]; ++k) {
      V* a = (V*)(acc + (int64_t)idx[k] * width + c0);
      for (int q = 0; q < NV; ++q) a[q] += g[q];
    }
  }
}

// One column chunk c0..c0+w (w <= 4 vectors): whole vectors, then the scalar tail.
template <typename T>
static void gather_chunk(const int64_t* ptr, const int32_t* idx, const T* table, T* out, int64_t lo, int64_t hi,
                         int64_t width, int64_t c0, int64_t w) {
  const int64_t nv = w / Vec<T>::lanes, tail = c0 + nv * Vec<T>::lanes;
  switch (nv) {
    case 4: gather_vectors<T, 4>(ptr, idx, table, out, lo, hi, width, c0); break;
    case 3: gather_vectors<T, 3>(ptr, idx, table, out, lo, hi, width, c0); break;
    case 2: gather_vectors<T, 2>(ptr, idx, table, out, lo, hi, width, c0); break;
    case 1: gather_vectors<T, 1>(ptr, idx, table, out, lo, hi, width, c0); break;
    default: break;
  }
  for (int64_t r = lo; r < hi; ++r)
    for (int64_t c = tail; c < c0 + w; ++c) {
      T sum = T(0);
      for (int64_t k = ptr[r]; k < ptr[r + 1]; ++k) sum += table[(int64_t)idx[k] * width + c];
      out[r * width + c] = sum;
    }
}

template <typename T>
static void scatter_chunk(const int64_t* ptr, const int32_t* idx, const T* grad, T* acc, int64_t rows, int64_t n,
                          int64_t width, int64_t c0, int64_t w) {
  for (int64_t j = 0; j < n; ++j) std::fill(acc + j * width + c0, acc + j * width + c0 + w, T(0));
  const int64_t nv = w / Vec<T>::lanes, tail = c0 + nv * Vec<T>::lanes;
  switch (nv) {
    case 4: scatter_vectors<T, 4>(ptr, idx, grad, acc, rows, width, c0); break;
    case 3: scatter_vectors<T, 3>(ptr, idx, grad, acc, rows, width, c0); break;
    case 2: scatter_vectors<T, 2>(ptr, idx, grad, acc, rows, width, c0); break;
    case 1: scatter_vectors<T, 1>(ptr, idx, grad, acc, rows, width, c0); break;
    default: break;
  }
  for (int64_t r = 0; r < rows; ++r)
    for (int64_t k = ptr[r]; k < ptr[r + 1]; ++k)
      for (int64_t c = tail; c < c0 + w; ++c) acc[(int64_t)idx[k] * width + c] += grad[r * width + c];
}

// Values per column chunk: 4 vectors when n rows of them fit the L2 budget, else 1.
template <typename T>
static int64_t chunk_width(int64_t n) {
  const int64_t wide = 4 * Vec<T>::lanes;
  return n * wide * (int64_t)sizeof(T) <= L2_BUDGET ? wide : Vec<T>::lanes;
}

// x = S @ table for the 0/1 CSR matrix S (ptr, idx) and a dense (n, width) table: forward's x = S W^T with
// table = W^T (a spike adds a row of W^T). Shape (rows, width).
torch::Tensor spike_product(torch::Tensor ptr, torch::Tensor idx, torch::Tensor table) {
  const int64_t rows = ptr.numel() - 1, n = table.size(0), width = table.size(1);
  auto out = torch::empty({rows, width}, table.options());
  AT_DISPATCH_FLOATING_TYPES(table.scalar_type(), "spike_product", [&] {
    const int64_t* pp = ptr.data_ptr<int64_t>();
    const int32_t* ip = idx.data_ptr<int32_t>();
    const scalar_t* tp = table.data_ptr<scalar_t>();
    scalar_t* op = out.data_ptr<scalar_t>();
    const int64_t cw = chunk_width<scalar_t>(n);
    at::parallel_for(0, rows, 64, [&](int64_t lo, int64_t hi) {
      for (int64_t c0 = 0; c0 < width; c0 += cw)
        gather_chunk<scalar_t>(pp, ip, tp, op, lo, hi, width, c0, std::min(cw, width - c0));
    });
  });
  return out;
}

// S^T @ grad for the 0/1 CSR matrix S (ptr, idx) with n columns and a dense (rows, width) grad: the weight
// gradient (dL/dW)^T = S^T dL/dx, shape (n, width). Each spike adds a row of dL/dx.
torch::Tensor spike_weight_grad(torch::Tensor ptr, torch::Tensor idx, torch::Tensor grad, int64_t n) {
  const int64_t rows = ptr.numel() - 1, width = grad.size(1);
  auto acc = torch::empty({n, width}, grad.options());
  AT_DISPATCH_FLOATING_TYPES(grad.scalar_type(), "spike_weight_grad", [&] {
    const int64_t* pp = ptr.data_ptr<int64_t>();
    const int32_t* ip = idx.data_ptr<int32_t>();
    const scalar_t* gp = grad.data_ptr<scalar_t>();
    scalar_t* ap = acc.data_ptr<scalar_t>();
    const int64_t cw = chunk_width<scalar_t>(n), chunks = (width + cw - 1) / cw;
    at::parallel_for(0, chunks, 1, [&](int64_t lo, int64_t hi) {
      for (int64_t c = lo; c < hi; ++c)
        scatter_chunk<scalar_t>(pp, ip, gp, ap, rows, n, width, c * cw, std::min(cw, width - c * cw));
    });
  });
  return acc;
}

// Nonzeros per row of a dense (rows, n) matrix into ptr[1..rows].
template <typename T>
static void count_rows(const T* s, int64_t* pp, int64_t rows, int64_t n) {
  at::parallel_for(0, rows, 64, [&](int64_t lo, int64_t hi) {
    for (int64_t r = lo; r < hi; ++r) {
      const T* row = s + r * n;
      int64_t c = 0;
#pragma omp simd reduction(+ : c)
      for (int64_t j = 0; j < n; ++j) c += row[j] != T(0);
      pp[r + 1] = c;
    }
  });
}

// Column indices of the nonzeros of each row, ascending, at ip + ptr[r].
template <typename T>
static void fill_rows(const T* s, const int64_t* pp, int32_t* ip, int64_t rows, int64_t n) {
  at::parallel_for(0, rows, 64, [&](int64_t lo, int64_t hi) {
    for (int64_t r = lo; r < hi; ++r) {
      const T* row = s + r * n;
      int32_t* o = ip + pp[r];
      for (int64_t j = 0; j < n; ++j)
        if (row[j] != T(0)) *o++ = (int32_t)j;
    }
  });
}

// CSR indices of the nonzeros of a dense (rows, n) matrix, columns ascending in each row: {ptr, idx}.
std::vector<torch::Tensor> dense_to_csr(torch::Tensor spikes) {
  const int64_t rows = spikes.size(0), n = spikes.size(1);
  auto ptr = torch::empty({rows + 1}, torch::kInt64);
  int64_t* pp = ptr.data_ptr<int64_t>();
  torch::Tensor idx;
  AT_DISPATCH_FLOATING_TYPES(spikes.scalar_type(), "dense_to_csr", [&] {
    count_rows<scalar_t>(spikes.data_ptr<scalar_t>(), pp, rows, n);
    pp[0] = 0;
    for (int64_t r = 0; r < rows; ++r) pp[r + 1] += pp[r];
    idx = torch::empty({pp[rows]}, torch::kInt32);
    fill_rows<scalar_t>(spikes.data_ptr<scalar_t>(), pp, idx.data_ptr<int32_t>(), rows, n);
  });
  return {ptr, idx};
}

// CSR indices from (row, column) pairs by a stable counting sort on the row: columns keep their order in a row.
// With (column, row) pairs of a CSR matrix in row order this gives its transpose, rows ascending per column.
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
