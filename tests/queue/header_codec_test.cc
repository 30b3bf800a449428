// The header codec the redis and amqp backends share (queue/header_codec.h).
#include "queue/header_codec.h"

#include <gtest/gtest.h>

#include <string>
#include <vector>

namespace sluice::queue {
namespace {

TEST(HeaderCodec, RoundTripIncludingBinaryAndEmpty) {
  const std::string bin("a\0b\xff", 4);
  std::vector<Header> in = {{"trace_id", "abc"}, {"", ""}, {"bin", bin}};
  std::string blob;
  encode_headers(in, blob);
  std::vector<Header> out;
  ASSERT_TRUE(decode_headers(blob, out));
  ASSERT_EQ(out.size(), 3u);
  EXPECT_EQ(out[0].key, "trace_id");
  EXPECT_EQ(out[0].value, "abc");
  EXPECT_EQ(out[1].key, "");
  EXPECT_EQ(out[2].value, bin);
  out.clear();
  EXPECT_FALSE(decode_headers(std::string_view(blob).substr(0, blob.size() - 1), out)) << "a truncated blob";
  out.clear();
  EXPECT_FALSE(decode_headers("\x05\x00\x00", out));
}

}  // namespace
}  // namespace sluice::queue
