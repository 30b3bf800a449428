// SigV4 against AWS's published examples (Amazon S3 API reference, "Signature Calculations for the
// Authorization Header: Transferring Payload in a Single Chunk", example "GET Object") and the
// URI-encoding and query rules the signer depends on.
#include "store/s3/sigv4.h"

#include <gtest/gtest.h>

#include "config/property.h"

namespace sluice::store::s3 {
namespace {

const Credentials kExampleCreds{"AKIAIOSFODNN7EXAMPLE", "wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY", ""};
constexpr const char* kEmptySha256 = "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855";

// The documented request: GET /test.txt from examplebucket, first 10 bytes, empty payload.
SignRequest aws_get_example() {
  SignRequest r;
  r.method = "GET";
  r.path = "/test.txt";
  r.headers = {{"Host", "examplebucket.s3.amazonaws.com"},
               {"Range", "bytes=0-9"},
               {"x-amz-content-sha256", kEmptySha256},
               {"x-amz-date", "20130524T000000Z"}};
  r.payload_hash = kEmptySha256;
  r.amz_date = "20130524T000000Z";
  r.region = "us-east-1";
  return r;
}

TEST(SigV4, AwsGetObjectExample) {
  const SignRequest r = aws_get_example();
  const Signature s = sign(r, kExampleCreds);
  EXPECT_EQ(s.canonical_request,
            "GET\n/test.txt\n\nhost:examplebucket.s3.amazonaws.com\nrange:bytes=0-9\n"
            "x-amz-content-sha256:e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855\n"
            "x-amz-date:20130524T000000Z\n\nhost;range;x-amz-content-sha256;x-amz-date\n"
            "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855");
  EXPECT_EQ(s.string_to_sign,
            "AWS4-HMAC-SHA256\n20130524T000000Z\n20130524/us-east-1/s3/aws4_request\n"
            "7344ae5b7ee6c3e7e6b0fe0640412a37625d1fbfff95c48bbb2dc43964946972");
  EXPECT_EQ(s.signature, "f0e8bdb87c964420e857bd35b5d6ed310bd44f0170aba48dd91039c6036bdb41");
  EXPECT_EQ(s.authorization,
            "AWS4-HMAC-SHA256 Credential=AKIAIOSFODNN7EXAMPLE/20130524/us-east-1/s3/aws4_request,"
            "SignedHeaders=host;range;x-amz-content-sha256;x-amz-date,"
            "Signature=f0e8bdb87c964420e857bd35b5d6ed310bd44f0170aba48dd91039c6036bdb41");
}

TEST(SigV4, HeaderOrderAndSpacingDoNotChangeTheSignature) {
  SignRequest a = aws_get_example();
  a.headers = {{"x-amz-date", "20130524T000000Z"},
               {"RANGE", "  bytes=0-9 "},
               {"x-amz-content-sha256", kEmptySha256},
               {"host", "examplebucket.s3.amazonaws.com"}};
  EXPECT_EQ(sign(a, kExampleCreds).signature,
            "f0e8bdb87c964420e857bd35b5d6ed310bd44f0170aba48dd91039c6036bdb41");
  // Any change to what is signed changes it.
  a.path = "/test2.txt";
  EXPECT_NE(sign(a, kExampleCreds).signature,
            "f0e8bdb87c964420e857bd35b5d6ed310bd44f0170aba48dd91039c6036bdb41");
}

TEST(SigV4, Sha256AndHmacPrimitives) {
  EXPECT_EQ(sha256_hex(""), kEmptySha256);
  EXPECT_EQ(sha256_hex("abc"),
            "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad");  // FIPS 180-2
  // RFC 4231 test case 2.
  EXPECT_EQ(to_hex(hmac_sha256("Jefe", "what do ya want for nothing?")),
            "5bdcc146bf60754e6a042426089575c75a003f089d2739839dec58b964ec3843");
  EXPECT_EQ(signing_key("s", "20130524", "us-east-1", "s3").size(), 32u);
}

TEST(SigV4, UriEncoding) {
  EXPECT_EQ(config::percent_encode("AZaz09-_.~"), "AZaz09-_.~");
  EXPECT_EQ(config::percent_encode("a b"), "a%20b");  // never '+'
  EXPECT_EQ(config::percent_encode("a+b=c&d"), "a%2Bb%3Dc%26d");
  EXPECT_EQ(config::percent_encode("dir/file name.txt", /*keep_slash=*/true), "dir/file%20name.txt");
  EXPECT_EQ(config::percent_encode("dir/file"), "dir%2Ffile");
  EXPECT_EQ(config::percent_encode("*"), "%2A");
  EXPECT_EQ(config::percent_encode("\xE6\x96\x87", /*keep_slash=*/true),
            "%E6%96%87");  // UTF-8 bytes, upper-case hex
  EXPECT_EQ(config::percent_encode("%"), "%25");
}

TEST(SigV4, CanonicalQuery) {
  EXPECT_EQ(canonical_query({}), "");
  // Sorted by encoded name; empty values keep their '='; values are encoded with '/' too.
  EXPECT_EQ(canonical_query({{"prefix", "J"}, {"max-keys", "2"}}), "max-keys=2&prefix=J");
  EXPECT_EQ(canonical_query({{"uploads", ""}}), "uploads=");
  EXPECT_EQ(canonical_query({{"uploadId", "a/b c"}, {"partNumber", "1"}}), "partNumber=1&uploadId=a%2Fb%20c");
  EXPECT_EQ(canonical_query({{"list-type", "2"},
                             {"continuation-token", "1ueGcxLPRx1Tr/XYExHnhbYLgveDs2J/wm36Hy4vbOwM="}}),
            "continuation-token=1ueGcxLPRx1Tr%2FXYExHnhbYLgveDs2J%2Fwm36Hy4vbOwM%3D&list-type=2");
  EXPECT_EQ(canonical_query({{"b", "2"}, {"a", "2"}, {"a", "1"}}), "a=1&a=2&b=2");
}

TEST(SigV4, AmzDate) {
  EXPECT_EQ(amz_date(1369353600), "20130524T000000Z");
  EXPECT_EQ(amz_date(0), "19700101T000000Z");
}

}  // namespace
}  // namespace sluice::store::s3
