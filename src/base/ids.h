// Strong types for the integers that must not be mixed up: offsets, partitions, and (later)
// document and chunk ids. A StrongInt is a plain value with the arithmetic an id needs and
// nothing that silently converts it into another id. Thread-safety: values.
#pragma once

#include <compare>
#include <cstdint>
#include <functional>

namespace sluice {

template <typename Tag, typename Rep>
class StrongInt {
 public:
  using rep_type = Rep;
  constexpr StrongInt() = default;
  constexpr explicit StrongInt(Rep v) : v_(v) {}
  constexpr Rep value() const { return v_; }
  constexpr auto operator<=>(const StrongInt&) const = default;
  constexpr StrongInt operator+(Rep d) const { return StrongInt(v_ + d); }
  constexpr StrongInt operator-(Rep d) const { return StrongInt(v_ - d); }
  constexpr Rep operator-(StrongInt o) const { return v_ - o.v_; }
  constexpr StrongInt& operator++() {
    ++v_;
    return *this;
  }
  constexpr StrongInt& operator+=(Rep d) {
    v_ += d;
    return *this;
  }

 private:
  Rep v_{};
};

struct OffsetTag {};
struct PartitionTag {};

// Position of a record in one partition: 0, 1, 2, ... without gaps.
using Offset = StrongInt<OffsetTag, int64_t>;
// Index of a partition inside a topic: 0 .. partitions-1.
using PartitionId = StrongInt<PartitionTag, int32_t>;

}  // namespace sluice

template <typename Tag, typename Rep>
struct std::hash<sluice::StrongInt<Tag, Rep>> {
  size_t operator()(const sluice::StrongInt<Tag, Rep>& v) const noexcept {
    return std::hash<Rep>{}(v.value());
  }
};
