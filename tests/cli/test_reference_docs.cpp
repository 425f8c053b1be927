// The committed input references are what the binary prints: a schema change that is not
// regenerated into docs/ fails here (regenerate with the command named in the message).
#include <gtest/gtest.h>

#include "../cli_test_util.hpp"

namespace atomforge::testing {
namespace {

TEST(ReferenceDocs, CommittedReferencesMatchTheSchemas) {
  for (const auto& [verb, doc] : {std::pair{"doc-train-input", "docs/input-reference.md"},
                                  std::pair{"doc-md-input", "docs/md-input.md"},
                                  std::pair{"doc-distill-input", "docs/distill-input.md"}}) {
    const Result r = run(verb);
    ASSERT_EQ(r.code, 0) << r.output;
    EXPECT_TRUE(r.output == read_text(std::string(ATOMFORGE_SOURCE_DIR) + "/" + doc))
        << doc << " is out of date: atomforge " << verb << " > " << doc;
  }
}

}  // namespace
}  // namespace atomforge::testing
