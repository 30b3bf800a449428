// AWS Signature Version 4 for S3 requests (header-based, single chunk): the canonical request, the
// string to sign, the signing key and the Authorization header, as
// docs.aws.amazon.com/AmazonS3/latest/API/sig-v4-header-based-auth.html describes them.
// Pure functions over values (HMAC and SHA-256 from OpenSSL's EVP); thread-safe.
#pragma once

#include <string>
#include <string_view>
#include <utility>
#include <vector>

namespace sluice::store::s3 {

// x-amz-content-sha256 for a body that is not hashed (S3 accepts it over TLS and plain HTTP).
inline constexpr std::string_view kUnsignedPayload = "UNSIGNED-PAYLOAD";

struct Credentials {
  std::string access_key;
  std::string secret_key;
  std::string session_token;  // empty unless temporary credentials (sent as x-amz-security-token)
};

// A request as it is signed. Query parameters and the path are given decoded; signing encodes them.
struct SignRequest {
  std::string method;                                        // "GET", "PUT", ...
  std::string path;                                          // "/bucket/key" or "/key", decoded
  std::vector<std::pair<std::string, std::string>> query;    // decoded name/value pairs
  std::vector<std::pair<std::string, std::string>> headers;  // every header to sign, host included
  std::string payload_hash;                                  // hex SHA-256 of the body or kUnsignedPayload
  std::string amz_date;                                      // "20130524T000000Z"
  std::string region;                                        // "us-east-1"
  std::string service = "s3";
};

struct Signature {
  std::string canonical_request;
  std::string string_to_sign;
  std::string signature;      // 64 hex digits
  std::string authorization;  // the Authorization header's value
};

// "a=1&b=2": names and values encoded, sorted by encoded name then value; "a=" for empty values.
std::string canonical_query(const std::vector<std::pair<std::string, std::string>>& query);

std::string sha256_hex(std::string_view data);
std::string hmac_sha256(std::string_view key, std::string_view data);  // the raw 32 bytes
std::string to_hex(std::string_view bytes);

// HMAC chain "AWS4"+secret -> date -> region -> service -> "aws4_request" (raw bytes).
std::string signing_key(std::string_view secret, std::string_view date, std::string_view region,
                        std::string_view service);

Signature sign(const SignRequest& req, const Credentials& creds);

// "20130524T000000Z" for a time in seconds since the epoch (UTC).
std::string amz_date(long long epoch_seconds);

}  // namespace sluice::store::s3
