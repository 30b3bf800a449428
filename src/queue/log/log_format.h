// Constants and codecs of the log's on-disk format (docs/log_format.md is the specification).
// Encoding of records into a batch buffer, batch header (de)serialisation, and decoding of a
// batch's records into views. Thread-safety: pure functions over caller-owned buffers.
#pragma once

#include <cstdint>
#include <cstring>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "base/endian.h"
#include "base/status.h"
#include "queue/queue.h"

namespace sluice::queue::log {

inline constexpr uint32_t kFormatVersion = 1;
inline constexpr const char* kMarkerFile = "SLUICE_LOG";
inline constexpr const char* kMarkerPrefix = "sluice-log ";

inline constexpr size_t kBatchHeaderSize = 44;
inline constexpr size_t kBatchLengthFieldEnd = 12;  // base_offset + length
inline constexpr size_t kBatchCrcStart = 16;        // CRC covers bytes from here to the end
inline constexpr uint8_t kBatchMagic = 1;
inline constexpr uint8_t kCompressionMask = 0x03;

inline constexpr size_t kIndexEntrySize = 8;
inline constexpr size_t kTimeIndexEntrySize = 12;
inline constexpr size_t kHeadRecordSize = 48;
inline constexpr uint32_t kHeadMagic = 0x44484c53;     // "SLHD"
inline constexpr uint32_t kOffsetsMagic = 0x4f474c53;  // "SLGO"

inline constexpr int32_t kMaxPartitions = 10000;
inline constexpr uint64_t kMaxSegmentBytes = 1ull << 30;
inline constexpr int kSegmentNameDigits = 20;

enum Compression : uint8_t { kNone = 0, kLz4 = 1, kZstd = 2 };

using endian::get_u16;
using endian::get_u32;
using endian::get_u64;
using endian::put_u16;
using endian::put_u32;
using endian::put_u64;

inline size_t varint_size(uint64_t v) {
  size_t n = 1;
  while (v >= 0x80) {
    v >>= 7;
    ++n;
  }
  return n;
}
inline char* put_varint(char* p, uint64_t v) {
  while (v >= 0x80) {
    *p++ = static_cast<char>(v | 0x80);
    v >>= 7;
  }
  *p++ = static_cast<char>(v);
  return p;
}
inline uint64_t zigzag(int64_t v) {
  return (static_cast<uint64_t>(v) << 1) ^ static_cast<uint64_t>(v >> 63);
}
inline int64_t unzigzag(uint64_t v) {
  return static_cast<int64_t>(v >> 1) ^ -static_cast<int64_t>(v & 1);
}
// Reads a varint from [p, end); nullptr when it runs past end or over 10 bytes.
inline const char* get_varint(const char* p, const char* end, uint64_t* out) {
  uint64_t v = 0;
  for (int shift = 0; shift < 64 && p < end; shift += 7) {
    auto b = static_cast<uint8_t>(*p++);
    v |= static_cast<uint64_t>(b & 0x7f) << shift;
    if (!(b & 0x80)) {
      *out = v;
      return p;
    }
  }
  return nullptr;
}

// The fixed part of a batch.
struct BatchHeader {
  int64_t base_offset = 0;
  uint32_t length = 0;  // bytes after the length field
  uint32_t crc = 0;
  uint8_t magic = kBatchMagic;
  uint8_t attributes = 0;
  uint32_t record_count = 0;
  int64_t first_timestamp = 0;
  int64_t max_timestamp = 0;
  uint32_t records_size = 0;

  size_t total_size() const { return kBatchLengthFieldEnd + length; }
  int64_t next_offset() const { return base_offset + record_count; }
};

void encode_batch_header(const BatchHeader& h, char* out);
BatchHeader decode_batch_header(const char* p);

// Size a record takes in a batch; the message size limit applies to key + value + headers.
size_t record_encoded_size(const OutMessage& m, int64_t ts_delta, uint32_t offset_delta);
// Writes the record at out (which has record_encoded_size bytes); returns the end.
char* encode_record(const OutMessage& m, int64_t ts_delta, uint32_t offset_delta, char* out);

// Builds the bytes of one batch on the writer side. Records are appended as they are sent; the
// base offset and CRC are filled in by finish() when the batch is written.
class BatchBuilder {
 public:
  BatchBuilder() { buf_.resize(kBatchHeaderSize); }
  bool empty() const { return count_ == 0; }
  uint32_t count() const { return count_; }
  size_t size() const { return buf_.size(); }
  int64_t first_timestamp() const { return first_ts_; }
  // Appends one record with the given (already-checked) encoded size.
  void append(const OutMessage& m, int64_t timestamp_ms);
  // Compresses (when asked), sets base offset, header and CRC; returns the bytes to write.
  std::string_view finish(int64_t base_offset, uint8_t compression);

 private:
  std::string buf_;         // header space followed by the records
  std::string compressed_;  // the written form when compressed
  uint32_t count_ = 0;
  int64_t first_ts_ = 0;
  int64_t max_ts_ = 0;
};

// The records of one verified batch, decoded into messages whose views point into `data`.
// Returns corruption (with `where` in the message) when the records area does not parse.
struct DecodedBatchStorage {
  std::string decompressed;     // when the batch was compressed
  std::vector<Header> headers;  // all records' headers, referenced by spans
};
[[nodiscard]] Status decode_records(const BatchHeader& h, std::string_view batch_bytes, int64_t min_offset,
                                    std::string_view topic, PartitionId partition,
                                    DecodedBatchStorage* storage, std::vector<Message>* out,
                                    const std::string& where);

// Checks magic, bounds and CRC of a complete batch; empty string when fine, else the reason.
std::string verify_batch(const BatchHeader& h, std::string_view batch_bytes);

std::string segment_name(int64_t base_offset, std::string_view suffix);

}  // namespace sluice::queue::log
