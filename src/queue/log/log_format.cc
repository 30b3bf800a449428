#include "queue/log/log_format.h"

#include <lz4.h>
#include <zstd.h>

#include <cstdio>

#include "base/crc32c.h"

namespace sluice::queue::log {

void encode_batch_header(const BatchHeader& h, char* out) {
  put_u64(out, static_cast<uint64_t>(h.base_offset));
  put_u32(out + 8, h.length);
  put_u32(out + 12, h.crc);
  out[16] = static_cast<char>(h.magic);
  out[17] = static_cast<char>(h.attributes);
  put_u16(out + 18, 0);
  put_u32(out + 20, h.record_count);
  put_u64(out + 24, static_cast<uint64_t>(h.first_timestamp));
  put_u64(out + 32, static_cast<uint64_t>(h.max_timestamp));
  put_u32(out + 40, h.records_size);
}

BatchHeader decode_batch_header(const char* p) {
  BatchHeader h;
  h.base_offset = static_cast<int64_t>(get_u64(p));
  h.length = get_u32(p + 8);
  h.crc = get_u32(p + 12);
  h.magic = static_cast<uint8_t>(p[16]);
  h.attributes = static_cast<uint8_t>(p[17]);
  h.record_count = get_u32(p + 20);
  h.first_timestamp = static_cast<int64_t>(get_u64(p + 24));
  h.max_timestamp = static_cast<int64_t>(get_u64(p + 32));
  h.records_size = get_u32(p + 40);
  return h;
}

static size_t body_size(const OutMessage& m, int64_t ts_delta, uint32_t offset_delta) {
  size_t n = varint_size(zigzag(ts_delta)) + varint_size(offset_delta);
  int64_t klen = m.key ? static_cast<int64_t>(m.key->size()) : -1;
  n += varint_size(zigzag(klen)) + (m.key ? m.key->size() : 0);
  n += varint_size(m.value.size()) + m.value.size();
  n += varint_size(m.headers.size());
  for (const auto& h : m.headers) {
    n += varint_size(h.key.size()) + h.key.size() + varint_size(h.value.size()) + h.value.size();
  }
  return n;
}

size_t record_encoded_size(const OutMessage& m, int64_t ts_delta, uint32_t offset_delta) {
  size_t b = body_size(m, ts_delta, offset_delta);
  return varint_size(b) + b;
}

char* encode_record(const OutMessage& m, int64_t ts_delta, uint32_t offset_delta, char* p) {
  p = put_varint(p, body_size(m, ts_delta, offset_delta));
  p = put_varint(p, zigzag(ts_delta));
  p = put_varint(p, offset_delta);
  if (m.key) {
    p = put_varint(p, zigzag(static_cast<int64_t>(m.key->size())));
    std::memcpy(p, m.key->data(), m.key->size());
    p += m.key->size();
  } else {
    p = put_varint(p, zigzag(-1));
  }
  p = put_varint(p, m.value.size());
  if (!m.value.empty()) std::memcpy(p, m.value.data(), m.value.size());
  p += m.value.size();
  p = put_varint(p, m.headers.size());
  for (const auto& h : m.headers) {
    p = put_varint(p, h.key.size());
    if (!h.key.empty()) std::memcpy(p, h.key.data(), h.key.size());
    p += h.key.size();
    p = put_varint(p, h.value.size());
    if (!h.value.empty()) std::memcpy(p, h.value.data(), h.value.size());
    p += h.value.size();
  }
  return p;
}

void BatchBuilder::append(const OutMessage& m, int64_t ts) {
  if (count_ == 0) {
    first_ts_ = ts;
    max_ts_ = ts;
  }
  if (ts > max_ts_) max_ts_ = ts;
  int64_t delta = ts - first_ts_;
  size_t n = record_encoded_size(m, delta, count_);
  size_t old = buf_.size();
  buf_.resize(old + n);
  encode_record(m, delta, count_, buf_.data() + old);
  ++count_;
}

std::string_view BatchBuilder::finish(int64_t base_offset, uint8_t compression) {
  BatchHeader h;
  h.base_offset = base_offset;
  h.record_count = count_;
  h.first_timestamp = first_ts_;
  h.max_timestamp = max_ts_;
  h.records_size = static_cast<uint32_t>(buf_.size() - kBatchHeaderSize);
  std::string* out = &buf_;
  if (compression != kNone) {
    const char* src = buf_.data() + kBatchHeaderSize;
    size_t src_n = buf_.size() - kBatchHeaderSize;
    size_t bound = compression == kLz4 ? static_cast<size_t>(LZ4_compressBound(static_cast<int>(src_n)))
                                       : ZSTD_compressBound(src_n);
    compressed_.resize(kBatchHeaderSize + bound);
    size_t n = 0;
    if (compression == kLz4) {
      int r = LZ4_compress_default(src, compressed_.data() + kBatchHeaderSize, static_cast<int>(src_n),
                                   static_cast<int>(bound));
      n = r > 0 ? static_cast<size_t>(r) : 0;
    } else {
      size_t r = ZSTD_compress(compressed_.data() + kBatchHeaderSize, bound, src, src_n, 1);
      n = ZSTD_isError(r) ? 0 : r;
    }
    // Store uncompressed when compression fails or does not pay.
    if (n > 0 && n < src_n) {
      compressed_.resize(kBatchHeaderSize + n);
      out = &compressed_;
      h.attributes = compression;
    }
  }
  h.length = static_cast<uint32_t>(out->size() - kBatchLengthFieldEnd);
  encode_batch_header(h, out->data());
  h.crc = crc32c::value(out->data() + kBatchCrcStart, out->size() - kBatchCrcStart);
  put_u32(out->data() + 12, h.crc);
  return *out;
}

std::string verify_batch(const BatchHeader& h, std::string_view bytes) {
  if (h.magic != kBatchMagic) return "bad magic " + std::to_string(h.magic);
  if (h.record_count == 0) return "batch with no records";
  if ((h.attributes & ~kCompressionMask) != 0 || (h.attributes & kCompressionMask) > kZstd) {
    return "unknown attributes " + std::to_string(h.attributes);
  }
  if (h.length < kBatchHeaderSize - kBatchLengthFieldEnd || bytes.size() != h.total_size()) {
    return "bad length " + std::to_string(h.length);
  }
  uint32_t crc = crc32c::value(bytes.data() + kBatchCrcStart, bytes.size() - kBatchCrcStart);
  if (crc != h.crc) {
    char buf[80];
    std::snprintf(buf, sizeof buf, "CRC mismatch (stored %08x, computed %08x)", h.crc, crc);
    return buf;
  }
  return {};
}

Status decode_records(const BatchHeader& h, std::string_view bytes, int64_t min_offset,
                      std::string_view topic, PartitionId partition, DecodedBatchStorage* storage,
                      std::vector<Message>* out, const std::string& where) {
  auto bad = [&](std::string_view why) { return Status::corruption(where + ": " + std::string(why)); };
  std::string_view recs = bytes.substr(kBatchHeaderSize);
  uint8_t comp = h.attributes & kCompressionMask;
  if (comp != kNone) {
    storage->decompressed.resize(h.records_size);
    if (comp == kLz4) {
      int r = LZ4_decompress_safe(recs.data(), storage->decompressed.data(), static_cast<int>(recs.size()),
                                  static_cast<int>(h.records_size));
      if (r < 0 || static_cast<uint32_t>(r) != h.records_size) return bad("lz4 records do not decompress");
    } else {
      size_t r = ZSTD_decompress(storage->decompressed.data(), h.records_size, recs.data(), recs.size());
      if (ZSTD_isError(r) || r != h.records_size) return bad("zstd records do not decompress");
    }
    recs = storage->decompressed;
  } else if (recs.size() != h.records_size) {
    return bad("records size does not match the header");
  }
  // First pass counts headers so the spans into storage->headers stay valid.
  const char* p = recs.data();
  const char* end = p + recs.size();
  size_t first_out = out->size();
  struct Pending {
    size_t header_begin, header_count;
  };
  std::vector<Pending> pend;
  pend.reserve(h.record_count);
  for (uint32_t i = 0; i < h.record_count; ++i) {
    uint64_t len, tsd, od, klen_z, vlen, hc;
    p = get_varint(p, end, &len);
    if (!p || len > static_cast<uint64_t>(end - p)) return bad("record length runs past the batch");
    const char* rend = p + len;
    if (!(p = get_varint(p, rend, &tsd)) || !(p = get_varint(p, rend, &od)) ||
        !(p = get_varint(p, rend, &klen_z))) {
      return bad("truncated record fields");
    }
    if (od != i) return bad("record offset delta out of order");
    Message m;
    m.topic = topic;
    m.partition = partition;
    m.offset = Offset(h.base_offset + static_cast<int64_t>(od));
    m.timestamp_ms = h.first_timestamp + unzigzag(tsd);
    int64_t klen = unzigzag(klen_z);
    if (klen >= 0) {
      if (klen > rend - p) return bad("key runs past the record");
      m.key = std::string_view(p, static_cast<size_t>(klen));
      p += klen;
    } else if (klen != -1) {
      return bad("negative key length");
    }
    if (!(p = get_varint(p, rend, &vlen)) || vlen > static_cast<uint64_t>(rend - p)) {
      return bad("value runs past the record");
    }
    m.value = std::string_view(p, vlen);
    p += vlen;
    if (!(p = get_varint(p, rend, &hc))) return bad("truncated header count");
    size_t hb = storage->headers.size();
    for (uint64_t k = 0; k < hc; ++k) {
      uint64_t hk, hv;
      if (!(p = get_varint(p, rend, &hk)) || hk > static_cast<uint64_t>(rend - p))
        return bad("bad header key");
      std::string_view key(p, hk);
      p += hk;
      if (!(p = get_varint(p, rend, &hv)) || hv > static_cast<uint64_t>(rend - p))
        return bad("bad header value");
      storage->headers.push_back({key, std::string_view(p, hv)});
      p += hv;
    }
    if (p != rend) return bad("record has trailing bytes");
    if (m.offset.value() >= min_offset) {
      out->push_back(std::move(m));
      pend.push_back({hb, static_cast<size_t>(hc)});
    } else {
      storage->headers.resize(hb);
    }
  }
  if (p != end) return bad("batch has trailing bytes after its records");
  for (size_t i = 0; i < pend.size(); ++i) {
    (*out)[first_out + i].headers =
        std::span<const Header>(storage->headers.data() + pend[i].header_begin, pend[i].header_count);
  }
  return {};
}

std::string segment_name(int64_t base_offset, std::string_view suffix) {
  char buf[32];
  std::snprintf(buf, sizeof buf, "%020lld", static_cast<long long>(base_offset));
  return std::string(buf) + std::string(suffix);
}

}  // namespace sluice::queue::log
