#include "core/config_schema.hpp"

#include <algorithm>
#include <numeric>
#include <sstream>

#include "core/atomic_file.hpp"
#include "core/error.hpp"

namespace atomforge::config {

namespace {

std::string join_path(const std::string& path, const std::string& key) {
  return path.empty() ? key : path + "." + key;
}

std::string kind_name(const Node& node) {
  switch (node.kind) {
    case Kind::Object: return "object";
    case Kind::Array: return "array";
    case Kind::String: return "string";
    case Kind::Number: return "number";
    case Kind::Integer: return "integer";
    case Kind::Bool: return "boolean";
    case Kind::Tagged: return "object";
    case Kind::Map: return "object";
    case Kind::Any: return "any";
    case Kind::OneOf: {
      std::string names;
      for (const auto& alt : node.alternatives) {
        if (!names.empty()) names += " or ";
        names += kind_name(alt);
      }
      return names;
    }
  }
  return "?";
}

std::string json_type_name(const json& value) {
  if (value.is_null()) return "null";
  if (value.is_boolean()) return "boolean";
  if (value.is_number_integer() || value.is_number_unsigned()) return "integer";
  if (value.is_number()) return "number";
  if (value.is_string()) return "string";
  if (value.is_array()) return "array";
  return "object";
}

std::string display(const std::string& path) { return path.empty() ? "(top level)" : path; }

std::string nearest(const std::string& key, const std::vector<std::string>& candidates) {
  std::string best;
  std::size_t best_distance = std::string::npos;
  for (const auto& candidate : candidates) {
    const std::size_t d = edit_distance(key, candidate);
    if (d < best_distance) {
      best_distance = d;
      best = candidate;
    }
  }
  return best;
}

json resolve_object(const Node& schema, const json& input, const std::string& path) {
  if (!input.is_object())
    fail("config key '{}' must be an object, got {}", display(path), json_type_name(input));
  std::vector<std::string> valid;
  for (const auto& field : schema.fields) {
    valid.push_back(field.name);
    for (const auto& alias : field.aliases) valid.push_back(alias);
  }
  for (auto it = input.begin(); it != input.end(); ++it) {
    const std::string& key = it.key();
    if (!key.empty() && key[0] == '_') continue;
    if (std::find(valid.begin(), valid.end(), key) == valid.end()) {
      const std::string suggestion = nearest(key, valid);
      if (suggestion.empty())
        fail("unknown config key '{}' (this object takes no keys)", join_path(path, key));
      fail("unknown config key '{}'; did you mean '{}'?", join_path(path, key),
           join_path(path, suggestion));
    }
  }
  json out = json::object();
  for (const auto& field : schema.fields) {
    const std::string field_path = join_path(path, field.name);
    const json* given = nullptr;
    if (input.contains(field.name)) given = &input.at(field.name);
    for (const auto& alias : field.aliases) {
      if (!input.contains(alias)) continue;
      if (given) fail("config keys '{}' and '{}' mean the same; give one", field_path, join_path(path, alias));
      given = &input.at(alias);
    }
    if (given && !given->is_null()) {
      out[field.name] = resolve(field.node, *given, field_path);
    } else if (field.presence == Field::Presence::Required) {
      fail("missing required config key '{}' ({})", field_path, field.node.doc);
    } else if (field.presence == Field::Presence::Default) {
      out[field.name] = field.default_value.is_null()
                            ? field.default_value
                            : resolve(field.node, field.default_value, field_path);
    }
  }
  return out;
}

json resolve_tagged(const Node& schema, const json& input, const std::string& path) {
  if (!input.is_object())
    fail("config key '{}' must be an object, got {}", display(path), json_type_name(input));
  std::string tag = schema.tag_default;
  if (input.contains(schema.tag_key)) {
    const json& value = input.at(schema.tag_key);
    if (!value.is_string())
      fail("config key '{}' must be a string", join_path(path, schema.tag_key));
    tag = value.get<std::string>();
  }
  if (tag.empty()) fail("missing required config key '{}'", join_path(path, schema.tag_key));
  if (auto alias = schema.tag_aliases.find(tag); alias != schema.tag_aliases.end()) tag = alias->second;
  auto variant = schema.variants.find(tag);
  if (variant == schema.variants.end()) {
    std::vector<std::string> names;
    for (const auto& [name, node] : schema.variants) names.push_back(name);
    std::string list;
    for (const auto& name : names) list += (list.empty() ? "" : ", ") + name;
    fail("config key '{}' has unknown value '{}'; known: {}", join_path(path, schema.tag_key), tag,
         list);
  }
  json body = input;
  body.erase(schema.tag_key);
  json out = json::object();
  out[schema.tag_key] = tag;
  const json fields = resolve_object(variant->second, body, path);
  for (auto it = fields.begin(); it != fields.end(); ++it) out[it.key()] = it.value();
  return out;
}

}  // namespace

json resolve(const Node& schema, const json& input, const std::string& path) {
  json out;
  switch (schema.kind) {
    case Kind::Object:
      out = resolve_object(schema, input, path);
      break;
    case Kind::Tagged:
      out = resolve_tagged(schema, input, path);
      break;
    case Kind::Array: {
      if (!input.is_array())
        fail("config key '{}' must be an array, got {}", display(path), json_type_name(input));
      out = json::array();
      for (std::size_t i = 0; i < input.size(); ++i)
        out.push_back(resolve(*schema.items, input[i], path + "[" + std::to_string(i) + "]"));
      break;
    }
    case Kind::Map: {
      if (!input.is_object())
        fail("config key '{}' must be an object, got {}", display(path), json_type_name(input));
      out = json::object();
      for (auto it = input.begin(); it != input.end(); ++it) {
        if (!it.key().empty() && it.key()[0] == '_') continue;
        out[it.key()] = resolve(*schema.items, it.value(), join_path(path, it.key()));
      }
      break;
    }
    case Kind::Any:
      out = input;
      break;
    case Kind::String: {
      if (!input.is_string())
        fail("config key '{}' must be a string, got {}", display(path), json_type_name(input));
      const auto value = input.get<std::string>();
      if (!schema.choices.empty() &&
          std::find(schema.choices.begin(), schema.choices.end(), value) == schema.choices.end()) {
        std::string list;
        for (const auto& c : schema.choices) list += (list.empty() ? "" : ", ") + c;
        fail("config key '{}' has value '{}'; allowed: {}", display(path), value, list);
      }
      out = input;
      break;
    }
    case Kind::Number:
      if (!input.is_number())
        fail("config key '{}' must be a number, got {}", display(path), json_type_name(input));
      out = input;
      break;
    case Kind::Integer: {
      bool ok = input.is_number_integer() || input.is_number_unsigned();
      if (!ok && input.is_number_float()) {
        const double v = input.get<double>();
        ok = v == static_cast<double>(static_cast<long long>(v));
        if (ok) {
          out = static_cast<long long>(v);
          break;
        }
      }
      if (!ok) fail("config key '{}' must be an integer, got {}", display(path), json_type_name(input));
      out = input;
      break;
    }
    case Kind::Bool:
      if (!input.is_boolean())
        fail("config key '{}' must be true or false, got {}", display(path), json_type_name(input));
      out = input;
      break;
    case Kind::OneOf: {
      std::string first_error;
      for (const auto& alternative : schema.alternatives) {
        try {
          out = resolve(alternative, input, path);
          first_error.clear();
          break;
        } catch (const Error& e) {
          if (first_error.empty()) first_error = e.what();
        }
      }
      if (!first_error.empty())
        fail("config key '{}' must be {} ({}), got {}", display(path), kind_name(schema), schema.doc,
             json_type_name(input));
      break;
    }
  }
  if (schema.check) schema.check(out, display(path));
  return out;
}

std::string document(const Node& schema, const std::string& path) {
  std::ostringstream doc;
  auto describe_fields = [&](const std::vector<Field>& fields, const std::string& prefix) {
    for (const auto& field : fields) {
      const std::string field_path = join_path(prefix, field.name);
      doc << "- `" << field_path << "` (" << kind_name(field.node);
      if (field.presence == Field::Presence::Required) doc << ", required";
      if (field.presence == Field::Presence::Default) doc << ", default " << field.default_value.dump();
      doc << "): " << field.node.doc << "\n";
      if (field.node.kind == Kind::Object || field.node.kind == Kind::Tagged)
        doc << document(field.node, field_path);
      if ((field.node.kind == Kind::Array || field.node.kind == Kind::Map) && field.node.items &&
          (field.node.items->kind == Kind::Object || field.node.items->kind == Kind::Tagged))
        doc << document(*field.node.items, field_path + (field.node.kind == Kind::Map ? ".NAME" : "[]"));
    }
  };
  if (schema.kind == Kind::Object) describe_fields(schema.fields, path);
  if (schema.kind == Kind::Tagged) {
    for (const auto& [name, variant] : schema.variants) {
      doc << "- `" << join_path(path, schema.tag_key) << "` = \"" << name << "\": " << variant.doc
          << "\n";
      describe_fields(variant.fields, path);
    }
  }
  return doc.str();
}

std::size_t edit_distance(const std::string& a, const std::string& b) {
  std::vector<std::size_t> row(b.size() + 1);
  std::iota(row.begin(), row.end(), 0);
  for (std::size_t i = 1; i <= a.size(); ++i) {
    std::size_t diagonal = row[0];
    row[0] = i;
    for (std::size_t j = 1; j <= b.size(); ++j) {
      const std::size_t up = row[j];
      row[j] = std::min({row[j] + 1, row[j - 1] + 1, diagonal + (a[i - 1] == b[j - 1] ? 0 : 1)});
      diagonal = up;
    }
  }
  return row[b.size()];
}

namespace {

Node leaf(Kind kind, std::string doc) {
  Node n;
  n.kind = kind;
  n.doc = std::move(doc);
  return n;
}

}  // namespace

Node object(std::string doc, std::vector<Field> fields) {
  Node n;
  n.kind = Kind::Object;
  n.doc = std::move(doc);
  n.fields = std::move(fields);
  return n;
}
Node string(std::string doc, std::vector<std::string> choices) {
  Node n;
  n.kind = Kind::String;
  n.doc = std::move(doc);
  n.choices = std::move(choices);
  return n;
}
Node number(std::string doc) { return leaf(Kind::Number, std::move(doc)); }
Node integer(std::string doc) { return leaf(Kind::Integer, std::move(doc)); }
Node boolean(std::string doc) { return leaf(Kind::Bool, std::move(doc)); }
Node array(Node items, std::string doc) {
  Node n;
  n.kind = Kind::Array;
  n.doc = std::move(doc);
  n.items = std::make_shared<Node>(std::move(items));
  return n;
}
Node map(Node items, std::string doc) {
  Node n;
  n.kind = Kind::Map;
  n.doc = std::move(doc);
  n.items = std::make_shared<Node>(std::move(items));
  return n;
}
Node any(std::string doc) { return leaf(Kind::Any, std::move(doc)); }
Node one_of(std::vector<Node> alternatives, std::string doc) {
  Node n;
  n.kind = Kind::OneOf;
  n.doc = std::move(doc);
  n.alternatives = std::move(alternatives);
  return n;
}
Node tagged(std::string doc, std::string tag_key, std::map<std::string, Node> variants,
            std::string tag_default, std::map<std::string, std::string> aliases) {
  Node n;
  n.kind = Kind::Tagged;
  n.doc = std::move(doc);
  n.tag_key = std::move(tag_key);
  n.variants = std::move(variants);
  n.tag_default = std::move(tag_default);
  n.tag_aliases = std::move(aliases);
  return n;
}
Node with_check(Node node, std::function<void(const json&, const std::string&)> check) {
  node.check = std::move(check);
  return node;
}
Node positive(Node node) {
  return with_check(std::move(node), [](const json& v, const std::string& path) {
    if (v.get<double>() <= 0) fail("config key '{}' must be > 0, got {}", path, v.dump());
  });
}
Node non_negative(Node node) {
  return with_check(std::move(node), [](const json& v, const std::string& path) {
    if (v.get<double>() < 0) fail("config key '{}' must be >= 0, got {}", path, v.dump());
  });
}

Field required(std::string name, Node node, std::vector<std::string> aliases) {
  return Field{std::move(name), std::move(node), Field::Presence::Required, json(), std::move(aliases)};
}
Field defaulted(std::string name, Node node, json default_value, std::vector<std::string> aliases) {
  return Field{std::move(name), std::move(node), Field::Presence::Default, std::move(default_value),
               std::move(aliases)};
}
Field optional(std::string name, Node node, std::vector<std::string> aliases) {
  return Field{std::move(name), std::move(node), Field::Presence::Optional, json(), std::move(aliases)};
}

json resolve_file(const Node& schema, const std::string& path) {
  try {
    json input;
    try {
      input = json::parse(read_file(path));
    } catch (const json::parse_error& e) {
      fail("not valid JSON: {}", e.what());
    }
    return resolve(schema, input);
  } catch (...) {
    rethrow_with_context(path);
  }
}

}  // namespace atomforge::config
