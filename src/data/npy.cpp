#include "data/npy.hpp"

#include <cctype>
#include <cmath>
#include <cstring>
#include <limits>
#include <string_view>

#include "core/atomic_file.hpp"
#include "core/error.hpp"

namespace atomforge::data {

namespace {

constexpr char kMagic[] = "\x93NUMPY";
constexpr std::size_t kMagicSize = 6;

// The raw bytes are reinterpreted in host order, so a big-endian host would silently read garbage.
bool host_is_little_endian() {
  const uint16_t probe = 1;
  unsigned char first = 0;
  std::memcpy(&first, &probe, 1);
  return first == 1;
}

uint32_t read_le(const std::string& bytes, std::size_t offset, std::size_t width) {
  uint32_t value = 0;
  for (std::size_t i = 0; i < width; ++i) {
    value |= static_cast<uint32_t>(static_cast<unsigned char>(bytes[offset + i])) << (8 * i);
  }
  return value;
}

// The header is a Python dict literal written by numpy's repr; we parse exactly that subset
// (string keys, string / bool / int-tuple values) and reject anything else as malformed.
class HeaderParser {
 public:
  HeaderParser(std::string_view text, const std::string& path) : text_(text), path_(path) {}

  struct Fields {
    std::string descr;
    bool fortran_order = false;
    std::vector<int64_t> shape;
    bool has_descr = false, has_order = false, has_shape = false;
  };

  Fields parse() {
    Fields fields;
    expect('{');
    while (true) {
      skip_space();
      if (peek() == '}') break;
      const std::string key = parse_string();
      expect(':');
      if (key == "descr") {
        skip_space();
        if (peek() != '\'' && peek() != '"') {
          fail("'{}': unsupported dtype (structured or non-string 'descr'); expected <f4, <f8, <i4 or <i8", path_);
        }
        fields.descr = parse_string();
        fields.has_descr = true;
      } else if (key == "fortran_order") {
        fields.fortran_order = parse_bool();
        fields.has_order = true;
      } else if (key == "shape") {
        fields.shape = parse_shape();
        fields.has_shape = true;
      } else {
        malformed(fmt::format("unknown key '{}'", key));
      }
      skip_space();
      if (peek() == ',') {
        ++pos_;
        continue;
      }
      skip_space();
      if (peek() != '}') malformed("expected ',' or '}' after a value");
    }
    expect('}');
    skip_space();
    if (pos_ != text_.size()) malformed("trailing characters after the dict");
    if (!fields.has_descr || !fields.has_order || !fields.has_shape) {
      malformed("it must hold 'descr', 'fortran_order' and 'shape'");
    }
    return fields;
  }

 private:
  std::string_view text_;
  const std::string& path_;
  std::size_t pos_ = 0;

  [[noreturn]] void malformed(const std::string& why) const {
    fail("'{}': malformed npy header ({}): {}", path_, why, std::string(text_));
  }
  char peek() const { return pos_ < text_.size() ? text_[pos_] : '\0'; }
  void skip_space() {
    while (pos_ < text_.size() && std::isspace(static_cast<unsigned char>(text_[pos_]))) ++pos_;
  }
  void expect(char c) {
    skip_space();
    if (peek() != c) malformed(fmt::format("expected '{}' at offset {}", c, pos_));
    ++pos_;
  }
  std::string parse_string() {
    skip_space();
    const char quote = peek();
    if (quote != '\'' && quote != '"') malformed(fmt::format("expected a quoted string at offset {}", pos_));
    const std::size_t end = text_.find(quote, pos_ + 1);
    if (end == std::string_view::npos) malformed("unterminated string");
    std::string value(text_.substr(pos_ + 1, end - pos_ - 1));
    pos_ = end + 1;
    return value;
  }
  bool parse_bool() {
    skip_space();
    if (text_.substr(pos_, 4) == "True") {
      pos_ += 4;
      return true;
    }
    if (text_.substr(pos_, 5) == "False") {
      pos_ += 5;
      return false;
    }
    malformed("'fortran_order' must be True or False");
  }
  std::vector<int64_t> parse_shape() {
    expect('(');
    std::vector<int64_t> shape;
    while (true) {
      skip_space();
      if (peek() == ')') break;
      if (!std::isdigit(static_cast<unsigned char>(peek()))) malformed("'shape' must be a tuple of non-negative ints");
      int64_t dim = 0;
      while (std::isdigit(static_cast<unsigned char>(peek()))) {
        if (dim > (std::numeric_limits<int64_t>::max() - 9) / 10) malformed("a dimension is too large");
        dim = dim * 10 + (text_[pos_++] - '0');
      }
      if (peek() == 'L') ++pos_;  // Python 2 longs
      shape.push_back(dim);
      skip_space();
      if (peek() == ',') {
        ++pos_;
      } else if (peek() != ')') {
        malformed("expected ',' or ')' in 'shape'");
      }
    }
    expect(')');
    return shape;
  }
};

struct ElementType {
  char kind = 'f';  // 'f' float, 'i' signed integer
  std::size_t size = 8;
};

ElementType parse_dtype(const std::string& descr, const std::string& path) {
  if (descr.size() != 3) {
    fail("'{}': unsupported dtype '{}'; expected <f4, <f8, <i4 or <i8", path, descr);
  }
  const char order = descr[0];
  if (order == '>') {
    fail("'{}': big-endian dtype '{}' is not supported; save it little-endian (e.g. arr.astype('<f8'))", path,
         descr);
  }
  // '=' is native order and '|' "not applicable"; numpy reads both as native, which we require
  // to be little-endian anyway.
  if (order != '<' && order != '=' && order != '|') {
    fail("'{}': unsupported byte order in dtype '{}'", path, descr);
  }
  const std::string type = descr.substr(1);
  if (type == "f4") return {'f', 4};
  if (type == "f8") return {'f', 8};
  if (type == "i4") return {'i', 4};
  if (type == "i8") return {'i', 8};
  fail("'{}': unsupported dtype '{}'; expected <f4, <f8, <i4 or <i8", path, descr);
}

int64_t checked_numel(const std::vector<int64_t>& shape, const std::string& path) {
  int64_t n = 1;
  for (const int64_t dim : shape) {
    if (dim != 0 && n > std::numeric_limits<int64_t>::max() / dim) fail("'{}': shape is too large", path);
    n *= dim;
  }
  return n;
}

std::string shape_string(const std::vector<int64_t>& shape) {
  std::string s = "(";
  for (std::size_t i = 0; i < shape.size(); ++i) s += (i ? ", " : "") + std::to_string(shape[i]);
  return s + (shape.size() == 1 ? ",)" : ")");
}

void decode_values(const char* data, ElementType type, int64_t n, std::vector<double>& out) {
  out.resize(static_cast<std::size_t>(n));
  for (int64_t i = 0; i < n; ++i) {
    const char* p = data + i * static_cast<int64_t>(type.size);
    double v = 0;
    if (type.kind == 'f' && type.size == 4) {
      float f;
      std::memcpy(&f, p, 4);
      v = static_cast<double>(f);
    } else if (type.kind == 'f') {
      std::memcpy(&v, p, 8);
    } else if (type.size == 4) {
      int32_t x;
      std::memcpy(&x, p, 4);
      v = static_cast<double>(x);
    } else {
      int64_t x;
      std::memcpy(&x, p, 8);
      v = static_cast<double>(x);
    }
    out[static_cast<std::size_t>(i)] = v;
  }
}

void check_finite(const NpyArray& array, const std::string& path) {
  for (std::size_t i = 0; i < array.values.size(); ++i) {
    if (!std::isfinite(array.values[i])) {
      fail("'{}': value {} at flat index {} (shape {}) is not finite", path, array.values[i], i,
           shape_string(array.shape));
    }
  }
}

std::string make_header(const std::string& descr, const std::vector<int64_t>& shape) {
  std::string dict = fmt::format("{{'descr': '{}', 'fortran_order': False, 'shape': {}, }}", descr, shape_string(shape));
  // numpy pads with spaces so that the data starts at a multiple of 64 bytes, ending in '\n'.
  const std::size_t prefix = kMagicSize + 2 + 2;
  const std::size_t total = ((prefix + dict.size() + 1 + 63) / 64) * 64;
  dict.append(total - prefix - dict.size() - 1, ' ');
  dict.push_back('\n');
  std::string out(kMagic, kMagicSize);
  out.push_back('\x01');
  out.push_back('\x00');
  out.push_back(static_cast<char>(dict.size() & 0xff));
  out.push_back(static_cast<char>((dict.size() >> 8) & 0xff));
  return out + dict;
}

template <typename T>
void write_array(const std::string& path, const std::string& descr, const std::vector<int64_t>& shape,
                 const std::vector<T>& values) {
  if (!host_is_little_endian()) fail("'{}': writing npy needs a little-endian host", path);
  for (const int64_t dim : shape) {
    if (dim < 0) fail("'{}': negative dimension in shape {}", path, shape_string(shape));
  }
  const int64_t n = checked_numel(shape, path);
  if (n != static_cast<int64_t>(values.size())) {
    fail("'{}': shape {} needs {} values, got {}", path, shape_string(shape), n, values.size());
  }
  std::string bytes = make_header(descr, shape);
  const std::size_t header_size = bytes.size();
  bytes.resize(header_size + values.size() * sizeof(T));
  if (!values.empty()) std::memcpy(&bytes[header_size], values.data(), values.size() * sizeof(T));
  write_file_atomic(path, bytes);
}

}  // namespace

int64_t NpyArray::numel() const {
  int64_t n = 1;
  for (const int64_t dim : shape) n *= dim;
  return n;
}

NpyArray read_npy(const std::string& path) {
  if (!host_is_little_endian()) fail("'{}': reading npy needs a little-endian host", path);
  const std::string bytes = read_file(path);
  if (bytes.size() < kMagicSize + 2 || bytes.compare(0, kMagicSize, kMagic, kMagicSize) != 0) {
    fail("'{}': not an npy file (bad magic; expected \\x93NUMPY)", path);
  }
  const int major = static_cast<unsigned char>(bytes[6]);
  const int minor = static_cast<unsigned char>(bytes[7]);
  if ((major != 1 && major != 2 && major != 3) || minor != 0) {
    fail("'{}': unsupported npy format version {}.{} (supported: 1.0, 2.0, 3.0)", path, major, minor);
  }
  // Version 1.0 has a 2-byte header length; 2.0 and 3.0 (utf-8 header) have 4 bytes.
  const std::size_t len_width = major == 1 ? 2 : 4;
  const std::size_t prefix = kMagicSize + 2 + len_width;
  if (bytes.size() < prefix) fail("'{}': truncated npy header", path);
  const std::size_t header_len = read_le(bytes, kMagicSize + 2, len_width);
  if (bytes.size() < prefix + header_len) {
    fail("'{}': truncated npy header ({} bytes announced, file has {})", path, header_len, bytes.size() - prefix);
  }
  const HeaderParser::Fields fields =
      HeaderParser(std::string_view(bytes).substr(prefix, header_len), path).parse();
  if (fields.fortran_order) {
    fail("'{}': Fortran-ordered arrays are not supported; save with np.ascontiguousarray", path);
  }
  const ElementType type = parse_dtype(fields.descr, path);

  NpyArray array;
  array.shape = fields.shape;
  array.dtype = fields.descr;
  const int64_t n = checked_numel(array.shape, path);
  const std::size_t data_size = static_cast<std::size_t>(n) * type.size;
  const std::size_t available = bytes.size() - prefix - header_len;
  if (available < data_size) {
    fail("'{}': truncated data: shape {} of {} needs {} bytes, file has {}", path, shape_string(array.shape),
         array.dtype, data_size, available);
  }
  if (available > data_size) {
    fail("'{}': {} unexpected bytes after the data of shape {}", path, available - data_size,
         shape_string(array.shape));
  }
  decode_values(bytes.data() + prefix + header_len, type, n, array.values);
  if (type.kind == 'f') check_finite(array, path);
  return array;
}

void write_npy(const std::string& path, const std::vector<int64_t>& shape, const std::vector<double>& values) {
  for (std::size_t i = 0; i < values.size(); ++i) {
    if (!std::isfinite(values[i])) fail("'{}': refusing to write non-finite value at flat index {}", path, i);
  }
  write_array(path, "<f8", shape, values);
}

void write_npy_int(const std::string& path, const std::vector<int64_t>& shape, const std::vector<int64_t>& values) {
  write_array(path, "<i8", shape, values);
}

}  // namespace atomforge::data
