// The hand-written kernels of model/segment_contraction, model/gather_scatter, model/dense_mm,
// model/descriptor_product, model/row_groups, model/suffix_sums and model/switched_environment
// against libtorch's own operators (index_select, index_add, bmm, mm, flip and cumsum, the
// environment's element-wise formula): values, first and second derivatives (third for the
// descriptor product), float64 and float32.
#include <functional>

#include <gtest/gtest.h>
#include <ATen/Parallel.h>
#include <torch/csrc/autograd/autograd.h>

#include "tensor_test_util.hpp"
#include "model/cpu_kernels.hpp"
#include "model/dense_mm.hpp"
#include "model/descriptor_product.hpp"
#include "model/gather_scatter.hpp"
#include "model/linear.hpp"
#include "model/row_groups.hpp"
#include "model/segment_contraction.hpp"
#include "model/suffix_sums.hpp"
#include "model/switched_environment.hpp"

namespace atomforge::model {
namespace {

using torch::autograd::grad;

using testing::expect_close;

// f and reference take the same inputs; compares f, d(sum sin f)/dx and the gradient of the
// squared norm of those first derivatives (second derivatives through every input).
template <typename F, typename R>
void expect_same_derivatives(F f, R reference, const std::vector<at::Tensor>& inputs, double tolerance) {
  auto evaluate = [&](auto fn) {
    std::vector<at::Tensor> x;
    for (const auto& t : inputs) x.push_back(t.detach().clone().set_requires_grad(true));
    const at::Tensor y = fn(x);
    const auto first = grad({y.sin().sum()}, x, {}, /*retain_graph=*/true, /*create_graph=*/true);
    at::Tensor norm = at::zeros({}, y.options());
    for (const auto& d : first) norm = norm + (d * d).sum();
    const auto second = grad({norm}, x);
    std::vector<at::Tensor> out = {y.detach()};
    for (const auto& d : first) out.push_back(d.detach());
    for (const auto& d : second) out.push_back(d);
    return out;
  };
  const auto got = evaluate(f), want = evaluate(reference);
  const char* names[] = {"value", "first derivative", "second derivative"};
  for (std::size_t k = 0; k < got.size(); ++k)
    expect_close(got[k], want[k], tolerance, names[k == 0 ? 0 : (k <= inputs.size() ? 1 : 2)]);
}

struct Case {
  Segments segments;
  int64_t width, m;
};

// Centres with 0..7 rows (some empty).
Case random_case(at::Generator& generator) {
  const int64_t centres = 13, width = 4, m = 9;
  const at::Tensor counts = at::randint(0, 8, {centres}, generator, at::kLong);
  EXPECT_TRUE((counts == 0).any().item<bool>()) << "the case should have a centre without rows";
  at::Tensor start = at::zeros({centres + 1}, at::kLong);
  start.narrow(0, 1, centres).copy_(counts.cumsum(0));
  const at::Tensor centre = at::repeat_interleave(at::arange(centres, at::kLong), counts);
  return {{start, centre}, width, m};
}

// Random pairs between a table of from_rows rows and one of to_rows, naming only rows below
// from_named and to_named (the others have no pairs).
struct Relation {
  at::Tensor from, to;
  model::RowPairs pairs;
};
Relation random_relation(at::Generator& generator, int64_t from_rows, int64_t to_rows, int64_t pairs,
                         int64_t from_named, int64_t to_named) {
  Relation r{at::randint(0, from_named, {pairs}, generator, at::kLong),
             at::randint(0, to_named, {pairs}, generator, at::kLong), {}};
  r.pairs = model::make_row_pairs(r.from, r.to, from_rows, to_rows);
  return r;
}

class SegmentContraction : public ::testing::TestWithParam<at::ScalarType> {
 protected:
  // The parameter's dtype, and how closely it agrees with a reference computed in it.
  const at::TensorOptions options = at::TensorOptions().dtype(GetParam());
  const double tolerance = GetParam() == at::kDouble ? 1e-12 : 1e-5;
};

TEST_P(SegmentContraction, MatchesIndexAddOfOuterProducts) {
  at::Generator generator = at::detail::createCPUGenerator(3);
  const Case c = random_case(generator);
  const int64_t rows = c.segments.rows();
  const at::Tensor env = at::randn({rows, c.width}, generator, options);
  const at::Tensor g = at::randn({rows, c.m}, generator, options);
  expect_same_derivatives(
      [&](const std::vector<at::Tensor>& x) { return contract_segments(x[0], x[1], c.segments); },
      [&](const std::vector<at::Tensor>& x) {
        const at::Tensor outer = x[0].unsqueeze(2) * x[1].unsqueeze(1);
        return at::zeros({c.segments.centres(), c.width, c.m}, x[0].options()).index_add(0, c.segments.centre, outer);
      },
      {env, g}, tolerance);
}

// Derivatives of f up to the third order: of sum sin f, of the squared norm of that, of the
// squared norm of that.
std::vector<at::Tensor> three_derivatives(const std::function<at::Tensor(const at::Tensor&)>& f, const at::Tensor& x0) {
  const at::Tensor x = x0.detach().clone().set_requires_grad(true);
  const at::Tensor y = f(x);
  const at::Tensor first = grad({y.sin().sum()}, {x}, {}, true, true)[0];
  const at::Tensor second = grad({(first * first).sum()}, {x}, {}, true, true)[0];
  const at::Tensor third = grad({(second * second).sum()}, {x})[0];
  return {y.detach(), first.detach(), second.detach(), third};
}

TEST_P(SegmentContraction, DescriptorProductMatchesBmmToTheThirdDerivative) {
  at::Generator generator = at::detail::createCPUGenerator(5);
  // 37 centres: several parallel tasks; m2 = 3 of m1 = 10 columns, and all of them.
  const at::Tensor t = at::randn({37, 4, 10}, generator, options);
  const double tolerance = GetParam() == at::kDouble ? 1e-11 : 2e-4;
  for (const int64_t m2 : {int64_t{3}, int64_t{10}}) {
    const auto got = three_derivatives([&](const at::Tensor& x) { return descriptor_product(x, m2, 0.3); }, t);
    const auto want = three_derivatives(
        [&](const at::Tensor& x) { return at::bmm(x.transpose(1, 2), x.narrow(2, 0, m2)).reshape({37, -1}) * 0.3; }, t);
    const char* names[] = {"value", "first derivative", "second derivative", "third derivative"};
    for (std::size_t k = 0; k < got.size(); ++k) expect_close(got[k], want[k], tolerance, names[k]);
  }
}

TEST_P(SegmentContraction, DescriptorProductOfEmptyOperands) {
  EXPECT_EQ(descriptor_product(at::ones({0, 4, 5}, options), 2, 1.0).sizes(), at::IntArrayRef({0, 10}));
  EXPECT_EQ(descriptor_product(at::ones({3, 4, 5}, options), 0, 1.0).sizes(), at::IntArrayRef({3, 0}));
  EXPECT_TRUE(at::equal(descriptor_product(at::ones({2, 0, 5}, options), 2, 1.0), at::zeros({2, 10}, options)));
  EXPECT_THROW(descriptor_product(at::ones({3, 4, 5}, options), 6, 1.0), std::exception);
}

// Row-major, transposed, column-sliced and broadcast (stride 0) operands; products large enough
// to be split over threads (1 to 3), and 1 x 1.
TEST_P(SegmentContraction, DenseMmMatchesMmOnEveryLayout) {
  at::Generator generator = at::detail::createCPUGenerator(9);
  const double tolerance = GetParam() == at::kDouble ? 1e-12 : 2e-5;
  const int threads_before = at::get_num_threads();
  struct Shape {
    int64_t m, k, n;
  };
  for (const Shape s : {Shape{1, 1, 1}, Shape{7, 3, 5}, Shape{131, 97, 61}})
    for (int threads : {1, 3}) {
      at::set_num_threads(threads);
      const at::Tensor a = at::randn({s.m, s.k}, generator, options);
      const at::Tensor a_wide = at::randn({s.m, s.k + 4}, generator, options);
      const at::Tensor b = at::randn({s.k, s.n}, generator, options);
      const at::Tensor b_transposed = at::randn({s.n, s.k}, generator, options);
      const at::Tensor bias = at::randn({s.n}, generator, options);
      auto layouts = [&](auto product, auto add_product) {
        return [=](const std::vector<at::Tensor>& x) {
          // x: a, a_wide, b, b_transposed, bias
          return at::cat({product(x[0], x[2]).reshape(-1), product(x[1].narrow(1, 2, s.k), x[3].t()).reshape(-1),
                          product(x[2].t(), x[0].t()).reshape(-1),
                          product(x[4].narrow(0, 0, 1).expand({s.m, 1}), x[4].narrow(0, 0, 1).view({1, 1})
                                                                                 .expand({1, s.n}))
                              .reshape(-1),
                          add_product(x[4], x[0], x[2]).reshape(-1)});
        };
      };
      expect_same_derivatives(
          layouts([](const at::Tensor& x, const at::Tensor& y) { return dense_mm(x, y); },
                  [](const at::Tensor& c, const at::Tensor& x, const at::Tensor& y) { return dense_addmm(c, x, y); }),
          layouts([](const at::Tensor& x, const at::Tensor& y) { return at::mm(x, y); },
                  [](const at::Tensor& c, const at::Tensor& x, const at::Tensor& y) { return at::addmm(c, x, y); }),
          {a, a_wide, b, b_transposed, bias}, tolerance);
    }
  at::set_num_threads(threads_before);
}

// Training through a weight: forces (the derivative along the input) taken twice from one
// evaluation, a loss on both, its gradient along the weight without a graph (the first force
// pass's weight gradient is routed to the product's own backward) and with one, and derivatives
// of that: the same as at::mm's.
TEST_P(SegmentContraction, DenseMmTrainingThroughAWeightMatchesMm) {
  at::Generator generator = at::detail::createCPUGenerator(10);
  const double tolerance = GetParam() == at::kDouble ? 1e-11 : 2e-4;
  // A weight narrower than the batch, and one wider (its products split by columns).
  for (const int64_t width : {4, 40}) {
    const at::Tensor a0 = at::randn({9, 6}, generator, options), w0 = at::randn({6, width}, generator, options);
    auto run = [&](auto product, bool with_graph) {
      const at::Tensor a = a0.clone().set_requires_grad(true), w = w0.clone().set_requires_grad(true);
      const at::Tensor e = at::tanh(product(a, w)).pow(2).sum();
      const at::Tensor f1 = grad({e}, {a}, {}, true, true)[0];
      const at::Tensor f2 = grad({e}, {a}, {}, true, true)[0];
      const at::Tensor loss = (f1 * f1).sum() + 0.5 * (f2 * f2 * f2).sum() + e;
      std::vector<at::Tensor> out = {f1.detach()};
      if (!with_graph) {
        for (const auto& d : grad({loss}, {a, w})) out.push_back(d);
        return out;
      }
      const auto first = grad({loss}, {a, w}, {}, true, true);
      for (const auto& d : grad({first[1].pow(2).sum() + first[0].sum()}, {a, w})) out.push_back(d);
      return out;
    };
    for (bool with_graph : {false, true}) {
      const auto got = run([](const at::Tensor& x, const at::Tensor& y) { return dense_mm(x, y); }, with_graph);
      const auto want = run([](const at::Tensor& x, const at::Tensor& y) { return at::mm(x, y); }, with_graph);
      for (std::size_t k = 0; k < got.size(); ++k)
        expect_close(got[k], want[k], tolerance, (with_graph ? "third order, output " : "output ") + std::to_string(k));
    }
  }
}

// A kept transpose (TransposeCache) against at::mm's forces, evaluation after evaluation, while
// the weight stays, is changed in place (its version bumped, as by an optimiser step or a
// broadcast), is replaced by another tensor, and gets new storage under the same tensor.
TEST_P(SegmentContraction, DenseMmWithAKeptTransposeFollowsTheWeight) {
  at::Generator generator = at::detail::createCPUGenerator(14);
  const double tolerance = GetParam() == at::kDouble ? 1e-11 : 2e-4;
  const at::Tensor a0 = at::randn({9, 6}, generator, options);
  at::Tensor w = at::randn({6, 40}, generator, options).set_requires_grad(true);
  TransposeCache cache;
  auto check = [&](const std::string& what) {
    auto forces = [&](auto product) {
      const at::Tensor a = a0.clone().set_requires_grad(true);
      return grad({at::tanh(product(a)).pow(2).sum()}, {a})[0];
    };
    expect_close(forces([&](const at::Tensor& a) { return dense_mm(a, w, &cache); }),
                 forces([&](const at::Tensor& a) { return at::mm(a, w); }), tolerance, what);
  };
  check("first evaluation");
  check("the same weight again");
  {
    const at::NoGradGuard no_grad;
    w.mul_(-0.5);
  }
  check("after an in-place change");
  w = at::randn({6, 40}, generator, options).set_requires_grad(true);
  check("another tensor");
  {
    const at::NoGradGuard no_grad;
    w.set_data(at::randn({6, 40}, generator, options));
  }
  check("new storage under the same tensor");
}

TEST_P(SegmentContraction, DenseMmOfEmptyOperands) {
  EXPECT_EQ(dense_mm(at::ones({0, 3}, options), at::ones({3, 4}, options)).sizes(), at::IntArrayRef({0, 4}));
  EXPECT_TRUE(at::equal(dense_mm(at::ones({2, 0}, options), at::ones({0, 4}, options)), at::zeros({2, 4}, options)));
}

TEST_P(SegmentContraction, GatherMultiplyScatterMatchesIndexAdd) {
  at::Generator generator = at::detail::createCPUGenerator(9);
  // Rows of two tables of different sizes joined by random pairs (repeats, and rows no pair names).
  const int64_t from_rows = 11, to_rows = 7, pairs = 40, width = 5;
  const Relation r = random_relation(generator, from_rows, to_rows, pairs, from_rows - 2, to_rows - 1);
  const at::Tensor a = at::randn({from_rows, width}, generator, options);
  const at::Tensor w = at::randn({pairs, width}, generator, options);
  expect_same_derivatives(
      [&](const std::vector<at::Tensor>& x) { return gather_multiply_scatter(x[0], x[1], r.pairs); },
      [&](const std::vector<at::Tensor>& x) {
        return at::zeros({to_rows, width}, x[0].options()).index_add(0, r.to, x[0].index_select(0, r.from) * x[1]);
      },
      {a, w}, tolerance);
}

// A narrower w multiplies each of a's groups: as w repeated along its rows, to the second derivative.
TEST_P(SegmentContraction, GatherMultiplyScatterWithGroupsMatchesRepeatedWeights) {
  at::Generator generator = at::detail::createCPUGenerator(19);
  const int64_t from_rows = 9, to_rows = 6, pairs = 30, width = 4, groups = 3;
  const Relation r = random_relation(generator, from_rows, to_rows, pairs, from_rows - 1, to_rows - 1);
  const at::Tensor a = at::randn({from_rows, groups * width}, generator, options);
  const at::Tensor w = at::randn({pairs, width}, generator, options);
  expect_same_derivatives(
      [&](const std::vector<at::Tensor>& x) { return gather_multiply_scatter(x[0], x[1], r.pairs); },
      [&](const std::vector<at::Tensor>& x) {
        return at::zeros({to_rows, groups * width}, x[0].options())
            .index_add(0, r.to, x[0].index_select(0, r.from) * x[1].repeat({1, groups}));
      },
      {a, w}, tolerance);
  EXPECT_THROW(gather_multiply_scatter(a, at::randn({pairs, 5}, generator, options), r.pairs), c10::Error);
  EXPECT_THROW(gather_multiply_scatter(a.narrow(0, 0, 4), w, r.pairs), c10::Error);
}

// Gathered rows times per-pair rows (a `from` row no pair names, others named several times).
TEST_P(SegmentContraction, GatherMultiplyMatchesIndexSelectTimesRows) {
  at::Generator generator = at::detail::createCPUGenerator(29);
  const int64_t from_rows = 7, to_rows = 5, pairs = 20, width = 6;
  const Relation r = random_relation(generator, from_rows, to_rows, pairs, from_rows - 1, to_rows);
  const at::Tensor a = at::randn({from_rows, width}, generator, options);
  const at::Tensor w = at::randn({pairs, width}, generator, options);
  expect_same_derivatives([&](const std::vector<at::Tensor>& x) { return model::gather_multiply(x[0], x[1], r.pairs); },
                          [&](const std::vector<at::Tensor>& x) { return x[0].index_select(0, r.from) * x[1]; }, {a, w},
                          tolerance);
  EXPECT_THROW(model::gather_multiply(a, w.narrow(1, 0, 2), r.pairs), c10::Error);
}

// Outer products of per-pair rows summed onto the `to` side (a `to` row without pairs included;
// 21 columns: a block the sums keep in registers and a remainder).
TEST_P(SegmentContraction, ScatterOuterMatchesIndexAddOfProducts) {
  at::Generator generator = at::detail::createCPUGenerator(23);
  const int64_t from_rows = 8, to_rows = 6, pairs = 25, width = 21, groups = 3;
  const Relation r = random_relation(generator, from_rows, to_rows, pairs, from_rows, to_rows - 1);
  const at::Tensor m = at::randn({pairs, width}, generator, options);
  const at::Tensor d = at::randn({pairs, groups}, generator, options);
  expect_same_derivatives([&](const std::vector<at::Tensor>& x) { return model::scatter_outer(x[0], x[1], r.pairs); },
                          [&](const std::vector<at::Tensor>& x) {
                            const at::Tensor outer = (x[1].unsqueeze(2) * x[0].unsqueeze(1)).reshape({pairs, -1});
                            return at::zeros({to_rows, groups * width}, x[0].options()).index_add(0, r.to, outer);
                          },
                          {m, d}, tolerance);
  EXPECT_THROW(model::scatter_outer(m.narrow(0, 0, 3), d, r.pairs), c10::Error);
}

// The libtorch compositions that other devices run (model/cpu_kernels.hpp) against the kernels, for
// the pair sums no model reaches through the composed path on the CPU (PaiNN's composed path
// indexes its messages directly; test_generic_kernels.cpp covers the others).
TEST_P(SegmentContraction, ComposedPairSumsMatchTheKernels) {
  at::Generator generator = at::detail::createCPUGenerator(31);
  const int64_t from_rows = 9, to_rows = 6, pairs = 30, width = 4, groups = 3;
  const Relation r = random_relation(generator, from_rows, to_rows, pairs, from_rows - 1, to_rows - 1);
  const at::Tensor a = at::randn({from_rows, groups * width}, generator, options);
  const at::Tensor w = at::randn({pairs, width}, generator, options);
  const at::Tensor m = at::randn({pairs, width}, generator, options);
  const at::Tensor d = at::randn({pairs, groups}, generator, options);
  const std::vector<std::pair<std::function<at::Tensor(const std::vector<at::Tensor>&)>, std::vector<at::Tensor>>> cases = {
      {[&](const std::vector<at::Tensor>& x) { return gather_multiply_scatter(x[0], x[1], r.pairs); }, {a, w}},
      {[&](const std::vector<at::Tensor>& x) { return gather_multiply(x[0], x[1], r.pairs); }, {m.narrow(0, 0, from_rows), w}},
      {[&](const std::vector<at::Tensor>& x) { return scatter_outer(x[0], x[1], r.pairs); }, {m, d}}};
  for (const auto& [f, inputs] : cases) {
    const auto composed = [&f = f](const std::vector<at::Tensor>& x) {
      const GenericKernelsScope scope;
      return f(x);
    };
    expect_same_derivatives(composed, f, inputs, tolerance);
  }
}

// Gathered (G, C) rows contracted with per-pair weights over G, summed onto the `to` side (a
// `from` row no pair names, a `to` row without pairs; C = 21 as above). Second derivatives run
// all three functions of the family, each in both directions.
TEST_P(SegmentContraction, GatherContractScatterMatchesIndexAddOfContractions) {
  at::Generator generator = at::detail::createCPUGenerator(37);
  const int64_t from_rows = 8, to_rows = 6, pairs = 25, width = 21, groups = 3;
  const Relation r = random_relation(generator, from_rows, to_rows, pairs, from_rows - 1, to_rows - 1);
  const at::Tensor y = at::randn({from_rows, groups * width}, generator, options);
  const at::Tensor a = at::randn({pairs, groups}, generator, options);
  expect_same_derivatives(
      [&](const std::vector<at::Tensor>& x) { return model::gather_contract_scatter(x[0], x[1], r.pairs); },
      [&](const std::vector<at::Tensor>& x) {
        const at::Tensor rows = x[0].index_select(0, r.from).view({pairs, groups, width});
        return at::zeros({to_rows, width}, x[0].options()).index_add(0, r.to, (rows * x[1].unsqueeze(2)).sum(1));
      },
      {y, a}, tolerance);
  EXPECT_THROW(model::gather_contract_scatter(y, a.narrow(1, 0, 2), r.pairs), c10::Error);
  EXPECT_THROW(model::gather_contract_scatter(y.narrow(0, 0, 4), a, r.pairs), c10::Error);
}

// Dot products of rows gathered from both sides (one table on both sides, as for DimeNet's
// angles: the derivative sums both uses).
TEST_P(SegmentContraction, GatherDotMatchesIndexSelectedRows) {
  at::Generator generator = at::detail::createCPUGenerator(41);
  const int64_t rows = 9, pairs = 30, width = 3;
  const Relation r = random_relation(generator, rows, rows, pairs, rows - 1, rows);
  const at::Tensor u = at::randn({rows, width}, generator, options);
  expect_same_derivatives([&](const std::vector<at::Tensor>& x) { return model::gather_dot(x[0], x[0], r.pairs); },
                          [&](const std::vector<at::Tensor>& x) {
                            return (x[0].index_select(0, r.from) * x[0].index_select(0, r.to)).sum(1, true);
                          },
                          {u}, tolerance);
  EXPECT_THROW(model::gather_dot(u, u.narrow(1, 0, 2), r.pairs), c10::Error);
}

// 40 edges between rows 0 .. 8 of 11 (rows 9 and 10 have no edge).
struct RandomEdges {
  static constexpr int64_t rows = 11, edges = 40;
  at::Tensor centre, neighbour;
  explicit RandomEdges(at::Generator& generator)
      : centre(at::randint(0, 9, {edges}, generator, at::kLong)),
        neighbour(at::randint(0, 9, {edges}, generator, at::kLong)) {}
};

TEST_P(SegmentContraction, ScatterEdgeEndsMatchesIndexAdd) {
  at::Generator generator = at::detail::createCPUGenerator(8);
  const RandomEdges ends(generator);
  const int64_t rows = RandomEdges::rows;
  const at::Tensor &centre = ends.centre, &neighbour = ends.neighbour;
  const at::Tensor v = at::randn({RandomEdges::edges, 3}, generator, options);
  for (int64_t sign : {-1, 1})
    expect_same_derivatives(
        [&](const std::vector<at::Tensor>& x) { return scatter_edge_ends(x[0], centre, neighbour, rows, sign); },
        [&](const std::vector<at::Tensor>& x) {
          return at::zeros({rows, 3}, x[0].options()).index_add(0, centre, x[0]).index_add(0, neighbour, sign * x[0]);
        },
        {v}, tolerance);
  EXPECT_THROW(scatter_edge_ends(v, centre, neighbour, 5, -1), c10::Error);
}

TEST_P(SegmentContraction, ScatterEdgeVirialsMatchesHalfOuterProductsOnBothEnds) {
  at::Generator generator = at::detail::createCPUGenerator(9);
  const RandomEdges ends(generator);
  const int64_t rows = RandomEdges::rows, edges = RandomEdges::edges;
  const at::Tensor &centre = ends.centre, &neighbour = ends.neighbour;
  const at::Tensor g = at::randn({edges, 3}, generator, options), r = at::randn({edges, 3}, generator, options);
  at::Tensor expected = at::zeros({rows, 3, 3}, options);
  for (int64_t e = 0; e < edges; ++e) {
    const at::Tensor half = -0.5 * at::outer(g[e], r[e]);
    expected[centre[e].item<int64_t>()] += half;
    expected[neighbour[e].item<int64_t>()] += half;
  }
  const at::Tensor got = scatter_edge_virials(g, r, centre, neighbour, rows);
  ASSERT_EQ(got.sizes(), (std::vector<int64_t>{rows, 9}));
  EXPECT_LE((got - expected.reshape({rows, 9})).abs().max().item<double>(), tolerance);
  EXPECT_EQ(got.narrow(0, 9, 2).abs().max().item<double>(), 0.0);
  EXPECT_THROW(scatter_edge_virials(g, r, centre, neighbour, 5), c10::Error);
}

// Distances across the whole switch (rcut_smth 2, rcut 6), beyond the cut-off (rows of zeros)
// and below the switch; one edge picked twice; statistics rows in any order.
TEST_P(SegmentContraction, NormalisedEnvironmentMatchesTheFormula) {
  at::Generator generator = at::detail::createCPUGenerator(12);
  const int64_t ne = 30;
  const at::Tensor direction = at::randn({ne, 3}, generator, options);
  const at::Tensor length = at::linspace(0.9, 6.4, ne, options).unsqueeze(1);
  const at::Tensor edge_vec = direction / direction.norm(2, 1, true) * length;
  const at::Tensor edges = at::cat({at::arange(ne, at::kLong).flip(0), at::tensor({int64_t{7}})});
  const at::Tensor stat_row = at::randint(0, 5, {ne + 1}, generator, at::kLong);
  const at::Tensor avg = 0.1 * at::randn({5, 4}, generator, options);
  const at::Tensor std = 0.5 + at::rand({5, 4}, generator, options);
  const double tolerance = GetParam() == at::kDouble ? 1e-11 : 2e-4;
  for (double protection : {0.0, 0.3}) {
    const SwitchedEnvironment env{6.0, 2.0, protection};
    auto fused = [&](const std::vector<at::Tensor>& x) {
      return normalised_environment(x[0], edges, stat_row, avg, std, env);
    };
    auto formula = [&](const std::vector<at::Tensor>& x) {
      return (environment_rows_reference(x[0].index_select(0, edges), env) - avg.index_select(0, stat_row)) /
             std.index_select(0, stat_row);
    };
    expect_same_derivatives(fused, formula, {edge_vec}, tolerance);
    // Second derivatives kept on the graph and third derivatives (the fused path hands those to
    // the same formulas in libtorch's operators).
    auto third = [&](auto fn) {
      const at::Tensor x = edge_vec.detach().clone().set_requires_grad(true);
      const at::Tensor first = grad({fn({x}).sin().sum()}, {x}, {}, true, true)[0];
      const at::Tensor second = grad({(first * first).sum()}, {x}, {}, true, true)[0];
      return grad({(second * second).sum()}, {x})[0];
    };
    auto second_only = [&](auto fn) {
      const at::Tensor x = edge_vec.detach().clone().set_requires_grad(true);
      const at::Tensor first = grad({fn({x}).sin().sum()}, {x}, {}, true, true)[0];
      return grad({(first * first).sum()}, {x}, {}, true, true)[0].detach();
    };
    expect_close(second_only(fused), second_only(formula), tolerance, "second derivative kept on the graph");
    expect_close(third(fused), third(formula), tolerance, "third derivative");
  }
}

TEST_P(SegmentContraction, SwishMatchesSigmoidTimesX) {
  // Both signs, zero, and magnitudes where exp(-x) overflows.
  const at::Tensor x = at::cat({at::linspace(-8, 8, 33, options), at::tensor({-800.0, -60.0, 0.0, 60.0, 800.0}, options)});
  expect_same_derivatives([](const std::vector<at::Tensor>& v) { return model::swish(v[0]).view({-1, 1}); },
                          [](const std::vector<at::Tensor>& v) { return (v[0] * at::sigmoid(v[0])).view({-1, 1}); },
                          {x}, tolerance);
  // Third derivative, written with libtorch's operators: against the composed reference.
  auto third = [](auto f) {
    const at::Tensor v = at::linspace(-6, 6, 25, at::kDouble).set_requires_grad(true);
    at::Tensor d = f(v);
    for (int k = 0; k < 3; ++k) d = grad({d.sum()}, {v}, {}, true, true)[0];
    return d.detach();
  };
  expect_close(third([](const at::Tensor& v) { return model::swish(v); }),
               third([](const at::Tensor& v) { return v * at::sigmoid(v); }), 1e-10, "third derivative");
}

// Types 0..2 over 11 rows, type 1 absent; with a value outside the groups where `partial`.
at::Tensor row_types(bool partial) {
  at::Tensor types = at::tensor({2, 0, 0, 2, 2, 0, 2, 0, 0, 2, 0}, at::kLong);
  if (partial) types[4] = 5;
  return types;
}

TEST_P(SegmentContraction, RowGroupsSplitMatchesIndexSelect) {
  at::Generator generator = at::detail::createCPUGenerator(5);
  // Interleaved types (rows copied), with a row of no group, and sorted (parts are views).
  for (const int variant : {0, 1, 2}) {
    const bool partial = variant == 1, sorted = variant == 2;
    const at::Tensor types = sorted ? std::get<0>(row_types(false).sort()) : row_types(partial);
    const RowGroups groups = group_rows_by_value(types, 3);
    EXPECT_EQ(groups.covers_all, !partial);
    const at::Tensor x = at::randn({11, 6}, generator, at::TensorOptions().dtype(GetParam()));
    if (sorted) {
      const auto parts = split_row_groups(x, groups);
      EXPECT_EQ(parts[0].data_ptr(), x.data_ptr()) << "type 0's rows come first: a view";
      EXPECT_EQ(parts[2].data_ptr(), x[groups.index[0].size(0)].data_ptr()) << "type 2's rows follow: a view";
    }
    // Each part through a different function, so that the parts' gradients differ.
    auto combine = [](const std::vector<at::Tensor>& parts) {
      return at::cat({parts[0].sin().reshape({-1}), parts[1].reshape({-1}), (parts[2] * parts[2]).reshape({-1})});
    };
    expect_same_derivatives([&](const std::vector<at::Tensor>& in) { return combine(split_row_groups(in[0], groups)); },
                            [&](const std::vector<at::Tensor>& in) {
                              std::vector<at::Tensor> parts;
                              for (int64_t t = 0; t < 3; ++t)
                                parts.push_back(in[0].index_select(0, (types == t).nonzero().view({-1})));
                              return combine(parts);
                            },
                            {x}, tolerance);
  }
}

TEST_P(SegmentContraction, RowGroupsMergeMatchesIndexAddIntoZeros) {
  at::Generator generator = at::detail::createCPUGenerator(6);
  for (const bool partial : {false, true}) {
    const at::Tensor types = row_types(partial);
    const RowGroups groups = group_rows_by_value(types, 3);
    std::vector<at::Tensor> parts;
    for (const at::Tensor& index : groups.index) parts.push_back(at::randn({index.size(0), 2, 3}, generator, options));
    const at::Tensor merged = merge_row_groups(parts, groups);
    if (partial) {
      EXPECT_EQ(merged[4].abs().max().item<double>(), 0.0) << "a row of no group is zero";
    }
    expect_same_derivatives([&](const std::vector<at::Tensor>& in) { return merge_row_groups(in, groups).cos(); },
                            [&](const std::vector<at::Tensor>& in) {
                              at::Tensor out = at::zeros({11, 2, 3}, options);
                              for (int64_t t = 0; t < 3; ++t) out = out.index_add(0, groups.index[t], in[t]);
                              return out.cos();
                            },
                            parts, tolerance);
  }
}

TEST_P(SegmentContraction, RowGroupsRejectMismatchedShapes) {
  const RowGroups groups = group_rows_by_value(row_types(false), 3);
  EXPECT_THROW(split_row_groups(at::zeros({10, 2}, options), groups), std::exception);
  EXPECT_THROW(merge_row_groups({at::zeros({6, 2}, options), at::zeros({0, 2}, options)}, groups), std::exception);
  EXPECT_THROW(
      merge_row_groups({at::zeros({6, 2}, options), at::zeros({0, 2}, options), at::zeros({4, 2}, options)}, groups),
      std::exception);
}

TEST_P(SegmentContraction, BlockSuffixSumsMatchFlippedCumsums) {
  at::Generator generator = at::detail::createCPUGenerator(8);
  const std::vector<int64_t> sizes = {3, 0, 5, 1};  // an empty block too
  const at::Tensor x = at::randn({9, 7}, generator, at::TensorOptions().dtype(GetParam()));
  expect_same_derivatives([&](const std::vector<at::Tensor>& in) { return block_suffix_sums(in[0], sizes); },
                          [&](const std::vector<at::Tensor>& in) {
                            std::vector<at::Tensor> parts;
                            int64_t first = 0;
                            for (const int64_t n : sizes) {
                              parts.push_back(in[0].narrow(0, first, n).flip(0).cumsum(0).flip(0));
                              parts.push_back(at::zeros({1, 7}, in[0].options()));
                              first += n;
                            }
                            return at::cat(parts);
                          },
                          {x}, tolerance);
  EXPECT_THROW(block_suffix_sums(x, {3, 5}), std::exception);
}

INSTANTIATE_TEST_SUITE_P(Precisions, SegmentContraction, ::testing::Values(at::kDouble, at::kFloat));

}  // namespace
}  // namespace atomforge::model
