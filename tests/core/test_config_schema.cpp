// The declared-schema resolver: defaults, types, unknown keys with suggestions, tagged variants.
#include <gtest/gtest.h>

#include "core/config_schema.hpp"
#include "core/error.hpp"

namespace atomforge::config {
namespace {

Node sample_schema() {
  return object("root", {required("name", string("a name")),
                         defaulted("rcut", positive(number("cut-off")), 6.0),
                         defaulted("neuron", array(integer("width"), "widths"), json::array({10, 20})),
                         defaulted("mode", string("mode", {"a", "b"}), "a", {"old_mode"}),
                         optional("seed", integer("seed")),
                         defaulted("part", tagged("variant", "type",
                                                  {{"x", object("x", {defaulted("k", integer("k"), 1)})},
                                                   {"y", object("y", {required("z", boolean("z"))})}},
                                                  "x", {{"ex", "x"}}),
                                   json::object())});
}

std::string error_of(const json& input) {
  try {
    resolve(sample_schema(), input);
  } catch (const Error& e) {
    return e.what();
  }
  return "";
}

TEST(ConfigSchema, FillsDefaultsAndKeepsGivenValues) {
  const json out = resolve(sample_schema(), json::parse(R"({"name": "w", "rcut": 5, "_comment": "ignored"})"));
  EXPECT_EQ(out.at("name"), "w");
  EXPECT_EQ(out.at("rcut").get<double>(), 5.0);
  EXPECT_EQ(out.at("neuron"), json::array({10, 20}));
  EXPECT_EQ(out.at("mode"), "a");
  EXPECT_FALSE(out.contains("seed"));
  EXPECT_FALSE(out.contains("_comment"));
  EXPECT_EQ(out.at("part").at("type"), "x");
  EXPECT_EQ(out.at("part").at("k"), 1);
}

TEST(ConfigSchema, UnknownKeyNamesPathAndNearestKey) {
  const std::string e = error_of(json::parse(R"({"name": "w", "part": {"type": "y", "z": true, "kk": 1}})"));
  EXPECT_NE(e.find("part.kk"), std::string::npos) << e;
  EXPECT_NE(e.find("did you mean 'part.z'"), std::string::npos) << e;
  const std::string top = error_of(json::parse(R"({"name": "w", "rcutt": 5})"));
  EXPECT_NE(top.find("'rcutt'"), std::string::npos) << top;
  EXPECT_NE(top.find("'rcut'"), std::string::npos) << top;
}

TEST(ConfigSchema, TypeRangeChoiceAndRequiredErrors) {
  EXPECT_NE(error_of(json::parse(R"({"name": 3})")).find("'name' must be a string"), std::string::npos);
  EXPECT_NE(error_of(json::parse(R"({"name": "w", "rcut": -1})")).find("'rcut' must be > 0"), std::string::npos);
  EXPECT_NE(error_of(json::parse(R"({"name": "w", "neuron": [1, 2.5]})")).find("'neuron[1]' must be an integer"),
            std::string::npos);
  EXPECT_NE(error_of(json::parse(R"({"name": "w", "mode": "c"})")).find("allowed: a, b"), std::string::npos);
  EXPECT_NE(error_of(json::parse(R"({})")).find("missing required config key 'name'"), std::string::npos);
  EXPECT_NE(error_of(json::parse(R"({"name": "w", "part": {"type": "q"}})")).find("unknown value 'q'"),
            std::string::npos);
  EXPECT_NE(error_of(json::parse(R"({"name": "w", "part": {"type": "y"}})")).find("'part.z'"), std::string::npos);
}

TEST(ConfigSchema, AliasesAreRewrittenAndIntegralFloatsAccepted) {
  const json out = resolve(sample_schema(), json::parse(R"({"name": "w", "old_mode": "b", "seed": 3.0,
                                                            "part": {"type": "ex"}})"));
  EXPECT_EQ(out.at("mode"), "b");
  EXPECT_EQ(out.at("seed").get<int64_t>(), 3);
  EXPECT_EQ(out.at("part").at("type"), "x");
  EXPECT_NE(error_of(json::parse(R"({"name": "w", "mode": "a", "old_mode": "b"})")).find("mean the same"),
            std::string::npos);
}

TEST(ConfigSchema, OneOfAcceptsAnyAlternative) {
  const Node node = object("r", {required("v", one_of({integer("n"), string("s")}, "int or string"))});
  EXPECT_EQ(resolve(node, json::parse(R"({"v": 3})")).at("v"), 3);
  EXPECT_EQ(resolve(node, json::parse(R"({"v": "auto"})")).at("v"), "auto");
  EXPECT_THROW(resolve(node, json::parse(R"({"v": [1]})")), Error);
}

TEST(ConfigSchema, DocumentListsEveryKey) {
  const std::string doc = document(sample_schema());
  for (const char* key : {"`name`", "`rcut`", "`neuron`", "`part.k`", "`part.z`", "default 6.0"})
    EXPECT_NE(doc.find(key), std::string::npos) << key;
}

TEST(EditDistance, Basics) {
  EXPECT_EQ(edit_distance("rcut", "rcut"), 0u);
  EXPECT_EQ(edit_distance("rcutt", "rcut"), 1u);
  EXPECT_EQ(edit_distance("", "abc"), 3u);
  EXPECT_EQ(edit_distance("kitten", "sitting"), 3u);
}

}  // namespace
}  // namespace atomforge::config

namespace atomforge::config {
namespace {

TEST(ConfigSchema, MapsValidateEveryUserNamedEntry) {
  const Node node = object("r", {required("tasks", map(object("task", {defaulted("w", positive(number("w")), 1.0)}),
                                                      "one entry per task"))});
  const json out = resolve(node, json::parse(R"({"tasks": {"a": {}, "b": {"w": 2}, "_comment": 1}})"));
  EXPECT_EQ(out.at("tasks").size(), 2u);
  EXPECT_EQ(out.at("tasks").at("a").at("w").get<double>(), 1.0);
  EXPECT_EQ(out.at("tasks").at("b").at("w").get<double>(), 2.0);
  try {
    resolve(node, json::parse(R"({"tasks": {"a": {"ww": 1}}})"));
    ADD_FAILURE() << "no error";
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("tasks.a.ww"), std::string::npos) << e.what();
  }
}

}  // namespace
}  // namespace atomforge::config
