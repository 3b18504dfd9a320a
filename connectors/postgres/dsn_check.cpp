#include "connectors/postgres/dsn_check.hpp"

#include <libpq-fe.h>

#include <algorithm>
#include <cctype>
#include <cstring>
#include <memory>
#include <string_view>
#include <vector>

#include "config/schema/diagnostics.hpp"
#include "config/schema/secrets.hpp"

namespace etld::pg {

namespace {

constexpr std::size_t npos = std::string::npos;

constexpr const char* kNotShown = "; the DSN is not shown: it may hold the password";
constexpr const char* kUriHint =
    "percent-encode reserved characters of the user name, password and database name: '%' as %25, "
    "'@' as %40, ':' as %3A, '/' as %2F, '?' as %3F, '&' as %26, '=' as %3D, a space as %20";
constexpr const char* kKeyValueHint =
    "write keyword=value pairs separated by spaces, and quote a value that holds spaces: "
    "password='my secret' (inside quotes write \\' and \\\\)";

std::string at(std::size_t pos) { return "at character " + std::to_string(pos + 1); }

std::size_t uri_prefix_length(std::string_view dsn) {
  for (std::string_view prefix : {"postgresql://", "postgres://"})
    if (dsn.substr(0, prefix.size()) == prefix) return prefix.size();
  return 0;
}

bool is_hex(char c) { return std::isxdigit(static_cast<unsigned char>(c)) != 0; }

struct Decoded {
  std::string text;
  std::size_t bad = npos;  // offset of a '%' not followed by two hex digits
  bool nul = false;        // %00, which libpq refuses
};

// Percent-decoding as libpq does it for the parts of a URI.
Decoded percent_decode(std::string_view s) {
  Decoded d;
  for (std::size_t i = 0; i < s.size(); ++i) {
    if (s[i] != '%') {
      d.text += s[i];
      continue;
    }
    if (i + 2 >= s.size() || !is_hex(s[i + 1]) || !is_hex(s[i + 2])) {
      if (d.bad == npos) d.bad = i;
      continue;
    }
    char c = static_cast<char>(std::stoi(std::string(s.substr(i + 1, 2)), nullptr, 16));
    if (c == '\0') d.nul = true;
    d.text += c;
    i += 2;
  }
  return d;
}

// The problem of percent-decoding `part` (the `what` of the URI, starting at `pos`), if any.
std::optional<DsnProblem> check_encoding(std::string_view part, std::size_t pos, const std::string& what) {
  Decoded d = percent_decode(part);
  if (d.bad != npos)
    return DsnProblem{
        "the " + what + " in the URI has a '%' not followed by two hex digits, " + at(pos + d.bad), kUriHint};
  if (d.nul) return DsnProblem{"the " + what + " in the URI holds %00, which libpq refuses", kUriHint};
  return std::nullopt;
}

std::vector<std::string> libpq_keywords() {
  std::vector<std::string> out;
  std::unique_ptr<PQconninfoOption, void (*)(PQconninfoOption*)> opts(PQconndefaults(), PQconninfoFree);
  if (opts)
    for (PQconninfoOption* o = opts.get(); o->keyword; ++o) out.emplace_back(o->keyword);
  return out;
}

bool is_libpq_keyword(const std::string& word) {
  static const std::vector<std::string> keywords = libpq_keywords();
  return std::find(keywords.begin(), keywords.end(), word) != keywords.end();
}

// " (did you mean 'host'?)" when `word` is a near miss of a libpq keyword: naming the keyword
// tells nothing of `word`, which is never shown (it may be a piece of a password).
std::string keyword_suggestion(const std::string& word) {
  static const std::vector<std::string> keywords = libpq_keywords();
  std::string hint = did_you_mean(word, keywords);
  return hint.empty() ? "" : " (" + hint + ")";
}

bool all_digits(std::string_view s) {
  for (char c : s)
    if (!std::isdigit(static_cast<unsigned char>(c))) return false;
  return true;
}

// The URI rules of libpq's conninfo_uri_parse_options, followed only to find where they fail.
std::optional<DsnProblem> check_uri(std::string_view dsn, std::size_t p) {
  const std::size_t n = dsn.size();
  auto stop_at = [&](std::size_t from, const char* stops) {
    while (from < n && !std::strchr(stops, dsn[from])) ++from;
    return from;
  };
  // user[:password]@ when an '@' comes before any '/'
  std::size_t q = stop_at(p, "@/");
  if (q < n && dsn[q] == '@') {
    std::size_t colon = stop_at(p, ":@");
    if (auto bad = check_encoding(dsn.substr(p, colon - p), p, "user name")) return bad;
    if (colon < q)
      if (auto bad = check_encoding(dsn.substr(colon + 1, q - colon - 1), colon + 1, "password")) return bad;
    p = q + 1;
  }
  // host[:port] [, host[:port] ...]
  char prev = '\0';
  for (;;) {
    std::size_t host = p, host_end = 0;
    if (p < n && dsn[p] == '[') {
      std::size_t close = dsn.find(']', p + 1);
      if (close == npos)
        return DsnProblem{"the IPv6 host address opened with '[' " + at(p) + " has no closing ']'",
                          "write an IPv6 host as [fd00::1]:5432"};
      if (close == p + 1) return DsnProblem{"the IPv6 host address " + at(p) + " is empty", ""};
      host = p + 1;
      host_end = close;
      p = close + 1;
      if (p < n && !std::strchr(":/?,", dsn[p]))
        return DsnProblem{"unexpected character " + at(p) + ", after an IPv6 host address",
                          "after ']' comes ':' and the port, '/' and the database, '?' or ','"};
    } else {
      p = stop_at(p, ":/?,");
      host_end = p;
    }
    if (auto bad = check_encoding(dsn.substr(host, host_end - host), host, "host")) return bad;
    prev = p < n ? dsn[p] : '\0';
    if (prev == ':') {
      std::size_t port = ++p;
      p = stop_at(p, "/?,");
      if (auto bad = check_encoding(dsn.substr(port, p - port), port, "port")) return bad;
      prev = p < n ? dsn[p] : '\0';
    }
    if (prev != ',') break;
    ++p;
  }
  if (prev != '\0' && prev != '?') {  // '/': the database name
    std::size_t db = ++p;
    p = stop_at(p, "?");
    if (auto bad = check_encoding(dsn.substr(db, p - db), db, "database name")) return bad;
    prev = p < n ? dsn[p] : '\0';
  }
  if (prev == '\0') return std::nullopt;
  ++p;  // query parameters: keyword=value&...
  for (int index = 1; p < n; ++index) {
    std::size_t start = p, end = stop_at(p, "&");
    std::string_view param = dsn.substr(start, end - start);
    std::string what = "query parameter " + std::to_string(index) + " (" + at(start) + ")";
    std::size_t eq = param.find('=');
    if (eq == npos)
      return DsnProblem{"the URI's " + what + " has no '='", "write ?keyword=value&keyword=value"};
    if (param.find('=', eq + 1) != npos)
      return DsnProblem{"the URI's " + what + " has a second '='", "write '=' inside a value as %3D"};
    if (auto bad = check_encoding(param.substr(0, eq), start, "name of " + what)) return bad;
    if (auto bad = check_encoding(param.substr(eq + 1), start + eq + 1, "value of " + what)) return bad;
    std::string keyword = percent_decode(param.substr(0, eq)).text;
    bool jdbc_ssl = keyword == "ssl" && percent_decode(param.substr(eq + 1)).text == "true";  // libpq's alias
    if (!jdbc_ssl && !is_libpq_keyword(keyword))
      return DsnProblem{
          "the URI's " + what + " is not a libpq connection option" + keyword_suggestion(keyword),
          "see the parameter key words of libpq's documentation; an '&' inside a value is "
          "written %26"};
    p = end + 1;
  }
  return std::nullopt;
}

bool space(char c) { return std::isspace(static_cast<unsigned char>(c)) != 0; }

// The rules of libpq's conninfo_parse for keyword=value strings, followed to find where they fail.
std::optional<DsnProblem> check_key_values(std::string_view dsn) {
  const std::size_t n = dsn.size();
  std::size_t p = 0;
  std::string last_keyword;  // of the pair before, when it is a known one
  bool last_unquoted = false;
  while (p < n) {
    if (space(dsn[p])) {
      ++p;
      continue;
    }
    std::size_t name = p;
    while (p < n && dsn[p] != '=' && !space(dsn[p])) ++p;
    std::size_t name_end = p;
    while (p < n && space(dsn[p])) ++p;
    if (p >= n || dsn[p] != '=') {
      if (!last_keyword.empty() && last_unquoted)
        return DsnProblem{"the value of '" + last_keyword + "' ends at the space before character " +
                              std::to_string(name + 1) + ", and the word there has no '='",
                          kKeyValueHint};
      return DsnProblem{"the word " + at(name) + " has no '=' after it", kKeyValueHint};
    }
    ++p;
    while (p < n && space(dsn[p])) ++p;
    std::string keyword(dsn.substr(name, name_end - name));
    if (p < n && dsn[p] == '\'') {
      std::size_t open = p++;
      for (;;) {
        if (p >= n)
          return DsnProblem{"the quoted value opened " + at(open) + " has no closing quote",
                            "write a quote inside a quoted value as \\'"};
        if (dsn[p] == '\\') {
          p += 2;
          continue;
        }
        if (dsn[p++] == '\'') break;
      }
      last_unquoted = false;
    } else {
      while (p < n && !space(dsn[p])) p += dsn[p] == '\\' ? 2 : 1;
      last_unquoted = true;
    }
    if (!is_libpq_keyword(keyword))
      return DsnProblem{
          "the keyword " + at(name) + " is not a libpq connection option" + keyword_suggestion(keyword),
          kKeyValueHint};
    last_keyword = keyword;
  }
  return std::nullopt;
}

struct Parsed {
  std::unique_ptr<PQconninfoOption, void (*)(PQconninfoOption*)> opts{nullptr, PQconninfoFree};
  const char* value(const char* keyword) const {
    if (opts)
      for (PQconninfoOption* o = opts.get(); o->keyword; ++o)
        if (std::strcmp(o->keyword, keyword) == 0) return o->val;
    return nullptr;
  }
};

// libpq's parse; its error message is dropped unread (it may quote the password).
Parsed parse(const std::string& dsn) {
  char* err = nullptr;
  Parsed p;
  p.opts.reset(PQconninfoParse(dsn.c_str(), &err));
  if (err) PQfreemem(err);
  return p;
}

}  // namespace

std::optional<DsnProblem> check_dsn(const std::string& dsn) {
  const std::size_t prefix = uri_prefix_length(dsn);
  Parsed parsed = parse(dsn);
  if (!parsed.opts) {
    auto problem = prefix ? check_uri(dsn, prefix) : check_key_values(dsn);
    if (!problem)
      problem = DsnProblem{"libpq cannot parse it",
                           prefix ? kUriHint : "write keyword=value pairs (host=... dbname=...) or a URI"};
    problem->message = "cannot be parsed by libpq: " + problem->message;
    problem->hint = problem->hint.empty() ? std::string(kNotShown + 2) : problem->hint + kNotShown;
    return problem;
  }
  // libpq parsed it, but a password's unencoded '/' or '@' moved part of it into the port, host or
  // database name, which libpq and the server would then quote in their errors.
  if (const char* port = parsed.value("port")) {
    std::string_view ports = port;
    for (std::size_t start = 0;;) {
      std::size_t comma = ports.find(',', start);
      if (!all_digits(ports.substr(start, comma == npos ? npos : comma - start)))
        return DsnProblem{"the port is not a number",
                          std::string(prefix ? kUriHint : "write port=5432") + kNotShown};
      if (comma == npos) break;
      start = comma + 1;
    }
  }
  if (prefix) {
    std::size_t authority_end = dsn.find_first_of("/?", prefix);
    std::string_view authority = std::string_view(dsn).substr(prefix, authority_end - prefix);
    std::size_t first_at = authority.find('@');
    if (first_at != npos && authority.find('@', first_at + 1) != npos)
      return DsnProblem{
          "the URI has more than one '@' before the host: libpq would take the text after the "
          "first one for the host",
          std::string(kUriHint) + kNotShown};
    if (authority_end != npos && dsn[authority_end] == '/') {
      std::size_t path_end = dsn.find('?', authority_end);
      if (std::string_view(dsn).substr(authority_end, path_end - authority_end).find('@') != npos)
        return DsnProblem{"the URI has an '@' after the first '/': a '/' in the password ends the host part",
                          std::string(kUriHint) + kNotShown};
    }
  }
  return std::nullopt;
}

void remember_dsn_secrets(const std::string& dsn) {
  Parsed parsed = parse(dsn);
  for (const char* keyword : {"password", "sslpassword"})
    if (const char* v = parsed.value(keyword)) remember_secret(v);
  auto remember_written = [](std::string_view raw) {
    remember_secret(raw);
    Decoded d = percent_decode(raw);
    if (d.bad == npos) remember_secret(d.text);
  };
  const std::size_t prefix = uri_prefix_length(dsn);
  std::string_view s = dsn;
  if (prefix) {
    // As libpq reads it (up to the first '@' before any '/'), and as it was probably meant (up to
    // the last '@', when an unencoded '/' or '@' is part of the password).
    std::size_t colon = s.find(':', prefix);
    for (std::size_t end : {s.find_first_of("@/", prefix), s.rfind('@')})
      if (colon != npos && end != npos && end > colon && s[end] == '@')
        remember_written(s.substr(colon + 1, end - colon - 1));
    for (std::string_view key : {"password=", "sslpassword="})
      for (std::size_t at = s.find(key); at != npos; at = s.find(key, at + 1))
        if (at > 0 && (s[at - 1] == '?' || s[at - 1] == '&')) {
          std::size_t start = at + key.size();
          remember_written(s.substr(start, s.find('&', start) - start));
        }
    return;
  }
  // keyword=value: the value of password=, and when unquoted, with the word after it that has no
  // '=' (an unquoted password with a space, the rest of which libpq takes for a keyword).
  for (std::string_view key : {"password", "sslpassword"})
    for (std::size_t at = s.find(key); at != npos; at = s.find(key, at + 1)) {
      if (at > 0 && !space(s[at - 1])) continue;
      std::size_t p = at + key.size();
      while (p < s.size() && space(s[p])) ++p;
      if (p >= s.size() || s[p] != '=') continue;
      ++p;
      while (p < s.size() && space(s[p])) ++p;
      std::size_t start = p;
      if (p < s.size() && s[p] == '\'') {
        std::size_t close = s.find('\'', p + 1);
        remember_secret(s.substr(p + 1, close == npos ? npos : close - p - 1));
        continue;
      }
      while (p < s.size() && !space(s[p])) ++p;
      remember_secret(s.substr(start, p - start));
      std::size_t next = p;
      while (next < s.size() && space(s[next])) ++next;
      std::size_t word_end = next;
      while (word_end < s.size() && !space(s[word_end]) && s[word_end] != '=') ++word_end;
      if (word_end > next && (word_end >= s.size() || s[word_end] != '=')) {
        remember_secret(s.substr(next, word_end - next));
        remember_secret(s.substr(start, word_end - start));
      }
    }
}

}  // namespace etld::pg
