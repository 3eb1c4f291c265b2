// SGMV / BGMV shrink and expand kernels. Work is cut into tiles of up to kTileTokens tokens
// of one entry (segment or, for BGMV, one token); every block resolves its own tile from the
// device-side table, so the host never needs the segment sizes.
#include "engine/kernels/cuda/sgmv.cuh"

#include <cuda_bf16.h>
#include <cuda_fp16.h>

#include "engine/kernels/cuda/device_math.cuh"

namespace lorad::cuda {
namespace {

using internal::FromFloat;
using internal::Load8;
using internal::ToFloat;
using internal::WarpSum;

constexpr int kTileTokens = 8;  // SGMV tokens per tile (BGMV tiles hold one token)
constexpr int kShrinkThreads = 256;
constexpr int kShrinkWarps = kShrinkThreads / 32;
constexpr int kShrinkRows = 2;       // rank rows per shrink block
constexpr int kExpandThreads = 128;  // output columns per expand block

template <bool kBgmv>
__host__ __device__ constexpr int TileTokens() {
  return kBgmv ? 1 : kTileTokens;
}

// Grid slots for the tiles. SGMV segment s owns slots [s + seg_start[s] / 8, ... + its tile
// count); these ranges are disjoint and all lie below num_entries + ceil(num_tokens / 8).
template <bool kBgmv>
int64_t TileSlots(const LoraBatch& b, int64_t num_tokens) {
  if (kBgmv) return num_tokens;
  return b.num_entries + (num_tokens + kTileTokens - 1) / kTileTokens;
}

struct Tile {
  int64_t t0;  // first token
  int count;   // tokens in the tile, 1..TileTokens
  int entry;   // weight table entry
  int rank;
};

// Resolves the tile of grid slot `slot`, the same answer in every thread of the block (must be
// called by all threads). Returns false when the slot holds no work.
template <bool kBgmv>
__device__ bool ResolveTile(const LoraBatch& b, int64_t num_tokens, int64_t slot, Tile* tile) {
  __shared__ int64_t s_t0;
  __shared__ int s_count, s_entry;
  if (kBgmv) {
    const int e = b.token_entry[slot];
    if (e < 0 || e >= b.num_entries) return false;
    tile->t0 = slot;
    tile->count = 1;
    tile->entry = e;
  } else {
    if (threadIdx.x == 0) s_entry = -1;
    __syncthreads();
    for (int s = threadIdx.x; s < b.num_entries; s += blockDim.x) {
      const int64_t begin = b.seg_start[s];
      const int64_t end = ::min(static_cast<int64_t>(b.seg_start[s + 1]), num_tokens);
      if (begin < 0 || end <= begin) continue;
      const int64_t base = s + begin / kTileTokens;
      const int64_t tiles = (end - begin + kTileTokens - 1) / kTileTokens;
      if (slot >= base && slot < base + tiles) {
        const int64_t t0 = begin + (slot - base) * kTileTokens;
        s_t0 = t0;
        s_count = static_cast<int>(::min(static_cast<int64_t>(kTileTokens), end - t0));
        s_entry = s;
      }
    }
    __syncthreads();
    if (s_entry < 0) return false;
    tile->t0 = s_t0;
    tile->count = s_count;
    tile->entry = s_entry;
  }
  tile->rank = b.ranks[tile->entry];
  return tile->rank > 0 && tile->rank <= b.max_rank;
}

// grid (slots, ceil(max_rank / kShrinkRows)). Each block computes kShrinkRows rank rows for the
// tokens of one tile; its 8 warps split d_in and reduce through shared memory.
template <typename T, bool kBgmv>
__global__ void __launch_bounds__(kShrinkThreads)
    ShrinkKernel(LoraBatch b, const T* __restrict__ x, int64_t ldx, int64_t num_tokens, int d_in,
                 float* __restrict__ v, int64_t ldv, bool x_vec_ok) {
  constexpr int kTT = TileTokens<kBgmv>();
  __shared__ float partial[kShrinkWarps][kShrinkRows * kTT];
  Tile tile;
  if (!ResolveTile<kBgmv>(b, num_tokens, blockIdx.x, &tile)) return;
  const int row0 = blockIdx.y * kShrinkRows;
  const T* a = static_cast<const T*>(b.a[tile.entry]);
  if (row0 >= tile.rank || a == nullptr) return;
  const int nrows = min(kShrinkRows, tile.rank - row0);
  a += static_cast<int64_t>(row0) * d_in;
  const T* xt = x + tile.t0 * ldx;

  float acc[kShrinkRows][kTT];
#pragma unroll
  for (int r = 0; r < kShrinkRows; ++r)
#pragma unroll
    for (int i = 0; i < kTT; ++i) acc[r][i] = 0.0f;

  if (x_vec_ok && (reinterpret_cast<uintptr_t>(a) & 15) == 0) {
    const int groups = d_in / 8;
    for (int g = threadIdx.x; g < groups; g += kShrinkThreads) {
      float af[kShrinkRows][8];
#pragma unroll
      for (int r = 0; r < kShrinkRows; ++r) {
        if (r < nrows) {
          Load8(a + static_cast<int64_t>(r) * d_in + g * 8, af[r]);
        } else {
#pragma unroll
          for (int e = 0; e < 8; ++e) af[r][e] = 0.0f;
        }
      }
#pragma unroll
      for (int i = 0; i < kTT; ++i) {
        if (i < tile.count) {
          float xf[8];
          Load8(xt + i * ldx + g * 8, xf);
#pragma unroll
          for (int r = 0; r < kShrinkRows; ++r)
#pragma unroll
            for (int e = 0; e < 8; ++e) acc[r][i] = fmaf(af[r][e], xf[e], acc[r][i]);
        }
      }
    }
  } else {
    for (int k = threadIdx.x; k < d_in; k += kShrinkThreads) {
      float af[kShrinkRows];
#pragma unroll
      for (int r = 0; r < kShrinkRows; ++r)
        af[r] = r < nrows ? ToFloat(a[static_cast<int64_t>(r) * d_in + k]) : 0.0f;
#pragma unroll
      for (int i = 0; i < kTT; ++i) {
        if (i < tile.count) {
          const float xf = ToFloat(xt[i * ldx + k]);
#pragma unroll
          for (int r = 0; r < kShrinkRows; ++r) acc[r][i] = fmaf(af[r], xf, acc[r][i]);
        }
      }
    }
  }

  const int warp = threadIdx.x / 32, lane = threadIdx.x % 32;
#pragma unroll
  for (int r = 0; r < kShrinkRows; ++r)
#pragma unroll
    for (int i = 0; i < kTT; ++i) {
      const float s = WarpSum(acc[r][i]);
      if (lane == 0) partial[warp][r * kTT + i] = s;
    }
  __syncthreads();
  const int idx = threadIdx.x;  // r * kTT + i
  if (idx < kShrinkRows * kTT) {
    const int r = idx / kTT, i = idx % kTT;
    if (r < nrows && i < tile.count) {
      float s = 0.0f;
#pragma unroll
      for (int w = 0; w < kShrinkWarps; ++w) s += partial[w][idx];
      v[(tile.t0 + i) * ldv + row0 + r] = s;
    }
  }
}

// grid (slots, ceil(d_out / kExpandThreads)). One thread per output column: it reads row o of
// B (rank contiguous values) once and applies it to every token of the tile.
template <typename T, bool kBgmv>
__global__ void __launch_bounds__(kExpandThreads)
    ExpandKernel(LoraBatch b, const float* __restrict__ v, int64_t ldv, int64_t num_tokens,
                 int d_out, T* __restrict__ y, int64_t ldy) {
  constexpr int kTT = TileTokens<kBgmv>();
  __shared__ __align__(16) float vs[kTT][kLoraMaxRank];
  Tile tile;
  if (!ResolveTile<kBgmv>(b, num_tokens, blockIdx.x, &tile)) return;
  const T* bw = static_cast<const T*>(b.b[tile.entry]);
  if (bw == nullptr) return;
  const int rank = tile.rank;
  const float scale = b.scales[tile.entry];
  for (int idx = threadIdx.x; idx < tile.count * rank; idx += kExpandThreads) {
    const int i = idx / rank, j = idx % rank;
    vs[i][j] = v[(tile.t0 + i) * ldv + j];
  }
  __syncthreads();
  const int o = blockIdx.y * kExpandThreads + threadIdx.x;
  if (o >= d_out) return;
  const T* brow = bw + static_cast<int64_t>(o) * rank;
  float acc[kTT];
#pragma unroll
  for (int i = 0; i < kTT; ++i) acc[i] = 0.0f;
  if (rank % 8 == 0 && (reinterpret_cast<uintptr_t>(bw) & 15) == 0) {
    for (int j = 0; j < rank; j += 8) {
      float bf[8];
      Load8(brow + j, bf);
#pragma unroll
      for (int i = 0; i < kTT; ++i) {
        if (i < tile.count) {
#pragma unroll
          for (int e = 0; e < 8; ++e) acc[i] = fmaf(bf[e], vs[i][j + e], acc[i]);
        }
      }
    }
  } else {
    for (int j = 0; j < rank; ++j) {
      const float bj = ToFloat(brow[j]);
#pragma unroll
      for (int i = 0; i < kTT; ++i)
        if (i < tile.count) acc[i] = fmaf(bj, vs[i][j], acc[i]);
    }
  }
#pragma unroll
  for (int i = 0; i < kTT; ++i) {
    if (i < tile.count) {
      T* out = y + (tile.t0 + i) * ldy + o;
      *out = FromFloat<T>(fmaf(scale, acc[i], ToFloat(*out)));
    }
  }
}

bool ValidBatch(DType dtype, const LoraBatch& b, bool expand) {
  if (dtype != DType::kF16 && dtype != DType::kBF16) return false;
  if ((b.seg_start == nullptr) == (b.token_entry == nullptr)) return false;
  if (b.num_entries < 0 || b.max_rank < 1 || b.max_rank > kLoraMaxRank) return false;
  if (b.num_entries > 0 && (b.ranks == nullptr || b.a == nullptr)) return false;
  if (expand && b.num_entries > 0 && (b.b == nullptr || b.scales == nullptr)) return false;
  return true;
}

constexpr int64_t kMaxGridY = 65535;
constexpr int64_t kMaxGridX = 2147483647;

template <typename T, bool kBgmv>
cudaError_t LaunchShrink(const LoraBatch& b, const void* x, int64_t ldx, int64_t num_tokens,
                         int64_t d_in, float* v, int64_t ldv, cudaStream_t stream) {
  const int64_t slots = TileSlots<kBgmv>(b, num_tokens);
  const dim3 grid(static_cast<unsigned>(slots),
                  static_cast<unsigned>((b.max_rank + kShrinkRows - 1) / kShrinkRows));
  const bool x_vec_ok = d_in % 8 == 0 && ldx % 8 == 0 && (reinterpret_cast<uintptr_t>(x) & 15) == 0;
  ShrinkKernel<T, kBgmv><<<grid, kShrinkThreads, 0, stream>>>(
      b, static_cast<const T*>(x), ldx, num_tokens, static_cast<int>(d_in), v, ldv, x_vec_ok);
  return cudaGetLastError();
}

template <typename T, bool kBgmv>
cudaError_t LaunchExpand(const LoraBatch& b, const float* v, int64_t ldv, int64_t num_tokens,
                         int64_t d_out, void* y, int64_t ldy, cudaStream_t stream) {
  const int64_t slots = TileSlots<kBgmv>(b, num_tokens);
  const dim3 grid(static_cast<unsigned>(slots),
                  static_cast<unsigned>((d_out + kExpandThreads - 1) / kExpandThreads));
  ExpandKernel<T, kBgmv><<<grid, kExpandThreads, 0, stream>>>(
      b, v, ldv, num_tokens, static_cast<int>(d_out), static_cast<T*>(y), ldy);
  return cudaGetLastError();
}

}  // namespace

size_t SgmvWorkspaceBytes(int64_t num_tokens, int32_t max_rank) {
  if (num_tokens <= 0 || max_rank <= 0) return 0;
  const size_t bytes = static_cast<size_t>(num_tokens) * static_cast<size_t>(max_rank) * 4;
  return (bytes + 255) / 256 * 256;
}

cudaError_t SgmvShrink(DType dtype, const LoraBatch& batch, const void* x, int64_t ldx,
                       int64_t num_tokens, int64_t d_in, float* v, int64_t ldv,
                       cudaStream_t stream) {
  if (!ValidBatch(dtype, batch, /*expand=*/false) || num_tokens < 0 || d_in < 0 ||
      d_in > INT32_MAX || ldx < d_in || ldv < batch.max_rank) {
    return cudaErrorInvalidValue;
  }
  if (num_tokens == 0 || batch.num_entries == 0) return cudaSuccess;
  if (x == nullptr || v == nullptr) return cudaErrorInvalidValue;
  const bool bgmv = batch.token_entry != nullptr;
  if (TileSlots<false>(batch, num_tokens) > kMaxGridX) return cudaErrorInvalidValue;
  if (dtype == DType::kF16) {
    return bgmv ? LaunchShrink<__half, true>(batch, x, ldx, num_tokens, d_in, v, ldv, stream)
                : LaunchShrink<__half, false>(batch, x, ldx, num_tokens, d_in, v, ldv, stream);
  }
  return bgmv ? LaunchShrink<__nv_bfloat16, true>(batch, x, ldx, num_tokens, d_in, v, ldv, stream)
              : LaunchShrink<__nv_bfloat16, false>(batch, x, ldx, num_tokens, d_in, v, ldv, stream);
}

cudaError_t SgmvExpand(DType dtype, const LoraBatch& batch, const float* v, int64_t ldv,
                       int64_t num_tokens, int64_t d_out, void* y, int64_t ldy,
                       cudaStream_t stream) {
  if (!ValidBatch(dtype, batch, /*expand=*/true) || num_tokens < 0 || d_out < 0 || ldy < d_out ||
      ldv < batch.max_rank || (d_out + kExpandThreads - 1) / kExpandThreads > kMaxGridY) {
    return cudaErrorInvalidValue;
  }
  if (num_tokens == 0 || batch.num_entries == 0 || d_out == 0) return cudaSuccess;
  if (y == nullptr || v == nullptr) return cudaErrorInvalidValue;
  const bool bgmv = batch.token_entry != nullptr;
  if (TileSlots<false>(batch, num_tokens) > kMaxGridX) return cudaErrorInvalidValue;
  if (dtype == DType::kF16) {
    return bgmv ? LaunchExpand<__half, true>(batch, v, ldv, num_tokens, d_out, y, ldy, stream)
                : LaunchExpand<__half, false>(batch, v, ldv, num_tokens, d_out, y, ldy, stream);
  }
  return bgmv
             ? LaunchExpand<__nv_bfloat16, true>(batch, v, ldv, num_tokens, d_out, y, ldy, stream)
             : LaunchExpand<__nv_bfloat16, false>(batch, v, ldv, num_tokens, d_out, y, ldy, stream);
}

cudaError_t Sgmv(DType dtype, const LoraBatch& batch, const void* x, int64_t ldx, int64_t d_in,
                 void* y, int64_t ldy, int64_t d_out, int64_t num_tokens, void* workspace,
                 size_t workspace_bytes, cudaStream_t stream) {
  // Check the expand arguments too, so that nothing is launched when either step would refuse.
  if (!ValidBatch(dtype, batch, /*expand=*/true) || num_tokens < 0 || d_in < 0 || ldx < d_in ||
      d_out < 0 || ldy < d_out) {
    return cudaErrorInvalidValue;
  }
  if (workspace_bytes < SgmvWorkspaceBytes(num_tokens, batch.max_rank) ||
      (reinterpret_cast<uintptr_t>(workspace) & 15) != 0) {
    return cudaErrorInvalidValue;
  }
  if (num_tokens == 0 || batch.num_entries == 0) return cudaSuccess;
  float* v = static_cast<float*>(workspace);
  const cudaError_t err =
      SgmvShrink(dtype, batch, x, ldx, num_tokens, d_in, v, batch.max_rank, stream);
  if (err != cudaSuccess) return err;
  return SgmvExpand(dtype, batch, v, batch.max_rank, num_tokens, d_out, y, ldy, stream);
}

}  // namespace lorad::cuda
