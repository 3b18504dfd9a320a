#include "daemon/tap_cmd.hpp"

#include <cstdlib>
#include <fstream>
#include <iostream>
#include <optional>
#include <stdexcept>

#include <fmt/format.h>

#include "config/admin_token.hpp"
#include "daemon/admin_client.hpp"
#include "daemon/admin_tap.hpp"
#include "daemon/number_text.hpp"
#include "stages/engine/value.hpp"

namespace etld {

const char* const kTapUsage =
    R"(Usage: etld tap STAGE [--admin HOST:PORT] [--token-file FILE] [--limit 100] [--rate 10]
                [--max-bytes 4096] [--seconds 60] [--json]

Prints a sample of the live events leaving STAGE of a running etld (for a sink: the events it
receives), from its admin endpoint (GET /tap): at most RATE events a second and LIMIT in all,
for at most SECONDS, each event's key, value and headers cut to MAX_BYTES. Tapping only copies:
events, their order and their acknowledgements are as they would be without it, and a reader
too slow for the sample loses samples ("dropped N"), never slows the pipeline. Events may hold
personal data, so the daemon serves taps only to the holder of its admin token: without
admin.token_file (or etld run --admin-token-file) tap is off.

  --admin HOST:PORT   the admin endpoint (admin.address, or etld run --admin-address);
                      default: $ETLD_ADMIN_ADDRESS. 0.0.0.0 and [::] mean this host.
  --token-file FILE   the file holding the daemon's admin token (its admin.token_file);
                      default: $ETLD_ADMIN_TOKEN_FILE
  --limit N           events in all (default 100, at most 10000)
  --rate R            events a second at most (default 10, at most 1000)
  --max-bytes B       of the key, of the value and of all headers together (default 4096,
                      at most 65536); what is cut is marked [cut]
  --seconds S         stop after S seconds (default 60, at most 3600)
  --json              the endpoint's NDJSON as it comes, one JSON object per line
                      (docs/operations.md lists the fields)

Text: one line per event, STAGE TOPIC/PARTITION@OFFSET key=KEY VALUE (the record as JSON once
the stage parsed it, else the payload; control characters escaped), then [headers: ...] and
REJECTED: REASON when set; how many were sampled and why it ended goes to stderr.
Exit status: 0, 1 when the endpoint cannot be reached or refuses (tap off, wrong token,
unknown stage, too many taps), 2 usage error.
)";

namespace {

int usage_error(const std::string& message) {
  std::cerr << "etld tap: " << message << "\n(see etld tap --help)\n";
  return 2;
}

// The token of `path`: the file's one line. Read as the client (not the daemon's checks of who
// owns it: an operator reads the daemon's file through sudo or a copy of their own).
std::string read_token_file(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  if (!in) throw std::runtime_error("cannot read the token file '" + path + "'");
  std::string token(kMaxAdminTokenChars + 3, '\0');
  in.read(token.data(), static_cast<std::streamsize>(token.size()));
  token.resize(static_cast<std::size_t>(in.gcount()));
  while (!token.empty() && (token.back() == '\n' || token.back() == '\r')) token.pop_back();
  if (token.empty() || token.size() > kMaxAdminTokenChars ||
      token.find_first_of(" \t\r\n") != std::string::npos)
    throw std::runtime_error("the token file '" + path + "' does not hold one token on one line");
  return token;
}

// Event data shown on a terminal: control characters (escape sequences) as escapes.
std::string printable(std::string_view s) {
  std::string out;
  for (unsigned char c : s) {
    if (c == '\n')
      out += "\\n";
    else if (c == '\t')
      out += "\\t";
    else if (c < 0x20 || c == 0x7f)
      out += fmt::format("\\x{:02x}", c);
    else
      out += static_cast<char>(c);
  }
  return out;
}

const std::string* string_of(const Value& o, std::string_view name) {
  const auto* v = o.find(name);
  return v && v->kind() == Value::Kind::string ? &v->as_string() : nullptr;
}
bool flag(const Value& o, std::string_view name) {
  const auto* v = o.find(name);
  return v && v->kind() == Value::Kind::boolean && v->as_bool();
}

std::string field_text(const Value& o, std::string_view name) {
  const auto* text = string_of(o, name);
  if (!text) return "(none)";
  std::string out = flag(o, std::string(name) + "_base64") ? "base64:" + *text : printable(*text);
  if (flag(o, std::string(name) + "_truncated")) out += " [cut]";
  return out;
}

std::string event_text(const Value& e) {
  std::string where = "-";
  if (const auto* topic = string_of(e, "topic")) {
    where = printable(*topic);
    if (const auto* p = e.find("partition"); p && p->kind() == Value::Kind::integer)
      where += "/" + std::to_string(p->as_int());
  }
  if (const auto* offset = e.find("offset"); offset && offset->kind() == Value::Kind::integer)
    where += "@" + std::to_string(offset->as_int());
  const auto* stage = string_of(e, "stage");
  std::string line = printable(stage ? *stage : "?") + "  " + where + "  key=" + field_text(e, "key") + "  " +
                     (string_of(e, "value") ? field_text(e, "value") : "(tombstone)");
  if (const auto* headers = e.find("headers");
      headers && headers->kind() == Value::Kind::array && !headers->as_array().empty()) {
    std::string list;
    for (const auto& h : headers->as_array()) {
      const auto* name = string_of(h, "name");
      const auto* value = string_of(h, "value");
      list += (list.empty() ? "" : ", ") + printable(name ? *name : "") + "=" +
              printable(value ? *value : "") + (flag(h, "truncated") ? " [cut]" : "");
    }
    line += "  [headers: " + list + "]";
  }
  if (const auto* why = string_of(e, "rejection")) line += "  REJECTED: " + printable(*why);
  return line;
}

struct Options {
  std::string stage, admin, token_file;
  std::size_t limit = TapCaps::default_limit, max_bytes = TapCaps::default_max_bytes;
  double rate = TapCaps::default_rate;
  int seconds = TapCaps::default_seconds;
  bool json = false;
};

template <class T>
T number_arg(const std::string& name, const std::string& text, T low, T high) {
  if (auto v = number_in_range(text, low, high)) return *v;
  throw std::invalid_argument(fmt::format("{} '{}' is not a number from {} to {}", name, text, low, high));
}

// Percent-encodes a query parameter's value.
std::string query_value(std::string_view s) {
  std::string out;
  for (unsigned char c : s) {
    if (std::isalnum(c) || c == '-' || c == '_' || c == '.' || c == '~')
      out += static_cast<char>(c);
    else
      out += fmt::format("%{:02X}", c);
  }
  return out;
}

// Reads the stream: prints each line as it completes; returns the end line's object, if any came.
class StreamPrinter {
 public:
  explicit StreamPrinter(bool json) : json_(json) {}
  void take(std::string_view chunk) {
    pending_.append(chunk);
    std::size_t start = 0;
    for (auto nl = pending_.find('\n'); nl != std::string::npos; nl = pending_.find('\n', start)) {
      line(std::string_view(pending_).substr(start, nl - start));
      start = nl + 1;
    }
    pending_.erase(0, start);
  }
  const std::optional<Value>& end() const { return end_; }
  std::uint64_t events() const { return events_; }

 private:
  void line(std::string_view text) {
    if (text.empty()) return;
    Value v;
    try {
      v = parse_json(text);
    } catch (const JsonError& e) {
      throw std::runtime_error(std::string("the admin endpoint sent a line that is not JSON: ") + e.what());
    }
    if (const auto* end = v.find("end")) {
      end_ = *end;
      if (json_) std::cout << text << "\n" << std::flush;
      return;
    }
    if (const auto* dropped = v.find("dropped")) {
      if (json_)
        std::cout << text << "\n" << std::flush;
      else
        std::cerr << "etld tap: dropped " << dropped->to_json()
                  << " sampled events this reader was too slow to take\n";
      return;
    }
    ++events_;
    std::cout << (json_ ? std::string(text) : event_text(v)) << "\n" << std::flush;
  }

  const bool json_;
  std::string pending_;
  std::optional<Value> end_;
  std::uint64_t events_ = 0;
};

}  // namespace

int tap_main(const std::vector<std::string>& args) {
  Options o;
  if (const char* env = std::getenv("ETLD_ADMIN_ADDRESS")) o.admin = env;
  if (const char* env = std::getenv("ETLD_ADMIN_TOKEN_FILE")) o.token_file = env;
  for (std::size_t i = 0; i < args.size(); ++i) {
    const auto& a = args[i];
    auto value = [&]() -> std::string {
      if (i + 1 >= args.size()) throw std::invalid_argument(a + " needs a value");
      return args[++i];
    };
    try {
      if (a == "--help" || a == "-h") {
        std::cout << kTapUsage;
        return 0;
      } else if (a == "--admin") {
        o.admin = value();
      } else if (a == "--token-file") {
        o.token_file = value();
      } else if (a == "--limit") {
        o.limit = number_arg<std::size_t>(a, value(), 1, TapCaps::max_limit);
      } else if (a == "--rate") {
        o.rate = number_arg<double>(a, value(), 0.1, TapCaps::max_rate);
      } else if (a == "--max-bytes") {
        o.max_bytes = number_arg<std::size_t>(a, value(), 1, TapCaps::max_max_bytes);
      } else if (a == "--seconds") {
        o.seconds = number_arg<int>(a, value(), 1, TapCaps::max_seconds);
      } else if (a == "--json") {
        o.json = true;
      } else if (!a.empty() && a[0] == '-') {
        return usage_error("unknown argument '" + a + "'");
      } else if (o.stage.empty()) {
        o.stage = a;
      } else {
        return usage_error("one stage at a time ('" + o.stage + "', then '" + a + "')");
      }
    } catch (const std::invalid_argument& e) {
      return usage_error(e.what());
    }
  }
  if (o.stage.empty()) return usage_error("which stage? etld tap STAGE");
  if (o.admin.empty())
    return usage_error("which daemon? give --admin HOST:PORT (its admin.address) or set ETLD_ADMIN_ADDRESS");
  if (o.token_file.empty())
    return usage_error(
        "tap needs the daemon's admin token: give --token-file FILE (its admin.token_file) or set "
        "ETLD_ADMIN_TOKEN_FILE");
  AdminEndpoint at;
  try {
    at = parse_admin_endpoint(o.admin);
  } catch (const std::invalid_argument& e) {
    return usage_error(e.what());
  }
  try {
    AdminGet get;
    get.target = fmt::format("/tap?stage={}&limit={}&rate={}&max_bytes={}&seconds={}", query_value(o.stage),
                             o.limit, o.rate, o.max_bytes, o.seconds);
    get.bearer_token = read_token_file(o.token_file);
    get.timeout = std::chrono::seconds(o.seconds + 15);  // the daemon ends the stream after `seconds`
    get.user_agent = "etld-tap";
    StreamPrinter printer(o.json);
    get.on_chunk = [&](std::string_view chunk) { printer.take(chunk); };
    admin_get(at, get);
    if (!printer.end())
      throw std::runtime_error("the admin endpoint at " + at.text() + " ended the tap before its end line");
    if (!o.json) {
      const auto& end = *printer.end();
      auto count = [&](const char* name) {
        const auto* v = end.find(name);
        return v ? v->to_json() : "?";
      };
      const auto* reason = string_of(end, "reason");
      std::cerr << "etld tap: " << count("sampled") << " events sampled of " << count("seen")
                << " that left '" << printable(o.stage) << "' (" << (reason ? *reason : "?") << "; "
                << count("dropped") << " dropped)\n";
    }
    return 0;
  } catch (const std::exception& e) {
    std::cerr << "etld tap: " << e.what() << "\n";
    return 1;
  }
}

}  // namespace etld
