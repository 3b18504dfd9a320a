// The secret registry (remember_secret, redact_secrets, is_secret_setting) and printable(), which
// every log line, error message and dead-letter reason goes through.
#include <doctest/doctest.h>

#include <string>

#include "config/schema/printable.hpp"
#include "config/schema/secrets.hpp"

using namespace etld;

TEST_CASE("redact_secrets masks every remembered secret, the longest first; short ones are not remembered") {
  remember_secret("s3cr3t-alpha-0001");
  remember_secret("s3cr3t-alpha-0001-and-more");  // holds the first: masked whole
  remember_secret("short");                       // under kMinRedactedSecretBytes
  remember_secret("");
  CHECK(redact_secrets("a s3cr3t-alpha-0001 b s3cr3t-alpha-0001-and-more c s3cr3t-alpha-0001") ==
        "a *** b *** c ***");
  CHECK(redact_secrets("short stays") == "short stays");
  CHECK(redact_secrets("") == "");
}

TEST_CASE("remember_secret forgets the oldest past kMaxRememberedSecrets, not one still remembered again") {
  remember_secret("keep-me-remembered-01");
  for (std::size_t i = 0; i < kMaxRememberedSecrets; ++i) {
    if (i == kMaxRememberedSecrets / 2) remember_secret("keep-me-remembered-01");  // in use again
    remember_secret("rotated-secret-" + std::to_string(i));
  }
  CHECK(redact_secrets("keep-me-remembered-01") == "***");
  CHECK(redact_secrets("rotated-secret-0|") == "rotated-secret-0|");  // the oldest: forgotten
  CHECK(redact_secrets("rotated-secret-" + std::to_string(kMaxRememberedSecrets - 1)) == "***");
}

TEST_CASE("is_secret_setting: librdkafka and libpq settings holding secrets") {
  for (const char* name : {"sasl.password", "ssl.key.password", "ssl.key.pem", "sasl.jaas.config",
                           "sasl.oauthbearer.client.secret", "SASL.PASSWORD", "password", "sslpassword",
                           "ssl.keystore.password"})
    CHECK_MESSAGE(is_secret_setting(name), name);
  for (const char* name : {"sasl.mechanism", "sasl.username", "security.protocol", "host", "user"})
    CHECK_MESSAGE(!is_secret_setting(name), name);
}

TEST_CASE("printable escapes control characters, C1 controls, line separators and bytes that are not UTF-8") {
  CHECK(printable("plain text, ünïcødé €") == "plain text, ünïcødé €");
  CHECK(printable("a\nb\r\tc") == "a\\nb\\r\\tc");
  CHECK(printable("red \x1b[31mRED\x1b[0m") == "red \\x1b[31mRED\\x1b[0m");
  CHECK(printable(std::string("nul\0del\x7f", 8)) == "nul\\x00del\\x7f");
  CHECK(printable("csi \xc2\x9b"
                  "31m") == "csi \\u009b31m");
  CHECK(printable("ls \xe2\x80\xa8 ps \xe2\x80\xa9") == "ls \\u2028 ps \\u2029");
  CHECK(printable("bad \xff\xfe, cut \xe2\x82") == "bad \\xff\\xfe, cut \\xe2\\x82");
  CHECK(printable("overlong \xc0\xaf") == "overlong \\xc0\\xaf");
  CHECK(printable("quote \" and \\ stay") == "quote \" and \\ stay");
}

TEST_CASE("printable in JSON: the text is a valid JSON string body") {
  CHECK(printable("say \"hi\"\\\n\x01", std::string::npos, Escaping::json) == "say \\\"hi\\\"\\\\\\n\\u0001");
  CHECK(printable("bad \xff", std::string::npos, Escaping::json) == "bad \\\\xff");
}

TEST_CASE("printable bounds the escaped text at a character boundary and says how much was cut") {
  CHECK(printable("0123456789", 4) == "0123...(6 more bytes)");
  CHECK(printable("ab\ncd", 3) == "ab...(3 more bytes)");  // "\n" is two bytes escaped
  CHECK(printable("a€b", 2) == "a...(4 more bytes)");      // € is not split
  CHECK(printable("abc", 3) == "abc");
}
