// The element table: symbols round-trip, numbering follows the periodic table, masses are sane.
#include <set>

#include <gtest/gtest.h>

#include "core/elements.hpp"

namespace atomforge {
namespace {

TEST(Elements, SymbolsRoundTripAndAreUnique) {
  std::set<std::string> seen;
  for (int z = 1; z <= kMaxAtomicNumber; ++z) {
    EXPECT_EQ(atomic_number(element_symbol(z)), z);
    EXPECT_TRUE(seen.insert(element_symbol(z)).second) << element_symbol(z);
  }
}

TEST(Elements, LandmarksOfThePeriodicTable) {
  // Noble gases close each period at Z = 2, 10, 18, 36, 54, 86, 118.
  const std::vector<std::pair<std::string, int>> landmarks = {{"He", 2},  {"Ne", 10}, {"Ar", 18}, {"Kr", 36},
                                                              {"Xe", 54}, {"Rn", 86}, {"Og", 118}, {"Cu", 29},
                                                              {"Au", 79}, {"U", 92}};
  for (const auto& [symbol, z] : landmarks) EXPECT_EQ(atomic_number(symbol), z) << symbol;
  EXPECT_NEAR(atomic_mass(1), 1.008, 1e-3);
  EXPECT_NEAR(atomic_mass(8), 15.999, 1e-3);
  EXPECT_NEAR(atomic_mass(29), 63.546, 1e-3);
  // Masses grow with Z apart from the four known inversions (Ar/K, Co/Ni, Te/I, Th/Pa) and the
  // estimated masses of the superheavy elements.
  int inversions = 0;
  for (int z = 2; z <= 94; ++z) inversions += atomic_mass(z) < atomic_mass(z - 1);
  EXPECT_EQ(inversions, 5);  // the four, plus U (238.03) > Np (237)
}

TEST(Elements, UnknownSymbolNamesContext) {
  try {
    atomic_number("Xx", "model.type_map");
    FAIL() << "no error";
  } catch (const std::exception& e) {
    EXPECT_NE(std::string(e.what()).find("model.type_map: 'Xx' is not an element symbol"), std::string::npos) << e.what();
  }
  EXPECT_THROW(element_symbol(0), std::exception);
  EXPECT_THROW(atomic_mass(119), std::exception);
}

}  // namespace
}  // namespace atomforge
