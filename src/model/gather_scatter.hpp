#pragma once
// Sums over the pairs of a relation between rows (DimeNet's triplets, PaiNN's edges) as one loop
// each instead of an index_select, a product and an index_add over (pairs x width) tensors: those
// intermediates (and their derivatives, twice over in force training) were most of a water
// step's time and memory. Each function below is differentiable to any order: its derivatives
// are functions of the same family (the same sums with the index sides swapped, products of
// gathered rows, contractions), whose derivatives are again in it.
#include <array>
#include <cstdint>

#include <ATen/ATen.h>

namespace atomforge::model {

// A relation between rows of two tables: pair t joins row index[0][t] of one ("from") to row
// index[1][t] of the other ("to").
struct RowPairs {
  std::array<at::Tensor, 2> index;  // (pairs) int64 each
  std::array<int64_t, 2> rows{0, 0};  // the sizes of the two tables
  // The pairs grouped by their row on each side: pairs order[s][start[s][r]] .. order[s][start[s][r+1]-1]
  // have row r on side s.
  std::array<at::Tensor, 2> order, start;
  int64_t size() const { return index[0].size(0); }
};
RowPairs make_row_pairs(const at::Tensor& from, const at::Tensor& to, int64_t from_rows, int64_t to_rows);

// out (to_rows, C): out[to[t]] += a[from[t]] * w[t], for a (from_rows, C) and w (pairs, C). w
// may be narrower, (pairs, C / G): it then multiplies each of a's G groups of C / G columns (as
// w repeated G times along its rows would, without forming that).
at::Tensor gather_multiply_scatter(const at::Tensor& a, const at::Tensor& w, const RowPairs& pairs);

// out (pairs, C): out[t] = a[from[t]] * w[t], for a (from_rows, C) and w (pairs, C), without
// libtorch's index_select and its index_add adjoint. Differentiable to any order (its adjoint,
// the per-pair products summed onto the rows, and it are each other's derivatives).
at::Tensor gather_multiply(const at::Tensor& a, const at::Tensor& w, const RowPairs& pairs);

// out (to_rows, G * C), read as (to_rows, G, C): out[to[t]][g][c] += m[t][c] * d[t][g], for m
// (pairs, C) and d (pairs, G): PaiNN's direction messages, a per-edge gate times the edge
// direction, without the (pairs, G, C) products. Differentiable to any order: its derivatives
// contract a gathered output row with d over G or with m over C, and theirs are this sum again.
at::Tensor scatter_outer(const at::Tensor& m, const at::Tensor& d, const RowPairs& pairs);

// out (to_rows, C): out[to[t]] += sum_g a[t][g] * Y[from[t]][g], for Y (from_rows, G * C) read as
// (from_rows, G, C) and a (pairs, G): DimeNet's triplet sum with the angular basis (G per
// triplet) applied to per-edge messages already multiplied out for each basis function, so no
// per-triplet row wider than G exists. Differentiable to any order: its derivatives are an
// outer product of a with a gathered row summed onto Y's side, and the contraction of two
// gathered rows per pair, whose derivatives are again these three.
at::Tensor gather_contract_scatter(const at::Tensor& y, const at::Tensor& a, const RowPairs& pairs);

// out (pairs, 1): out[t] = x[from[t]] . y[to[t]], without gathering (pairs, C) copies (DimeNet's
// triplet angles from unit edge vectors). Its derivatives are gather_contract_scatter's family.
at::Tensor gather_dot(const at::Tensor& x, const at::Tensor& y, const RowPairs& pairs);

// Per-atom sums of per-edge rows: out (rows, C), out[centre[e]] += v[e] and
// out[neighbour[e]] += sign * v[e] (sign -1: forces from dE/d r_ij, +1: per-atom virials). One
// pass over the edges where libtorch's index_add on CPU runs an operator per index (about half a
// millisecond per call on 17k edges). Differentiable to any order: its adjoint is the gather
// w[centre[e]] + sign * w[neighbour[e]], and the other way round.
at::Tensor scatter_edge_ends(const at::Tensor& v, const at::Tensor& centre, const at::Tensor& neighbour, int64_t rows,
                             int64_t sign);

// Per-atom virials (rows, 9): half of each edge's -g r^T (g = dE/dr, both (E, 3)) onto each of its
// two ends, row-major 3 x 3. Inference only (not differentiable); on the CPU one pass over the
// edges without the (E, 9) products.
at::Tensor scatter_edge_virials(const at::Tensor& g, const at::Tensor& r, const at::Tensor& centre,
                                const at::Tensor& neighbour, int64_t rows);

}  // namespace atomforge::model
