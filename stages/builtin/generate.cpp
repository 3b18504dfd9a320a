// generate: a source of synthetic events, after GenStage's counter producer. Emits the numbers
// start, start+1, ... or, with `template`, one JSON object per number with placeholders filled.
// Demand-driven: never emits beyond ctx.demand(); paced by a steady_timer when `rate` is set.
// Threading: one instance per strand; every callback runs on ctx.executor().

#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstdint>
#include <cstdio>
#include <memory>
#include <optional>
#include <random>
#include <stdexcept>
#include <string>
#include <string_view>
#include <vector>

#include "config/schema/diagnostics.hpp"
#include "config/schema/pipeline.hpp"
#include "config/schema/printable.hpp"
#include "stages/engine/instance_scope.hpp"
#include "stages/engine/registry.hpp"

namespace etld {
namespace {

// ---- templates ----------------------------------------------------------------------------------

struct Piece {
  enum Kind { literal, seq, seq_mod, rand_int, choice, now_ms, uuid } kind = literal;
  std::string text;  // literal text
  std::int64_t a = 0, b = 0;
  std::vector<std::string> choices;
};

constexpr const char* kPlaceholders =
    "known placeholders: {{seq}}, {{seq % N}}, {{rand_int(lo,hi)}}, {{choice(a,b,...)}}, {{now_ms}}, "
    "{{uuid}}";

std::string_view trim(std::string_view s) {
  while (!s.empty() && (s.front() == ' ' || s.front() == '\t')) s.remove_prefix(1);
  while (!s.empty() && (s.back() == ' ' || s.back() == '\t')) s.remove_suffix(1);
  return s;
}

std::int64_t parse_int(std::string_view s, std::string_view placeholder) {
  s = trim(s);
  std::size_t used = 0;
  std::int64_t v = 0;
  try {
    v = std::stoll(std::string(s), &used);
  } catch (const std::exception&) {
    used = 0;
  }
  if (s.empty() || used != s.size())
    throw std::invalid_argument("'" + std::string(s) + "' is not an integer in {{" +
                                std::string(placeholder) + "}}");
  return v;
}

// "name(args)" -> args, when `body` has that shape.
std::optional<std::string_view> call_args(std::string_view body, std::string_view name) {
  if (body.size() < name.size() + 2 || body.substr(0, name.size()) != name) return std::nullopt;
  auto rest = trim(body.substr(name.size()));
  if (rest.size() < 2 || rest.front() != '(' || rest.back() != ')') return std::nullopt;
  return rest.substr(1, rest.size() - 2);
}

std::vector<std::string_view> split_args(std::string_view args) {
  std::vector<std::string_view> out;
  while (true) {
    auto comma = args.find(',');
    out.push_back(trim(args.substr(0, comma)));
    if (comma == std::string_view::npos) break;
    args.remove_prefix(comma + 1);
  }
  return out;
}

Piece parse_placeholder(std::string_view body) {
  Piece p;
  if (body == "seq") {
    p.kind = Piece::seq;
  } else if (body == "now_ms") {
    p.kind = Piece::now_ms;
  } else if (body == "uuid") {
    p.kind = Piece::uuid;
  } else if (body.substr(0, 3) == "seq" && trim(body.substr(3)).substr(0, 1) == "%") {
    p.kind = Piece::seq_mod;
    p.a = parse_int(trim(body.substr(3)).substr(1), body);
    if (p.a <= 0)
      throw std::invalid_argument("the modulus in {{" + std::string(body) + "}} must be positive");
  } else if (auto args = call_args(body, "rand_int")) {
    auto parts = split_args(*args);
    if (parts.size() != 2)
      throw std::invalid_argument("{{" + std::string(body) + "}} takes two integers: rand_int(lo,hi)");
    p.kind = Piece::rand_int;
    p.a = parse_int(parts[0], body);
    p.b = parse_int(parts[1], body);
    if (p.a > p.b) throw std::invalid_argument("{{" + std::string(body) + "}}: lo is greater than hi");
  } else if (auto args = call_args(body, "choice")) {
    p.kind = Piece::choice;
    for (auto part : split_args(*args)) p.choices.emplace_back(part);
    if (p.choices.empty() || (p.choices.size() == 1 && p.choices[0].empty()))
      throw std::invalid_argument("{{" + std::string(body) + "}} needs at least one choice");
  } else {
    throw std::invalid_argument("unknown placeholder {{" + std::string(body) + "}}");
  }
  return p;
}

std::vector<Piece> parse_template(std::string_view t) {
  std::vector<Piece> pieces;
  std::string literal;
  while (!t.empty()) {
    auto open = t.find("{{");
    if (open == std::string_view::npos) {
      literal.append(t);
      break;
    }
    literal.append(t.substr(0, open));
    auto close = t.find("}}", open + 2);
    if (close == std::string_view::npos) throw std::invalid_argument("'{{' without a closing '}}'");
    if (!literal.empty()) pieces.push_back(Piece{Piece::literal, std::move(literal), 0, 0, {}});
    literal.clear();
    pieces.push_back(parse_placeholder(trim(t.substr(open + 2, close - open - 2))));
    t.remove_prefix(close + 2);
  }
  if (!literal.empty()) pieces.push_back(Piece{Piece::literal, std::move(literal), 0, 0, {}});
  return pieces;
}

std::int64_t wall_ms() {
  return std::chrono::duration_cast<std::chrono::milliseconds>(
             std::chrono::system_clock::now().time_since_epoch())
      .count();
}

// Uniform in [0, n) from the generator; the tiny modulo bias is irrelevant for test data, and
// unlike std::uniform_int_distribution the sequence is the same with every standard library.
std::uint64_t below(std::mt19937_64& rng, std::uint64_t n) { return n == 0 ? rng() : rng() % n; }

void append_uuid(std::string& out, std::mt19937_64& rng) {
  std::uint64_t hi = rng(), lo = rng();
  hi = (hi & ~0xF000ULL) | 0x4000ULL;                         // version 4
  lo = (lo & 0x3FFFFFFFFFFFFFFFULL) | 0x8000000000000000ULL;  // RFC 4122 variant
  char buf[37];
  std::snprintf(buf, sizeof buf, "%08x-%04x-%04x-%04x-%012llx", static_cast<unsigned>(hi >> 32),
                static_cast<unsigned>((hi >> 16) & 0xFFFF), static_cast<unsigned>(hi & 0xFFFF),
                static_cast<unsigned>(lo >> 48), static_cast<unsigned long long>(lo & 0xFFFFFFFFFFFFULL));
  out.append(buf, 36);
}

void render(const std::vector<Piece>& pieces, std::int64_t seq, std::int64_t now_ms, std::mt19937_64& rng,
            std::string& out) {
  for (const auto& p : pieces) {
    switch (p.kind) {
      case Piece::literal: out += p.text; break;
      case Piece::seq: out += std::to_string(seq); break;
      case Piece::seq_mod: {
        auto m = seq % p.a;
        out += std::to_string(m < 0 ? m + p.a : m);
        break;
      }
      case Piece::rand_int: {
        auto span = static_cast<std::uint64_t>(p.b) - static_cast<std::uint64_t>(p.a) + 1;
        out += std::to_string(static_cast<std::int64_t>(static_cast<std::uint64_t>(p.a) + below(rng, span)));
        break;
      }
      case Piece::choice: out += p.choices[below(rng, p.choices.size())]; break;
      case Piece::now_ms: out += std::to_string(now_ms); break;
      case Piece::uuid: append_uuid(out, rng); break;
    }
  }
}

// ---- the stage ----------------------------------------------------------------------------------

struct GenerateSettings {
  std::int64_t start{};                // the options' defaults are their specs'
  std::optional<std::uint64_t> count;  // total across instances; nullopt = infinite
  std::optional<double> rate;          // events per second per instance
  std::size_t batch{};
  std::optional<std::vector<Piece>> value_template;
  std::optional<std::vector<Piece>> key_template;
  std::optional<std::uint64_t> seed;
  int concurrency = 1;
};

// Most events emitted in one strand turn before yielding to other work on the pool.
constexpr std::size_t kMaxPerTurn = 4096;

class GenerateSource : public Source {
 public:
  GenerateSource(std::shared_ptr<const GenerateSettings> settings, int instance)
      : settings_(std::move(settings)),
        s_(*settings_),
        rng_(s_.seed ? *s_.seed + static_cast<std::uint64_t>(instance) : std::random_device{}()) {
    auto n = static_cast<std::uint64_t>(s_.concurrency), k = static_cast<std::uint64_t>(instance);
    if (s_.count) limit_ = *s_.count / n + (k < *s_.count % n ? 1 : 0);
    // An endless stream stops at the largest 64-bit integer rather than wrap (configure refuses
    // a count that would pass it).
    std::uint64_t up_to_max = 0;  // how many of first, first + n, ... fit
    if (!__builtin_add_overflow(s_.start, std::int64_t{instance}, &first_)) {
      up_to_max = (static_cast<std::uint64_t>(INT64_MAX) - static_cast<std::uint64_t>(first_)) / n;
      if (up_to_max < UINT64_MAX) ++up_to_max;
    }
    limit_ = std::min(limit_.value_or(UINT64_MAX), up_to_max);
  }

  void start(SourceContext& ctx) override {
    ctx_ = &ctx;
    scope_.emplace(ctx.executor());
    timer_.emplace(ctx.executor());
    last_refill_ = std::chrono::steady_clock::now();
    if (limit_ && *limit_ == 0) return finish_once();
    if (ctx.demand() > 0) pump();
  }

  void on_demand() override {
    if (!scheduled_ && !(timer_ && timer_->armed())) pump();
  }

  void stop() override {
    if (timer_) timer_->cancel();
    stopped_ = true;
    finish_once();
  }

  void close() override { timer_.reset(); }

 private:
  std::uint64_t remaining() const { return limit_ ? *limit_ - index_ : UINT64_MAX; }

  void finish_once() {
    if (finished_) return;
    finished_ = true;
    ctx_->finish();
  }

  void pump() {
    scheduled_ = false;
    if (stopped_ || finished_) return;
    std::size_t budget = std::max(kMaxPerTurn, s_.batch);
    if (s_.rate) refill();
    while (ctx_->demand() > 0 && remaining() > 0 && budget > 0) {
      std::size_t n = std::min({ctx_->demand(), s_.batch, budget});
      n = static_cast<std::size_t>(std::min<std::uint64_t>(n, remaining()));
      if (s_.rate) n = std::min(n, static_cast<std::size_t>(tokens_));
      if (n == 0) break;
      if (s_.rate) tokens_ -= static_cast<double>(n);
      emit(n);
      budget -= n;
    }
    if (remaining() == 0) return finish_once();
    if (ctx_->demand() == 0) return;  // wait for on_demand()
    if (s_.rate && tokens_ < 1.0) {
      auto wait = std::chrono::duration<double>((1.0 - tokens_) / *s_.rate);
      timer_->start_at(std::chrono::steady_clock::now() +
                           std::max<std::chrono::steady_clock::duration>(
                               std::chrono::duration_cast<std::chrono::steady_clock::duration>(wait),
                               std::chrono::milliseconds(1)),
                       [this] { pump(); });
      return;
    }
    // Demand left but the turn's budget is spent: continue after other work on the pool.
    scheduled_ = true;
    scope_->post([this] { pump(); });
  }

  // Token bucket for `rate`: at most a tenth of a second's worth (at least one event) can
  // accumulate, so an idle spell without demand does not turn into a burst.
  void refill() {
    auto now = std::chrono::steady_clock::now();
    double elapsed = std::chrono::duration<double>(now - last_refill_).count();
    last_refill_ = now;
    double cap = std::max(1.0, *s_.rate / 10);
    tokens_ = std::min(cap, tokens_ + elapsed * *s_.rate);
  }

  void emit(std::size_t n) {
    Batch batch;
    batch.reserve(n);
    auto now = wall_ms();
    auto stride = static_cast<std::uint64_t>(s_.concurrency);
    for (std::size_t i = 0; i < n; ++i, ++index_) {
      // In unsigned arithmetic: the limit keeps the sum within int64, the product may not be.
      auto seq = static_cast<std::int64_t>(static_cast<std::uint64_t>(first_) + index_ * stride);
      Event e;
      e.timestamp_ms = now;
      if (s_.value_template) {
        render(*s_.value_template, seq, now, rng_, e.value);  // parsed lazily downstream
      } else {
        e.value = std::to_string(seq);
        e.set_record(Value(seq));
      }
      if (s_.key_template) {
        render(*s_.key_template, seq, now, rng_, e.key);
        e.has_key = true;
      }
      e.offset = static_cast<std::int64_t>(index_);
      e.ack = Ack(acks_, index_);
      batch.push_back(std::move(e));
    }
    ctx_->emit(std::move(batch));
  }

  std::shared_ptr<const GenerateSettings> settings_;  // shared with the factory
  const GenerateSettings& s_;
  std::mt19937_64 rng_;
  std::int64_t first_ = 0;              // this instance's first sequence number
  std::optional<std::uint64_t> limit_;  // this instance's share of `count`, within int64
  std::uint64_t index_ = 0;             // events emitted so far = next ack token
  std::shared_ptr<SequenceAcks> acks_ = std::make_shared<SequenceAcks>();
  SourceContext* ctx_ = nullptr;
  std::optional<StrandTimer> timer_;  // rate: the wait for the next token
  std::chrono::steady_clock::time_point last_refill_;
  double tokens_ = 1;  // the first event goes out at once
  bool scheduled_ = false, stopped_ = false, finished_ = false;
  std::optional<InstanceScope> scope_;  // the turns posted after this one
};

class GenerateFactory : public StageFactory {
 public:
  explicit GenerateFactory(GenerateSettings s) : s_(std::make_shared<const GenerateSettings>(std::move(s))) {}
  std::unique_ptr<Source> make_source(int instance) override {
    return std::make_unique<GenerateSource>(s_, instance);
  }
  // Without a count it runs to the largest 64-bit integer: endless for any purpose.
  SourceBound source_bound() const override { return {.ends = s_->count.has_value(), .to_end = "set count"}; }

 private:
  std::shared_ptr<const GenerateSettings> s_;
};

std::vector<Piece> template_option(const Options& o, const std::string& name, bool must_be_json,
                                   std::int64_t start) {
  auto text = o.get_string(name);
  std::vector<Piece> pieces;
  try {
    pieces = parse_template(text);
  } catch (const std::invalid_argument& e) {
    throw ConfigError(o.mark(name), std::string("bad ") + name + ": " + e.what(), kPlaceholders);
  }
  if (must_be_json) {
    std::mt19937_64 rng(0);
    std::string sample;
    render(pieces, start, wall_ms(), rng, sample);
    try {
      parse_json(sample);
    } catch (const JsonError& e) {
      // The template as written, never as rendered: a ${file:...} in it is named, not shown.
      throw ConfigError(o.mark(name),
                        "template does not render valid JSON (" + std::string(e.what()) +
                            "); as written: " + printable(o.node(name).Scalar(), 200),
                        "put string placeholders such as {{choice(a,b)}} and {{uuid}} inside double quotes; "
                        "the rendered text is not shown, as it may hold a ${file:...} secret");
    }
  }
  return pieces;
}

std::unique_ptr<StageFactory> configure(const StageConfig& cfg, const PipelineConfig&) {
  const Options& o = cfg.options;
  GenerateSettings s;
  s.start = o.get_int("start");
  s.concurrency = std::max(1, cfg.concurrency);
  if (o.has("count")) {
    auto count = o.get_int("count");
    if (count < 0) throw ConfigError(o.mark("count"), "count must not be negative");
    s.count = static_cast<std::uint64_t>(count);
    std::int64_t last = 0;
    if (count > 0 && __builtin_add_overflow(s.start, count - 1, &last))
      throw ConfigError(o.mark("count"),
                        "start + count - 1 passes the largest 64-bit integer (" + std::to_string(INT64_MAX) +
                            "): the numbers would wrap",
                        "lower start or count");
  }
  if (o.has("rate")) {
    auto rate = o.get_number("rate");
    if (!(rate > 0) || !std::isfinite(rate))
      throw ConfigError(o.mark("rate"), "rate must be a positive number of events per second");
    s.rate = rate;
  }
  auto batch = o.get_int("batch");
  if (batch < 1) throw ConfigError(o.mark("batch"), "batch must be at least 1");
  s.batch = static_cast<std::size_t>(batch);
  if (o.has("seed")) s.seed = static_cast<std::uint64_t>(o.get_int("seed"));
  if (o.has("template")) s.value_template = template_option(o, "template", true, s.start);
  if (o.has("key")) s.key_template = template_option(o, "key", false, s.start);
  return std::make_unique<GenerateFactory>(std::move(s));
}

const StageRegistration reg{StageType{
    "generate",
    Role::source,
    "Synthetic events: the numbers start, start+1, ... or JSON objects from a template, at demand or a fixed "
    "rate",
    {
        {"start", OptionKind::integer, "First sequence number.", false, "0", {}},
        {"count",
         OptionKind::integer,
         "Total events to emit, then finish (split across instances); omit for an endless stream, which "
         "stops at the largest 64-bit integer. start + count - 1 must not pass it.",
         false,
         "",
         {}},
        {"rate",
         OptionKind::number,
         "Events per second per instance, paced by a timer; omit to emit as fast as downstream demands.",
         false,
         "",
         {}},
        {"batch", OptionKind::integer, "Most events handed downstream in one batch.", false, "500", {}},
        {"template",
         OptionKind::string,
         "JSON text emitted per event with placeholders filled: {{seq}}, {{seq % N}}, {{rand_int(lo,hi)}}, "
         "{{choice(a,b,...)}}, {{now_ms}}, {{uuid}}; omit to emit the bare sequence numbers.",
         false,
         "",
         {}},
        {"key",
         OptionKind::string,
         "Template for each event's key, with the same placeholders.",
         false,
         "",
         {}},
        {"seed",
         OptionKind::integer,
         "Seed for rand_int, choice and uuid (plus the instance number), for repeatable data; omit for "
         "random.",
         false,
         "",
         {}},
    },
    configure,
    nullptr,  // check_live: nothing external to check
}};

}  // namespace
}  // namespace etld
