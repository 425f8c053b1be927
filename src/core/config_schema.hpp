#pragma once
// A declared schema for JSON input: every key has a type, a default (or is required or
// optional) and a doc line. `resolve` validates a user's JSON against it and returns it with all
// defaults filled in; an unknown key is an error naming its JSON path and the nearest valid
// key. Keys that start with '_' (DeePMD-kit's "_comment") are accepted and dropped.
#include <functional>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

namespace atomforge::config {

using json = nlohmann::ordered_json;

enum class Kind { Object, Array, String, Number, Integer, Bool, OneOf, Tagged, Map, Any };

struct Field;

struct Node {
  Kind kind = Kind::Object;
  std::string doc;
  std::vector<Field> fields;              // Object
  std::shared_ptr<Node> items;            // Array, Map: the schema of each element
  std::vector<std::string> choices;       // String: allowed values (empty = any)
  std::vector<Node> alternatives;         // OneOf: the first that accepts the value wins
  std::string tag_key;                    // Tagged: the key that selects the variant
  std::string tag_default;                // Tagged: variant when the key is absent ("" = required)
  std::map<std::string, Node> variants;   // Tagged: variant name -> Object schema
  std::map<std::string, std::string> tag_aliases;  // Tagged: alias -> variant name
  // Extra check after the type check, e.g. a range; throws atomforge::Error.
  std::function<void(const json& value, const std::string& path)> check;
};

struct Field {
  std::string name;
  Node node;
  enum class Presence { Required, Default, Optional } presence = Presence::Optional;
  json default_value;
  std::vector<std::string> aliases;  // accepted old names, rewritten to `name`
};

// Builders, so that a schema reads as a table.
Node object(std::string doc, std::vector<Field> fields);
Node string(std::string doc, std::vector<std::string> choices = {});
Node number(std::string doc);
Node integer(std::string doc);
Node boolean(std::string doc);
Node array(Node items, std::string doc);
// An object whose keys the user names (task names, shared_dict keys); each value follows `items`.
Node map(Node items, std::string doc);
Node any(std::string doc);  // validated later, by whoever reads it
Node one_of(std::vector<Node> alternatives, std::string doc);
Node tagged(std::string doc, std::string tag_key, std::map<std::string, Node> variants,
            std::string tag_default = "", std::map<std::string, std::string> aliases = {});
Node with_check(Node node, std::function<void(const json&, const std::string&)> check);
Node positive(Node node);      // number > 0
Node non_negative(Node node);  // number >= 0

Field required(std::string name, Node node, std::vector<std::string> aliases = {});
Field defaulted(std::string name, Node node, json default_value,
                std::vector<std::string> aliases = {});
Field optional(std::string name, Node node, std::vector<std::string> aliases = {});

// Validates `input` against `schema` and returns it with defaults filled in. `path` is the JSON
// path of `input` in the document, used in error messages ("model.descriptor.rcut").
json resolve(const Node& schema, const json& input, const std::string& path = "");

// `path`'s JSON document resolved against `schema`; errors (unreadable file, invalid JSON, a
// schema violation) name the file.
json resolve_file(const Node& schema, const std::string& path);

// Markdown reference of a schema: one line per key with type, default and doc.
std::string document(const Node& schema, const std::string& path = "");

// Levenshtein distance, used to suggest the nearest valid key.
std::size_t edit_distance(const std::string& a, const std::string& b);

}  // namespace atomforge::config
